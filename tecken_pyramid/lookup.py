"""The lookup (SPEC §2 step 4, §5): walk the locations in order through the existence cache.

* :class:`ExistenceCache` is the one place that builds existence-cache keys, reads
  and writes found / not found with their TTLs, and invalidates: the lookup, the
  console's cache page and ``tecken-pyramid invalidate`` all go through it.
* :class:`SymbolLookup` asks each location in turn -- from the cache when it
  can, otherwise with one storage check -- and decides what may be written back.
* :class:`SingleFlight` coalesces identical concurrent storage checks in one
  process: the first request for an uncached (location, key) checks storage, the
  others arriving meanwhile wait for that answer (SPEC §2 step 4; issue 7). It is
  entered only after a cache miss (or with ``?_refresh``), so a cache hit takes
  no lock. A failure is shared with that flight's waiters only; nothing from a
  failed request is cached, as without coalescing.
"""

import dataclasses
import threading
import time

from . import cache as cache_mod
from .storage import FAILED, FOUND, NOT_FOUND, Answer


class ExistenceCache:
    """found / not found per (location, storage key) in the shared cache."""

    def __init__(self, settings, cache):
        self.settings = settings
        self.cache = cache

    @property
    def shared(self):
        """True when an invalidation reaches every process (memcached)."""
        return bool(getattr(self.cache, "shared", False))

    @staticmethod
    def key(location, storage_key):
        return cache_mod.existence_key(location, storage_key)

    def keys_for(self, symbol, debugid, filename):
        """The cache keys of (symbol, debugid, filename) in every cached location, try included."""
        return [
            cache_mod.existence_key(loc, loc.key(symbol, debugid, filename))
            for loc in self.settings.all_locations
            if loc.cached
        ]

    def read(self, cache_keys):
        """``{cache key: FOUND or NOT_FOUND}`` for the keys the cache holds."""
        return self.cache.get_many(cache_keys) if cache_keys else {}

    def write(self, found, missing):
        """Remember cache keys found and not found, each with its TTL."""
        s = self.settings
        if found:
            self.cache.set_many(dict.fromkeys(found, cache_mod.FOUND), s.cache_found_ttl)
        if missing:
            self.cache.set_many(dict.fromkeys(missing, cache_mod.NOT_FOUND), s.cache_not_found_ttl)

    def invalidate(self, keys):
        """Drop the cached existence of (symbol, debugid, filename) keys everywhere.

        Returns the number of entries dropped; raises ``CacheUnavailable`` when
        memcached fails (an invalidation must not fail silently).
        """
        cache_keys = [ck for sym, did, fn in keys for ck in self.keys_for(sym, did, fn)]
        if cache_keys:
            self.cache.delete_many(cache_keys)
        return len(cache_keys)


class _Flight:
    __slots__ = ("done", "answer")

    def __init__(self):
        self.done = threading.Event()
        self.answer = None


WAITED_TOO_LONG = Answer(FAILED, False, "deadline exhausted waiting for a concurrent check")
LEADER_RAISED = Answer(FAILED, False, "the concurrent check of this key did not answer")


class SingleFlight:
    """Run ``check()`` once per identity among concurrent callers."""

    def __init__(self):
        self._lock = threading.Lock()
        self._flights = {}

    def run(self, ident, check, deadline):
        with self._lock:
            flight = self._flights.get(ident)
            leader = flight is None
            if leader:
                flight = self._flights[ident] = _Flight()
        if leader:
            try:
                flight.answer = check()
            finally:
                with self._lock:
                    del self._flights[ident]
                flight.done.set()
            return flight.answer
        # A waiter keeps its own deadline: it never waits longer than it could
        # have spent checking storage itself.
        if not flight.done.wait(max(deadline - time.monotonic(), 0)):
            return WAITED_TOO_LONG
        return flight.answer if flight.answer is not None else LEADER_RAISED

    def in_flight(self):
        with self._lock:
            return len(self._flights)


@dataclasses.dataclass
class LookupResult:
    location: object  # the Location that has the key, or None
    key: str | None
    failed: bool  # some consulted location failed
    # What the request's one cache read returned, the extra keys' values included
    # (``find(extra_keys=...)``: the code-id entry rides in the existence read).
    cached: dict = dataclasses.field(default_factory=dict)


class SymbolLookup:
    """Walk the locations through the existence cache (SPEC §2 step 4, §5)."""

    def __init__(self, settings, existence, checker, metrics):
        self.settings = settings
        self.existence = existence
        self.checker = checker
        self.metrics = metrics
        self.flights = SingleFlight()

    def locations(self, include_try):
        s = self.settings
        return s.all_locations if include_try else s.locations

    def find(self, symbol, debugid, filename, *, include_try=False, refresh=False, extra_keys=()):
        """The first consulted location that has the key. ``extra_keys`` (other cache
        entries the caller may need after a miss) are read in the same ``get_many`` as
        the existence entries, so a cached miss stays one cache round trip; their
        values are in the result's ``cached``. ``refresh`` reads nothing."""
        deadline = time.monotonic() + self.settings.storage_deadline
        consulted = [(loc, loc.key(symbol, debugid, filename)) for loc in self.locations(include_try)]
        cache_keys = {loc: self.existence.key(loc, key) for loc, key in consulted if loc.cached}
        cached = {}
        if (cache_keys or extra_keys) and not refresh:
            cached = self.existence.read([*cache_keys.values(), *extra_keys])

        fresh = []  # (cache key, FOUND/NOT_FOUND) learnt from storage in this request
        failed = False
        for loc, key in consulted:
            ck = cache_keys.get(loc)
            if ck is not None and not refresh:
                value = cached.get(ck)
                if value is not None:
                    self.metrics.cache_hits.inc()
                    if value == cache_mod.FOUND:
                        return self._finish(LookupResult(loc, key, failed, cached), fresh)
                    continue
                self.metrics.cache_misses.inc()
            answer = self._check(loc, key, deadline)
            if answer.outcome == FAILED:
                failed = True
                continue
            if ck is not None:
                fresh.append((ck, answer.outcome))
            if answer.outcome == FOUND:
                return self._finish(LookupResult(loc, key, failed, cached), fresh)
        return self._finish(LookupResult(None, None, failed, cached), fresh)

    def _check(self, location, key, deadline):
        if not location.cached:
            return self.checker.check(location, key, deadline)  # a stat(2): nothing to share
        return self.flights.run(
            (location.url, key), lambda: self.checker.check(location, key, deadline), deadline
        )

    def _finish(self, result, fresh):
        if not fresh:
            return result  # every answer came from the cache
        if result.failed:
            # Nothing from a request that saw a failure is cached, except the found.
            fresh = [(ck, o) for ck, o in fresh if o == FOUND]
        self.existence.write([ck for ck, o in fresh if o == FOUND], [ck for ck, o in fresh if o == NOT_FOUND])
        return result


def includeme(config):
    registry = config.registry
    registry.existence = ExistenceCache(registry.tecken, registry.cache)
    registry.lookup = SymbolLookup(registry.tecken, registry.existence, registry.storage, registry.metrics)
