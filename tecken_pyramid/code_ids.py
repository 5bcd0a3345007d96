"""Lookup by code id (SPEC §9; download step 4, after every location said not found).

Stack walkers that know a module only by its code file and code id ask for
``/{code_file}/{code_id}/{name}.sym``. After the storage lookup misses (and none
failed), :class:`CodeIdLookup` finds the newest ``symbol_file`` row with that code
file and code id in a location the request consults, and the view redirects to
the row's ``/{symbol}/{debug id}/{filename}``.

* Cost on the download path: the answer, found or not, is cached in the shared
  cache under :meth:`CodeIdLookup.cache_key`, and that entry is read in the *same*
  ``get_many`` as the existence entries (``SymbolLookup.find(extra_keys=...)``):
  a cached miss stays one cache round trip, and a found download never reaches
  this module's database query.
* The database is asked only for an uncached (or ``?_refresh``) miss, on the
  app's engine; on PostgreSQL with a statement timeout. Any failure skips the
  lookup (the plain 404 stands), is logged at most once a minute, and opens a
  small circuit breaker: lookups are skipped for :data:`BREAKER_SECONDS`, then one
  request at a time probes the database until one succeeds.
* :meth:`CodeIdLookup.invalidate` drops the cached answers of a (code file, code
  id) for regular and try requests alike; uploads call it for each stored .sym
  whose header has a code id.
"""

import json
import logging
import threading
import time
import urllib.parse

from . import cache as cache_mod
from . import symbol_index

log = logging.getLogger(__name__)

MAX_CODE_ID = 40  # hex characters; longer ids are debug ids, never looked up
BREAKER_SECONDS = 5.0
STATEMENT_TIMEOUT_MS = 2000
NOT_FOUND = b"0"
RESULTS = ("found", "not-found", "cached-found", "cached-not-found", "failed", "skipped")

# What a Location's path segments and query keep unencoded (the rest is UTF-8 %XX: ASCII).
_SEGMENT_SAFE = "!$&'()*+,;=:@-._~"
_QUERY_SAFE = "/?:@!$&'()*+,;=-._~%"


def consulted_urls(settings, include_try):
    """The URLs of the locations a request consults: the regular ones, then try when asked."""
    return tuple(loc.url for loc in (settings.all_locations if include_try else settings.locations))


def cache_key(urls, code_file, code_id):
    """One entry per (code file, code id, the locations consulted: try or not)."""
    return cache_mod.hashed_key("cid", code_file, code_id.upper(), *urls)


def invalidation_keys(settings, code_file, code_id):
    """Every cached variant of (code file, code id): regular and try requests."""
    return [cache_key(consulted_urls(settings, t), code_file, code_id) for t in (False, True)]


def encode_row(row):
    return json.dumps(list(row)).encode("ascii")  # ensure_ascii: any name round-trips


def decode_row(value):
    """The cached (symbol, debug id, filename), or None for an entry not written by encode_row."""
    try:
        row = json.loads(value)
    except (TypeError, ValueError):
        return None
    if isinstance(row, list) and len(row) == 3 and all(isinstance(part, str) for part in row):
        return tuple(row)
    return None


def redirect_location(base, row, *, is_try, query_string):
    """``{base}[/try]/{symbol}/{debug id}/{filename}[?query]``, ASCII."""
    path = "/".join(urllib.parse.quote(part, safe=_SEGMENT_SAFE) for part in row)
    url = f"{base}{'/try' if is_try else ''}/{path}"
    if query_string:
        query = urllib.parse.quote(query_string.encode("latin-1", "replace"), safe=_QUERY_SAFE)
        url = f"{url}?{query}"
    return url


class CodeIdLookup:
    """``registry.code_ids`` (the CodeIds protocol)."""

    def __init__(self, settings, cache, session_factory, metrics, *, breaker_seconds=BREAKER_SECONDS):
        self.settings = settings
        self.cache = cache
        self.session_factory = session_factory
        self.breaker_seconds = breaker_seconds
        # Children bound once, as metrics.download_result does.
        self.counts = {result: metrics.code_id_lookups.labels(result) for result in RESULTS}
        self.redirects = metrics.downloads.labels("code-id")
        self._urls = {t: consulted_urls(settings, t) for t in (False, True)}
        self._lock = threading.Lock()
        self._failing = False  # the last query failed: the breaker is open or half-open
        self._closed_at = 0.0  # monotonic time until which lookups are skipped
        self._log = cache_mod.RateLimitedLog(log, 60.0)

    @staticmethod
    def eligible(filename, debugid):
        """A .sym request whose debug id may be a code id (the path's id is hex already)."""
        return filename.endswith(".sym") and len(debugid) <= MAX_CODE_ID

    def cache_key(self, code_file, code_id, include_try):
        """One entry per (code file, code id, the locations consulted: try or not)."""
        return cache_key(self._urls[bool(include_try)], code_file, code_id)

    def resolve(self, code_file, code_id, include_try, *, cached=None, refresh=False):
        """(symbol, debug id, filename) of the newest row, or None (also when skipped).

        ``cached``: the value the request's one cache read found under
        :meth:`cache_key` (None when it found nothing or skipped the cache).
        """
        if cached is not None and not refresh:
            if cached == NOT_FOUND:
                self.counts["cached-not-found"].inc()
                return None
            row = decode_row(cached)
            if row is not None:
                self.counts["cached-found"].inc()
                return row
        if not self._may_query():
            self.counts["skipped"].inc()
            return None
        try:
            row = self._query(code_file, code_id, include_try)
        except Exception as exc:  # any database error or timeout: the plain 404 stands
            self._failed(exc)
            return None
        self._succeeded()
        key = self.cache_key(code_file, code_id, include_try)
        if row is None:
            self.counts["not-found"].inc()
            self.cache.set_many({key: NOT_FOUND}, self.settings.cache_not_found_ttl)
        else:
            self.counts["found"].inc()
            self.cache.set_many({key: encode_row(row)}, self.settings.cache_found_ttl)
        return row

    def _query(self, code_file, code_id, include_try):
        with self.session_factory() as session:
            if session.get_bind().dialect.name == "postgresql":
                from sqlalchemy import text

                session.execute(text(f"SET LOCAL statement_timeout = {int(STATEMENT_TIMEOUT_MS)}"))
            return symbol_index.find_by_code_id(session, code_file, code_id, self._urls[bool(include_try)])

    # -- the circuit breaker ----------------------------------------------------------------
    def _may_query(self):
        if not self._failing:
            return True
        with self._lock:
            now = time.monotonic()
            if now < self._closed_at:
                return False
            self._closed_at = now + self.breaker_seconds  # this request probes; others skip
            return True

    def _failed(self, exc):
        with self._lock:
            self._failing = True
            self._closed_at = time.monotonic() + self.breaker_seconds
        self.counts["failed"].inc()
        detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        self._log.warning(
            "db",
            "code-id lookup skipped, database unavailable: %s: %s (lookups skipped for %.0f s)",
            type(exc).__name__,
            detail[:300],
            self.breaker_seconds,
        )

    def _succeeded(self):
        if self._failing:
            with self._lock:
                self._failing = False
                self._closed_at = 0.0

    # -- uploads ----------------------------------------------------------------------------
    def invalidate(self, code_file, code_id):
        """Drop the cached answers for (code file, code id), try or not. Never raises."""
        if not code_file or not code_id:
            return
        keys = invalidation_keys(self.settings, code_file, code_id)
        try:
            self.cache.delete_many(keys)
        except Exception as exc:
            log.warning("code-id cache entries of %s/%s not dropped: %s", code_file, code_id, exc)


def includeme(config):
    registry = config.registry
    registry.code_ids = CodeIdLookup(
        registry.tecken, registry.cache, registry.dbsession_factory, registry.metrics
    )
