import time

from tecken_pyramid.cache import MEMCACHED_RELATIVE_EXPIRY_LIMIT, InProcessCache, memcached_expiry


def test_memcached_expiry_relative_up_to_30_days():
    assert memcached_expiry(600) == 600
    assert memcached_expiry(MEMCACHED_RELATIVE_EXPIRY_LIMIT) == MEMCACHED_RELATIVE_EXPIRY_LIMIT


def test_memcached_expiry_absolute_beyond_30_days():
    ttl = MEMCACHED_RELATIVE_EXPIRY_LIMIT + 1
    value = memcached_expiry(ttl)
    assert abs(value - (time.time() + ttl)) < 5


def test_in_process_add_claims_once_and_expires():
    cache = InProcessCache()
    assert cache.add("k", b"1", 1) is True
    assert cache.add("k", b"1", 1) is False
    time.sleep(1.05)
    assert cache.add("k", b"1", 1) is True


def test_in_process_separate_ttls():
    cache = InProcessCache()
    cache.set_many({"a": b"1"}, 10)
    cache.set_many({"b": b"0"}, 1)
    time.sleep(1.05)
    assert cache.get_many(["a", "b"]) == {"a": b"1"}
