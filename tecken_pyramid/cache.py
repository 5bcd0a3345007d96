"""The shared cache (SPEC §5): existence of (location, key), guards and throttles.

Two backends behind one small interface:

* :class:`MemcachedCache` -- pymemcache ``HashClient`` over the configured servers
  (consistent hashing, pooled clients for waitress's threads, 0.25 s timeouts;
  the ring itself is :mod:`tecken_pyramid.memcached_ring`).
  Every failure is a cache miss: logged at most once a minute per server,
  counted, never raised.
* :class:`InProcessCache` -- a cachetools TLRU cache with per-entry TTLs, the
  embedded default's cache when no memcached is configured.

Existence entries are keyed by a versioned hash of the location's normalised URL
and the storage key, so names with spaces, non-ASCII or 400 characters work.
"""

import hashlib
import logging
import threading
import time

import cachetools

from .memcached_ring import RetryingHashClient, rendezvous_hasher

log = logging.getLogger(__name__)

# The old name, still used by tests that ask which server holds a key.
_rendezvous_hasher = rendezvous_hasher

KEY_VERSION = "tp1"
FOUND = b"1"
NOT_FOUND = b"0"


def existence_key(location, storage_key):
    digest = hashlib.sha256(f"{location.url}\n{storage_key}".encode("utf-8", "surrogateescape")).hexdigest()
    return f"{KEY_VERSION}:e:{digest[:48]}"


def hashed_key(namespace, *parts):
    digest = hashlib.sha256("\n".join(parts).encode("utf-8", "surrogateescape")).hexdigest()
    return f"{KEY_VERSION}:{namespace}:{digest[:48]}"


class RateLimitedLog:
    """Log a message at most once per ``interval`` seconds per subject."""

    def __init__(self, logger, interval=60.0):
        self.logger = logger
        self.interval = interval
        self._last = {}
        self._lock = threading.Lock()

    def warning(self, subject, msg, *args):
        now = time.monotonic()
        with self._lock:
            last = self._last.get(subject)
            if last is not None and now - last < self.interval:
                return
            self._last[subject] = now
        self.logger.warning(msg, *args)


class InProcessCache:
    """Per-process TTL cache; the embedded default (nothing shared to invalidate).

    Each entry holds ``(value, expires_at)`` with an absolute expiry on the
    cache's own clock: cachetools' TLRU recomputes an expiry on every set, so a
    relative TTL stored in the entry would restart a counter's window on every
    increment. With the absolute time, ``incr`` keeps the window fixed at its
    first increment, as memcached's ``add`` + ``incr`` does.
    """

    shared = False
    name = "in-process"

    def __init__(self, maxsize=200_000, timer=time.monotonic):
        self._data = cachetools.TLRUCache(maxsize=maxsize, ttu=lambda _k, v, _now: v[1], timer=timer)
        self._timer = timer
        self._lock = threading.Lock()

    def get_many(self, keys):
        out = {}
        with self._lock:
            for key in keys:
                entry = self._data.get(key)
                if entry is not None:
                    out[key] = entry[0]
        return out

    def set_many(self, values, ttl):
        if ttl <= 0:
            return
        with self._lock:
            expires_at = self._timer() + ttl
            for key, value in values.items():
                self._data[key] = (value, expires_at)

    def add(self, key, value, ttl):
        """Atomically claim ``key``; True when this caller set it."""
        with self._lock:
            if self._data.get(key) is not None:
                return True if ttl <= 0 else False
            if ttl > 0:
                self._data[key] = (value, self._timer() + ttl)
            return True

    def incr(self, key, ttl):
        """Count within one window of ``ttl`` seconds, fixed at the first increment."""
        with self._lock:
            entry = self._data.get(key)
            if entry is None:
                self._data[key] = (1, self._timer() + ttl)
                return 1
            count = entry[0] + 1
            self._data[key] = (count, entry[1])
            return count

    def delete_many(self, keys):
        with self._lock:
            for key in keys:
                self._data.pop(key, None)
        return True

    def check(self):
        return True, "in-process"

    def close(self):
        pass


class CacheUnavailable(Exception):
    pass


MEMCACHED_RELATIVE_EXPIRY_LIMIT = 30 * 24 * 3600


def memcached_expiry(ttl):
    """memcached reads an expiry over 30 days as an absolute Unix time."""
    ttl = int(ttl)
    if ttl > MEMCACHED_RELATIVE_EXPIRY_LIMIT:
        return int(time.time()) + ttl
    return ttl


class MemcachedCache:
    """pymemcache HashClient; failures are cache misses, never errors."""

    shared = True
    name = "memcached"

    def __init__(self, servers, *, dead_retry=30.0, metrics=None, timeout=0.25):
        self.servers = servers
        self.metrics = metrics
        self.client = RetryingHashClient(
            list(servers),
            hasher=rendezvous_hasher,
            connect_timeout=timeout,
            timeout=timeout,
            use_pooling=True,
            # Retry a failed server (put it back into the ring) every dead_retry s.
            retry_attempts=0,
            dead_timeout=dead_retry,
            ignore_exc=False,
            default_noreply=False,
        )
        self._log = RateLimitedLog(log, 60.0)

    def _server_for(self, key):
        try:
            node = self.client.hasher.get_node(key)
            return node or "all servers"
        except Exception:
            return "all servers"

    def _failed(self, key, op, exc):
        if self.metrics is not None:
            self.metrics.cache_errors.inc()
        # The server this thread was talking to: asking the ring afterwards would name
        # a healthy one, since a failed server has already left it.
        server = self.client.server_in_use() or (self._server_for(key) if key else "all servers")
        detail = str(exc) or type(exc).__name__
        self._log.warning(
            server, "memcached %s failed on %s: %s (treated as a cache miss)", op, server, detail
        )

    def get_many(self, keys):
        if not keys:
            return {}
        try:
            return self.client.get_many(keys)
        except Exception as exc:
            self._failed(keys[0], "get", exc)
            return {}

    def set_many(self, values, ttl):
        if ttl <= 0 or not values:
            return
        try:
            self.client.set_many(values, expire=memcached_expiry(ttl), noreply=False)
        except Exception as exc:
            self._failed(next(iter(values)), "set", exc)

    def add(self, key, value, ttl):
        """Atomically claim ``key``. Raises CacheUnavailable when memcached fails."""
        if ttl <= 0:
            return True
        try:
            return bool(self.client.add(key, value, expire=memcached_expiry(ttl), noreply=False))
        except Exception as exc:
            self._failed(key, "add", exc)
            raise CacheUnavailable(str(exc)) from None

    def incr(self, key, ttl):
        """Increment a counter created with a fixed window. Raises CacheUnavailable."""
        try:
            if self.client.add(key, b"1", expire=memcached_expiry(ttl), noreply=False):
                return 1
            value = self.client.incr(key, 1, noreply=False)
            return int(value) if value is not None else 1
        except Exception as exc:
            self._failed(key, "incr", exc)
            raise CacheUnavailable(str(exc)) from None

    def delete_many(self, keys):
        """Delete keys; raises CacheUnavailable (invalidation must not fail silently)."""
        try:
            for key in keys:
                self.client.delete(key, noreply=False)
            return True
        except Exception as exc:
            self._failed(keys[0] if keys else None, "delete", exc)
            raise CacheUnavailable(str(exc)) from None

    def check(self):
        """Ask every server for its version; one that answers is put back in rotation
        at once (it may be waiting out its retry interval after an outage)."""
        dead = self.client.dead_servers()
        problems = []
        for name, client in list(self.client.clients.items()):
            try:
                client.version()
            except Exception as exc:
                problems.append(f"{name}: {str(exc) or type(exc).__name__}")
                continue
            if name in dead:
                self.client.revive(name)
        if problems:
            return False, "memcached: " + "; ".join(problems)
        return True, f"memcached: {len(self.servers)} server(s) answered"

    def close(self):
        try:
            self.client.close()
        except Exception:
            pass


def make_cache(settings, metrics=None):
    if settings.memcached_servers:
        return MemcachedCache(
            settings.memcached_servers, dead_retry=settings.memcached_dead_retry_seconds, metrics=metrics
        )
    return InProcessCache()


def includeme(config):
    settings = config.registry.tecken
    if not settings.memcached_servers:
        log.warning("no memcached configured (tecken.memcached_servers): using an in-process cache")
    config.registry.cache = make_cache(settings, config.registry.metrics)
