"""Storage checks (SPEC §2 step 4, §3): one backend per location kind, one loop.

Each kind of location has its own small class (:mod:`.private_s3`,
:mod:`.public_http`, :mod:`.local_directory`) answering ``check(key, remaining)``,
``redirect_url(key, application_url)`` and ``heartbeat(timeout)`` (the
:class:`~tecken_pyramid.interfaces.StorageBackend` protocol). :class:`StorageChecker`
holds one backend per configured location and the part every kind shares: the
deadline and retry loop, the latency histogram and the rate-limited failure log.

The write side that uploads and the ``index`` command use (SPEC §9): ``stat``,
``write``, ``read_head`` and ``list_keys``, one method each per backend (S3, private
and public alike, in :mod:`.s3_writes`; local directories in :mod:`.local_directory`),
with the shared helpers, :class:`StorageWriteError` and :class:`StoredObject` in
:mod:`.writes`. Failures raise :class:`StorageWriteError` (one line); those that
SPEC §3 retries (a connection error, a timeout, 429, 5xx) are retried here at most
``storage_retries`` times, a write from a fresh ``open_chunks()``.

A new kind of location is a class with those methods, a line in
:data:`BACKENDS`, and its parsing in :mod:`tecken_pyramid.locations`.
"""

import concurrent.futures
import logging
import threading
import time

import cachetools
import urllib3

from ..cache import RateLimitedLog
from ..locations import LOCAL, PRIVATE, PUBLIC
from .answers import FAILED, FOUND, NOT_FOUND, Answer, classify_boto_error, classify_status
from .local_directory import LocalDirectory, local_path
from .private_s3 import PrivateS3, S3Clients
from .public_http import PublicHttp
from .writes import StorageWriteError, StoredObject

__all__ = [
    "FAILED",
    "FOUND",
    "NOT_FOUND",
    "PRESIGNED_REUSE_SECONDS",
    "Answer",
    "StorageChecker",
    "StorageWriteError",
    "StoredObject",
    "classify_boto_error",
    "classify_status",
]

log = logging.getLogger(__name__)

# A presigned URL may be reused in-process for this long (SPEC §3).
PRESIGNED_REUSE_SECONDS = 60

BACKENDS = {PRIVATE: PrivateS3, PUBLIC: PublicHttp, LOCAL: LocalDirectory}


class SharedResources:
    """What backends of one process share: connection pools, clients, presigned URLs."""

    def __init__(self, settings):
        self.settings = settings
        self.s3 = S3Clients(settings)
        # Private checks run on this pool so that a hung call can be abandoned when
        # the request's deadline runs out.
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=32, thread_name_prefix="storage")
        self.http = urllib3.PoolManager(num_pools=16, maxsize=32, block=False, retries=False)
        self.presigned = cachetools.TTLCache(maxsize=50_000, ttl=PRESIGNED_REUSE_SECONDS)
        self.presigned_lock = threading.Lock()

    def close(self):
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.http.clear()


class StorageChecker:
    """Existence checks, redirect URLs and health for every configured location."""

    def __init__(self, settings, metrics=None):
        self.settings = settings
        self.metrics = metrics
        self._shared = SharedResources(settings)
        # By identity: the configured Location objects are the ones requests carry,
        # and id() is cheaper than hashing a ten-field dataclass on every redirect.
        self._backends = {id(loc): self._make(loc) for loc in settings.all_locations}
        self._backends_lock = threading.Lock()
        self._others = {}
        # One line a minute per location: an outage fails every request, and a log
        # line per request (about 1,000 in 5 s under load) drowns everything else.
        self._failure_log = RateLimitedLog(log, 60.0)

    def _make(self, location):
        return BACKENDS[location.kind](location, self._shared)

    def backend(self, location):
        backend = self._backends.get(id(location))
        if backend is None or backend.location is not location:
            # A Location that is not one of the configured objects (tests, tools):
            # made once per equal location and kept.
            with self._backends_lock:
                backend = self._others.get(location)
                if backend is None:
                    backend = self._others[location] = self._make(location)
        return backend

    def client_for(self, location):
        """The boto3 client of a private location's endpoint."""
        return self._shared.s3.client_for(location)

    def check(self, location, key, deadline):
        """found / not found / failed for ``key`` in ``location`` before ``deadline``."""
        backend = self.backend(location)
        attempts = 1 + self.settings.storage_retries
        answer = Answer(FAILED, False, "deadline exhausted")
        for _ in range(attempts):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return Answer(FAILED, False, "deadline exhausted")
            started = time.perf_counter()
            answer = backend.check(key, remaining)
            if self.metrics is not None:
                self.metrics.storage_latency.labels(location.kind, answer.outcome).observe(
                    time.perf_counter() - started
                )
            if answer.outcome != FAILED or not answer.retryable:
                break
        if answer.outcome == FAILED:
            self._failure_log.warning(
                location.url,
                "storage check failed in %s: %s (e.g. for %s; at most one line a minute)",
                location.url,
                answer.detail,
                key,
            )
        return answer

    def redirect_url(self, location, key, application_url):
        """The redirect target, or None when it cannot be made (the lookup failed)."""
        return self.backend(location).redirect_url(key, application_url)

    def heartbeat(self, location, timeout):
        """(ok, detail) for /__heartbeat__ (SPEC §8)."""
        return self.backend(location).heartbeat(timeout)

    # -- the write side (SPEC §9) -------------------------------------------------------------

    def stat(self, location, key):
        """A :class:`StoredObject`, or None when there is no such object."""
        backend = self.backend(location)
        return self._retrying(location, key, "stat", lambda: backend.stat(key))

    def write(self, location, key, open_chunks, *, size, sha256, md5):
        """Store the content ``open_chunks()`` yields (the original bytes; called
        again for a retry) under ``key``; ``size``, ``sha256`` and ``md5`` are the
        original content's. Nothing partial is left behind by a failure."""
        backend = self.backend(location)
        self._retrying(
            location,
            key,
            "write",
            lambda: backend.write(key, open_chunks, size=size, sha256=sha256, md5=md5),
        )

    def read_head(self, location, key, nbytes):
        """The first ``nbytes`` of the original content, or None when there is no such object."""
        backend = self.backend(location)
        return self._retrying(location, key, "read", lambda: backend.read_head(key, nbytes))

    def list_keys(self, location, *, prefix="", start_after=""):
        """(key, size) of every object under the location's prefix plus ``prefix``,
        in ascending key order, strictly after ``start_after``. A retryable failure
        resumes after the last key yielded (``storage_retries`` times in a row)."""
        backend = self.backend(location)
        retries = self.settings.storage_retries
        last = start_after
        while True:
            progressed = False
            try:
                for key, size in backend.list_keys(prefix=prefix, start_after=last):
                    last, progressed = key, True
                    yield key, size
                return
            except StorageWriteError as exc:
                if progressed:
                    retries = self.settings.storage_retries
                if not exc.retryable or retries <= 0:
                    raise
                retries -= 1
                log.warning("listing %s failed after %r, resuming: %s", location.url, last, exc)

    def _retrying(self, location, key, what, call):
        retries = self.settings.storage_retries
        while True:
            try:
                return call()
            except StorageWriteError as exc:
                if not exc.retryable or retries <= 0:
                    raise
                retries -= 1
                log.warning("storage %s of %s in %s failed, retrying: %s", what, key, location.url, exc)

    @staticmethod
    def local_path(location, key):
        """The real path of ``key`` when it is a regular file inside a local location."""
        return local_path(location.directory, key)

    def close(self):
        self._shared.close()


def includeme(config):
    registry = config.registry
    registry.storage = StorageChecker(registry.tecken, registry.metrics)
