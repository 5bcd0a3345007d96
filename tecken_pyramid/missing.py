"""The missing-symbol log's recording side (SPEC §6).

A GET miss is *claimed* through the shared cache (the repeat guard), then only
*enqueued*; a background writer upserts it, retrying with back-off while the
database is unavailable, so a 404 never waits on the database.
"""

import datetime
import hashlib
import logging
import queue
import threading
import time
from collections import Counter

import cachetools
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite

from .cache import CacheUnavailable, InProcessCache, RateLimitedLog, hashed_key
from .models import MissingSymbol

log = logging.getLogger(__name__)

MAX_LENGTH = 150  # code points, for each of the five strings
BATCH_SIZE = 500


def record_hash(symbol, debugid, filename, code_file, code_id):
    joined = "\x00".join((symbol, debugid, filename, code_file or "", code_id or ""))
    return hashlib.sha256(joined.encode("utf-8", "surrogateescape")).hexdigest()


def upsert_statement(dialect_name, rows):
    """INSERT ... ON CONFLICT (hash) DO UPDATE count = count + n, modified_at = now."""
    insert = postgresql.insert if dialect_name == "postgresql" else sqlite.insert
    stmt = insert(MissingSymbol.__table__).values(rows)
    return stmt.on_conflict_do_update(
        index_elements=["hash"],
        set_={
            "count": MissingSymbol.__table__.c.count + stmt.excluded.count,
            "modified_at": stmt.excluded.modified_at,
        },
    )


def utcnow():
    return datetime.datetime.now(datetime.UTC)


def is_transient(exc):
    """Database unavailable (refused, timeout, SQLite locked): retry later."""
    if isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.DisconnectionError)):
        return True
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, sa_exc.TimeoutError):  # connection pool exhausted
        return True
    return isinstance(exc, (ConnectionError, OSError))


class MissingSymbolRecorder:
    def __init__(self, engine, cache, settings, metrics):
        self.engine = engine
        self.cache = cache
        self.settings = settings
        self.metrics = metrics
        self.queue = queue.Queue(maxsize=max(settings.missing_symbol_queue_size, 1))
        self._fallback_guard = InProcessCache(maxsize=100_000)
        # Guards known to be held -- claimed here, or lost to another process (or
        # to this one before a restart) -- until the guard itself expires: a
        # repeated miss then costs no memcached round trip. Each entry expires at
        # the guard's own expiry, which the guard's value carries.
        self._claimed = cachetools.TLRUCache(
            maxsize=100_000, ttu=lambda _k, expires_at, _now: expires_at, timer=time.time
        )
        self._claimed_lock = threading.Lock()
        self._overflow_log = RateLimitedLog(log, 60.0)
        self._fail_log = RateLimitedLog(log, 60.0)
        self._stop = threading.Event()
        self._thread = None
        self._idle = threading.Event()
        self._idle.set()

    # -- request side -------------------------------------------------------------
    def record(self, symbol, debugid, filename, code_file, code_id):
        """Called for a GET miss that passed steps 1-3 and query validation."""
        values = (symbol, debugid, filename, code_file or "", code_id or "")
        if any(len(v) > MAX_LENGTH for v in values):
            return False
        guarded = self.settings.missing_symbol_guard_seconds > 0
        key = hashed_key("ms", *values) if guarded else None
        if guarded and self._claimed_here(key):
            return False  # a repeat this process already recorded
        if self.settings.missing_symbol_queue_size == 0 or self.queue.full():
            # Nothing can be queued: drop it *without* claiming the guard, so that
            # the next miss of these five strings is recorded once there is room.
            self._dropped()
            return False
        if guarded and not self._claim(key):
            return False
        row = (symbol, debugid, filename, code_file or None, code_id or None, utcnow())
        try:
            self.queue.put_nowait(row)
        except queue.Full:  # filled by another thread since the check above
            if guarded:
                self._release(key)
            self._dropped()
            return False
        self._idle.clear()
        self.metrics.missing_queue.set(self.queue.qsize())
        return True

    def _claimed_here(self, key):
        with self._claimed_lock:
            return key in self._claimed

    def _claim(self, key):
        """Claim the repeat guard atomically; True when this request holds it.

        The guard's value is its expiry (Unix time). A claim lost to another holder
        reads that value once and remembers the guard until then, so that every
        later repeat is answered here without a round trip.
        """
        ttl = self.settings.missing_symbol_guard_seconds
        expires_at = time.time() + ttl
        value = b"%d" % int(expires_at)
        try:
            claimed = self.cache.add(key, value, ttl)
            if not claimed:
                expires_at = self._holder_expiry(self.cache, key)
        except CacheUnavailable:
            # The shared cache is down: guard in-process rather than record every miss.
            claimed = self._fallback_guard.add(key, value, ttl)
            if not claimed:
                expires_at = self._holder_expiry(self._fallback_guard, key)
        if expires_at is not None and expires_at > time.time():
            with self._claimed_lock:
                self._claimed[key] = min(expires_at, time.time() + ttl)
        return claimed

    @staticmethod
    def _holder_expiry(cache, key):
        """When the guard someone else holds expires, or None when unknown."""
        value = cache.get_many([key]).get(key)
        try:
            return float(value)
        except (TypeError, ValueError):
            return None  # gone meanwhile, or written by an older version

    def _release(self, key):
        """Give back a claim whose record was dropped (a dropped miss must not stay guarded)."""
        with self._claimed_lock:
            self._claimed.pop(key, None)
        self._fallback_guard.delete_many([key])
        try:
            self.cache.delete_many([key])
        except CacheUnavailable:
            pass  # it expires with the guard's TTL; nothing better to do while memcached is down

    def _dropped(self):
        self.metrics.missing_dropped.inc()
        self._overflow_log.warning(
            "overflow",
            "missing-symbol queue full (%d): records dropped",
            self.settings.missing_symbol_queue_size,
        )

    # -- writer side -----------------------------------------------------------------
    def _take_batch(self, timeout):
        try:
            first = self.queue.get(timeout=timeout)
        except queue.Empty:
            return []
        batch = [first]
        while len(batch) < BATCH_SIZE:
            try:
                batch.append(self.queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def write(self, batch):
        """Upsert one batch (raises on failure). Repeats of one key are summed."""
        counts = Counter()
        latest = {}
        for symbol, debugid, filename, code_file, code_id, when in batch:
            h = record_hash(symbol, debugid, filename, code_file, code_id)
            counts[h] += 1
            latest[h] = (symbol, debugid, filename, code_file, code_id, when)
        rows = [
            {
                "hash": h,
                "symbol": s,
                "debugid": d,
                "filename": f,
                "code_file": cf,
                "code_id": ci,
                "count": counts[h],
                "created_at": when,
                "modified_at": when,
            }
            for h, (s, d, f, cf, ci, when) in latest.items()
        ]
        with self.engine.begin() as connection:
            dialect = connection.dialect.name
            # One statement per row: a multi-row upsert is fine too, but keeping
            # statements small keeps SQLite's write lock short.
            for row in rows:
                connection.execute(upsert_statement(dialect, [row]))
        return len(batch)

    def _write_with_retry(self, batch):
        delay = 0.05
        while True:
            try:
                written = self.write(batch)
                self.metrics.missing_writes.inc(written)
                return True
            except Exception as exc:
                self.metrics.missing_failures.inc()
                if not is_transient(exc):
                    log.exception("missing-symbol write failed; %d records dropped", len(batch))
                    return False
                self._fail_log.warning(
                    "db", "missing-symbol writer: database unavailable, retrying (%s)", type(exc).__name__
                )
            # Read the deadline on every retry: stop() may set it while this batch is in
            # hand, and the batch must then be retried until that deadline, not dropped.
            give_up_at = self._give_up_at
            if give_up_at is not None and time.monotonic() + delay > give_up_at:
                log.error("missing-symbol writer: gave up on %d records at shutdown", len(batch))
                return False
            time.sleep(delay)
            delay = min(delay * 2, self.settings.missing_symbol_retry_max_seconds)

    def _run(self):
        while not self._stop.is_set():
            batch = self._take_batch(timeout=0.2)
            if batch:
                self._write_with_retry(batch)
                self.metrics.missing_queue.set(self.queue.qsize())
            if self.queue.empty():
                self._idle.set()

    _give_up_at = None

    def start(self):
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="missing-symbol-writer", daemon=True)
            self._thread.start()

    def stop(self, timeout=5.0):
        """Flush what is queued for up to ``timeout`` seconds, then stop."""
        self._give_up_at = time.monotonic() + timeout
        deadline = self._give_up_at
        while not self.queue.empty() and time.monotonic() < deadline and self._thread is not None:
            time.sleep(0.02)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(deadline - time.monotonic(), 0.1))
            self._thread = None

    def wait_idle(self, timeout=10.0):
        """Testing and benchmarks: wait until the queue is written."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.queue.empty() and self._idle.is_set():
                return True
            time.sleep(0.01)
        return False


def includeme(config):
    registry = config.registry
    registry.missing = MissingSymbolRecorder(
        registry.dbengine, registry.cache, registry.tecken, registry.metrics
    )
