"""The lookup's single flight and the existence cache's one entry point (no app, fakes)."""

import threading
import time

from tecken_pyramid import cache as cache_mod
from tecken_pyramid.cache import InProcessCache
from tecken_pyramid.lookup import ExistenceCache, SingleFlight, SymbolLookup
from tecken_pyramid.storage import FAILED, FOUND, NOT_FOUND, Answer
from tests.unit.test_storage_classification import SYMBOL, fake_metrics, make_settings


class BlockingChecker:
    """Every check waits until released, then answers ``outcome``; counts calls."""

    def __init__(self, outcome):
        self.outcome = outcome
        self.calls = 0
        self.started = threading.Event()
        self.release = threading.Event()
        self._lock = threading.Lock()

    def check(self, location, key, deadline):
        with self._lock:
            self.calls += 1
        self.started.set()
        self.release.wait(10)
        return Answer(self.outcome, self.outcome == FAILED, "fake")


def make(outcome, urls="http://127.0.0.1:1/bucket-a"):
    settings = make_settings(urls)
    cache = InProcessCache()
    checker = BlockingChecker(outcome)
    return SymbolLookup(settings, ExistenceCache(settings, cache), checker, fake_metrics()), checker, cache


def concurrently(n, fn, checker):
    results = [None] * n

    def one(i):
        results[i] = fn()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    assert checker.started.wait(5)
    time.sleep(0.2)  # every thread has joined the flight by now
    checker.release.set()
    for t in threads:
        t.join(10)
    return results


def test_concurrent_misses_make_one_check_and_share_its_answer():
    lookup, checker, cache = make(FOUND)
    results = concurrently(8, lambda: lookup.find(*SYMBOL), checker)
    assert checker.calls == 1
    assert all(r.location is not None and not r.failed for r in results)
    assert lookup.flights.in_flight() == 0


def test_a_failure_goes_to_that_flight_only_and_is_not_cached():
    lookup, checker, cache = make(FAILED)
    results = concurrently(8, lambda: lookup.find(*SYMBOL), checker)
    assert checker.calls == 1
    assert all(r.location is None and r.failed for r in results)
    assert cache.get_many(lookup.existence.keys_for(*SYMBOL)) == {}
    # The next lookup starts a flight of its own.
    checker.outcome = NOT_FOUND
    assert lookup.find(*SYMBOL).failed is False
    assert checker.calls == 2


def test_refresh_joins_a_flight_in_progress():
    lookup, checker, cache = make(NOT_FOUND)
    results = concurrently(6, lambda: lookup.find(*SYMBOL, refresh=True), checker)
    assert checker.calls == 1
    assert all(r.location is None and not r.failed for r in results)


def test_a_cache_hit_never_enters_the_flight_table():
    lookup, checker, cache = make(FOUND)
    checker.release.set()
    lookup.find(*SYMBOL)  # a miss: checks and caches

    def refuse(*args):
        raise AssertionError("a cache hit took the single-flight lock")

    lookup.flights.run = refuse
    assert lookup.find(*SYMBOL).location is not None
    assert checker.calls == 1


def test_a_waiter_keeps_its_own_deadline():
    flights = SingleFlight()
    release = threading.Event()
    leader = threading.Thread(target=flights.run, args=("k", lambda: release.wait(5) and Answer(FOUND), 1e12))
    leader.start()
    time.sleep(0.05)
    started = time.monotonic()
    answer = flights.run("k", lambda: Answer(FOUND), time.monotonic() + 0.2)
    assert answer.outcome == FAILED and "deadline" in answer.detail
    assert 0.15 < time.monotonic() - started < 2
    release.set()
    leader.join(5)
    assert flights.in_flight() == 0


def test_existence_keys_cover_every_cached_location_and_invalidate_drops_them(tmp_path):
    settings = make_settings(f"http://127.0.0.1:1/bucket-a,{tmp_path / 'local'}")
    cache = InProcessCache()
    existence = ExistenceCache(settings, cache)
    keys = existence.keys_for(*SYMBOL)
    # The local directory is never cached: the S3 location and its try (from the first).
    assert len(keys) == 2
    existence.write(keys[:1], keys[1:])
    assert cache.get_many(keys) == {keys[0]: cache_mod.FOUND, keys[1]: cache_mod.NOT_FOUND}
    assert existence.invalidate([SYMBOL]) == 2
    assert cache.get_many(keys) == {}
    assert existence.shared is False
