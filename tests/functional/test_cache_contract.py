"""The shared cache's contract, run against both backends (in-process and a real
memcached): claim once, counters with a fixed window, per-entry TTLs, delete, and
what a memcached failure does (SPEC §5, §7's throttle window)."""

import time

import pytest

from tecken_pyramid.cache import CacheUnavailable, InProcessCache, MemcachedCache, hashed_key

# Nothing here depends on the database kind: run once, in the SQLite pass (.ci/test).
pytestmark = pytest.mark.database_independent


@pytest.fixture(params=["in-process", "memcached"])
def cache(request):
    if request.param == "in-process":
        yield InProcessCache()
        return
    server = request.getfixturevalue("memcached_clean")
    backend = MemcachedCache([("127.0.0.1", server.port)], dead_retry=1.0)
    yield backend
    backend.close()


def key(name):
    return hashed_key("contract", name, str(time.monotonic_ns()))


def test_add_claims_once(cache):
    k = key("add")
    assert cache.add(k, b"1", 30) is True
    assert cache.add(k, b"1", 30) is False
    assert cache.get_many([k]) == {k: b"1"}


def test_add_with_zero_ttl_always_claims_and_stores_nothing(cache):
    k = key("add0")
    assert cache.add(k, b"1", 0) is True
    assert cache.add(k, b"1", 0) is True
    assert cache.get_many([k]) == {}


def test_per_entry_ttls(cache):
    short, long_ = key("short"), key("long")
    cache.set_many({long_: b"1"}, 30)
    cache.set_many({short: b"0"}, 1)
    assert cache.get_many([short, long_]) == {short: b"0", long_: b"1"}
    time.sleep(2.1)  # memcached's clock has one-second steps
    assert cache.get_many([short, long_]) == {long_: b"1"}


def test_counter_window_is_fixed_at_the_first_increment(cache):
    """Increments do not restart the window (issue 6, fault 3): the login throttle
    counts 5 failures in 15 minutes from the first, with and without memcached."""
    k = key("incr")
    started = time.monotonic()
    assert cache.incr(k, 3) == 1
    time.sleep(1.6)
    assert cache.incr(k, 3) == 2
    assert cache.incr(k, 3) == 3
    # 3.8 s after the first increment its window (3 s) is over; a window restarted
    # by the increments at 1.6 s would still run until 4.6 s.
    time.sleep(max(0.0, 3.8 - (time.monotonic() - started)))
    assert cache.incr(k, 3) == 1


def test_delete_many(cache):
    a, b = key("a"), key("b")
    cache.set_many({a: b"1", b: b"0"}, 30)
    assert cache.delete_many([a, b]) is True
    assert cache.get_many([a, b]) == {}


def test_check_passes(cache):
    ok, detail = cache.check()
    assert ok is True, detail


# -- failures: memcached only -------------------------------------------------------------------
def test_memcached_failure_is_a_miss_for_reads_and_raises_for_claims(memcached_clean):
    backend = MemcachedCache([("127.0.0.1", memcached_clean.port)], dead_retry=30.0)
    try:
        memcached_clean.stop()
        k = key("down")
        assert backend.get_many([k]) == {}
        backend.set_many({k: b"1"}, 30)  # never raises
        with pytest.raises(CacheUnavailable):
            backend.add(k, b"1", 30)
        with pytest.raises(CacheUnavailable):
            backend.incr(k, 30)
        with pytest.raises(CacheUnavailable):
            backend.delete_many([k])
        ok, detail = backend.check()
        assert ok is False and detail.startswith("memcached:")
    finally:
        backend.close()


def _round_trip(backend):
    k = key("probe")
    backend.set_many({k: b"1"}, 30)
    return backend.get_many([k]) == {k: b"1"}


@pytest.mark.parametrize("dead_retry", [2.0])
def test_failed_server_is_retried_dead_retry_after_its_own_failure(memcached_clean, dead_retry):
    """Issue 6, fault 1: pymemcache's HashClient re-checks dead servers on its own
    clock, which it moves at every check even when no server is due, so a server
    that failed right after that clock's start came back after nearly twice
    ``dead_timeout`` (about 60 s for SPEC's 30 s). Here it must be used again no
    later than ``dead_retry`` after its failure (the same relationship as the
    defaults, scaled down: failure just after the client's clock started)."""
    backend = MemcachedCache([("127.0.0.1", memcached_clean.port)], dead_retry=dead_retry)
    try:
        assert _round_trip(backend)
        memcached_clean.stop()
        # A closed pooled connection is an error without marking the server dead;
        # the next call's refused connection takes it out of the ring.
        for _ in range(3):
            assert backend.get_many([key("fail")]) == {}
            if backend.client.dead_servers():
                break
        assert backend.client.dead_servers(), "the refused server was not marked dead"
        failed_at = time.monotonic()
        memcached_clean.start()
        back_after = None
        while time.monotonic() - failed_at < 3 * dead_retry:
            if _round_trip(backend):
                back_after = time.monotonic() - failed_at
                break
            time.sleep(0.05)
        assert back_after is not None, "memcached never used again"
        assert back_after <= dead_retry + 0.5, f"used again {back_after:.2f} s after its failure"
        # ...and not before dead_retry: a dead server is not hammered on every request.
        assert back_after >= dead_retry - 0.1
    finally:
        backend.close()


def test_concurrent_failures_take_a_server_out_once(memcached_clean):
    """Threads failing at once on one server must not corrupt the ring (HashClient's
    own bookkeeping is not thread-safe: a second removal raised ValueError)."""
    import threading

    backend = MemcachedCache([("127.0.0.1", memcached_clean.port)], dead_retry=1.0)
    try:
        memcached_clean.stop()
        errors = []

        def hammer():
            try:
                for _ in range(20):
                    backend.get_many([key("t")])
            except Exception as exc:  # get_many must never raise
                errors.append(exc)

        threads = [threading.Thread(target=hammer) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert list(backend.client.dead_servers()) == [f"127.0.0.1:{memcached_clean.port}"]
        memcached_clean.start()
        time.sleep(1.1)
        assert _round_trip(backend)
    finally:
        backend.close()


def test_a_failure_is_logged_against_the_failing_server(memcached_clean, caplog):
    """The failed server has left the ring by the time the failure is logged: asking
    the ring named a healthy server (and its rate limit then hid that one's own)."""
    from tests.conftest import MemcachedProcess

    other = MemcachedProcess()
    other.start()
    try:
        backend = MemcachedCache(
            [("127.0.0.1", memcached_clean.port), ("127.0.0.1", other.port)], dead_retry=30
        )
        keys = [key(f"spread{n}") for n in range(40)]
        backend.set_many({k: b"1" for k in keys}, 60)
        memcached_clean.stop()
        with caplog.at_level("WARNING", logger="tecken_pyramid.cache"):
            for k in keys:
                backend.get_many([k])
        messages = [r.getMessage() for r in caplog.records if r.name == "tecken_pyramid.cache"]
        assert messages, "no failure logged"
        assert all(f":{memcached_clean.port}:" in m for m in messages), messages
        assert not any(f":{other.port}" in m for m in messages), messages
        assert all(not m.split(": ", 1)[1].startswith(" (treated") for m in messages), messages
        backend.close()
    finally:
        other.stop()


def test_heartbeat_puts_an_answering_dead_server_back(memcached_clean):
    backend = MemcachedCache([("127.0.0.1", memcached_clean.port)], dead_retry=30)
    try:
        memcached_clean.stop()
        for _ in range(3):
            backend.get_many([key("x")])
        assert backend.client.dead_servers()
        ok, detail = backend.check()
        assert ok is False and f"127.0.0.1:{memcached_clean.port}" in detail
        memcached_clean.start()
        assert not _round_trip(backend)  # still waiting out its 30 s
        ok, detail = backend.check()
        assert ok is True, detail
        assert backend.client.dead_servers() == {}
        assert _round_trip(backend)
    finally:
        backend.close()
