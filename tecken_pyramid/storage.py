"""Storage lookups (SPEC §2 step 4, §3).

:class:`StorageChecker` answers one existence question for one location with
*found*, *not found* or *failed*, honouring timeouts, at most
``TECKEN_STORAGE_RETRIES`` retries and the request's deadline.
:class:`SymbolLookup` walks the locations in order through the existence cache
and decides what may be written back to it.
"""

import concurrent.futures
import dataclasses
import logging
import os
import threading
import time

import boto3
import botocore.config
import botocore.exceptions
import cachetools
import urllib3

from . import cache as cache_mod
from .locations import LOCAL, PRIVATE, PUBLIC, quote_key

log = logging.getLogger(__name__)

FOUND = "found"
NOT_FOUND = "not-found"
FAILED = "failed"

# A presigned URL may be reused in-process for this long (SPEC §3).
PRESIGNED_REUSE_SECONDS = 60


@dataclasses.dataclass(frozen=True)
class Answer:
    outcome: str
    retryable: bool = False
    detail: str = ""


def classify_status(status, kind):
    """Classify an HTTP status from storage (SPEC §2 step 4)."""
    if 200 <= status < 300:
        return Answer(FOUND)
    if status == 404:
        return Answer(NOT_FOUND)
    if status in (401, 403):
        if kind == PUBLIC and status == 403:
            # S3's answer for a missing key when anonymous listing is not allowed.
            return Answer(NOT_FOUND)
        if kind == PRIVATE:
            return Answer(FAILED, False, f"HTTP {status}: bad credentials or missing permission")
        return Answer(NOT_FOUND)
    if status == 429:
        return Answer(FAILED, True, "HTTP 429")
    if 400 <= status < 500:
        # e.g. 400 for a key over S3's 1,024-byte limit: it cannot exist.
        return Answer(NOT_FOUND)
    if status >= 500:
        return Answer(FAILED, True, f"HTTP {status}")
    return Answer(FAILED, False, f"unexpected HTTP {status}")


_BOTO_RETRYABLE = (
    botocore.exceptions.EndpointConnectionError,
    botocore.exceptions.ConnectTimeoutError,
    botocore.exceptions.ReadTimeoutError,
    botocore.exceptions.ConnectionClosedError,
    botocore.exceptions.ConnectionError,
    botocore.exceptions.HTTPClientError,
)


def classify_boto_error(exc):
    if isinstance(exc, botocore.exceptions.ClientError):
        meta = exc.response.get("ResponseMetadata", {})
        status = meta.get("HTTPStatusCode")
        if status is None:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            status = int(code) if code.isdigit() else 500
        return classify_status(int(status), PRIVATE)
    if isinstance(exc, _BOTO_RETRYABLE):
        return Answer(FAILED, True, f"{type(exc).__name__}: {exc}")
    if isinstance(exc, botocore.exceptions.NoCredentialsError):
        return Answer(FAILED, False, "no AWS credentials")
    return Answer(FAILED, False, f"{type(exc).__name__}: {exc}")


class StorageChecker:
    """Existence checks against the three kinds of location."""

    def __init__(self, settings, metrics=None):
        self.settings = settings
        self.metrics = metrics
        self._clients = {}
        self._clients_lock = threading.Lock()
        # Private checks run on this pool so that a hung call can be abandoned when
        # the request's deadline runs out (botocore's timeouts are per client).
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=32, thread_name_prefix="storage")
        self._http = urllib3.PoolManager(num_pools=16, maxsize=32, block=False, retries=False)
        self._presigned = cachetools.TTLCache(maxsize=50_000, ttl=PRESIGNED_REUSE_SECONDS)
        self._presigned_lock = threading.Lock()
        # One line a minute per location: an outage fails every request, and a log
        # line per request (about 1,000 in 5 s under load) drowns everything else.
        self._failure_log = cache_mod.RateLimitedLog(log, 60.0)

    # -- boto3 clients: thread-safe once created, one per endpoint -------------
    def client_for(self, location):
        ident = (location.endpoint, location.region)
        client = self._clients.get(ident)
        if client is None:
            with self._clients_lock:
                client = self._clients.get(ident)
                if client is None:
                    client = self._make_client(location)
                    self._clients[ident] = client
        return client

    def _make_client(self, location):
        s = self.settings
        config = botocore.config.Config(
            connect_timeout=s.storage_connect_timeout,
            read_timeout=s.storage_read_timeout,
            retries={"total_max_attempts": 1},  # we retry ourselves, within the deadline
            signature_version="s3v4",
            max_pool_connections=32,
            # Path style on the configured endpoint, for AWS too: it works for dotted
            # bucket names, and the redirect points at the host the operator named.
            s3={"addressing_style": "path"},
        )
        region = location.region or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        kwargs = {"config": config, "region_name": region, "endpoint_url": location.endpoint}
        return boto3.session.Session().client("s3", **kwargs)

    # -- one check ---------------------------------------------------------------
    def check(self, location, key, deadline):
        """found / not found / failed for ``key`` in ``location`` before ``deadline``."""
        attempts = 1 + self.settings.storage_retries
        answer = Answer(FAILED, False, "deadline exhausted")
        for _ in range(attempts):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return Answer(FAILED, False, "deadline exhausted")
            started = time.perf_counter()
            answer = self._check_once(location, key, remaining)
            if self.metrics is not None:
                self.metrics.storage_latency.labels(location.kind, answer.outcome).observe(
                    time.perf_counter() - started
                )
            if answer.outcome != FAILED or not answer.retryable:
                break
        if answer.outcome == FAILED:
            self._failure_log.warning(
                location.url, "storage check failed in %s: %s (e.g. for %s; at most one line a minute)",
                location.url, answer.detail, key,
            )
        return answer

    def _check_once(self, location, key, remaining):
        if location.kind == LOCAL:
            return Answer(FOUND) if self.local_path(location, key) else Answer(NOT_FOUND)
        if location.kind == PUBLIC:
            return self._head_public(location.public_url(key), remaining)
        return self._head_private(location, key, remaining)

    def _head_public(self, url, remaining):
        s = self.settings
        timeout = urllib3.Timeout(
            total=remaining,
            connect=min(s.storage_connect_timeout, remaining),
            read=min(s.storage_read_timeout, remaining),
        )
        try:
            response = self._http.request("HEAD", url, timeout=timeout, redirect=False, retries=False)
        except urllib3.exceptions.HTTPError as exc:
            return Answer(FAILED, True, f"{type(exc).__name__}: {exc}")
        except (OSError, ValueError) as exc:
            return Answer(FAILED, True, f"{type(exc).__name__}: {exc}")
        return classify_status(response.status, PUBLIC)

    def _head_private(self, location, key, remaining):
        client = self.client_for(location)

        def call():
            try:
                client.head_object(Bucket=location.bucket, Key=key)
                return Answer(FOUND)
            except Exception as exc:  # classified, never raised
                return classify_boto_error(exc)

        future = self._pool.submit(call)
        try:
            return future.result(timeout=remaining)
        except concurrent.futures.TimeoutError:
            return Answer(FAILED, False, "storage deadline ran out")

    # -- local directories --------------------------------------------------------
    @staticmethod
    def local_path(location, key):
        """The real path of ``key`` when it is a regular file inside the directory."""
        root = os.path.realpath(location.directory)
        try:
            path = os.path.realpath(os.path.join(root, key))
        except (ValueError, OSError):
            return None
        if not path.startswith(root + os.sep):
            return None
        try:
            return path if os.path.isfile(path) else None
        except (ValueError, OSError):
            return None

    # -- redirect URLs -------------------------------------------------------------
    def redirect_url(self, location, key, application_url):
        """The redirect target, or None when it cannot be made (the lookup failed)."""
        if location.kind == PUBLIC:
            return location.public_url(key)
        if location.kind == LOCAL:
            return f"{application_url}/__files__/{location.index}/{quote_key(key)}"
        ident = (location.url, key)
        with self._presigned_lock:
            url = self._presigned.get(ident)
        if url is None:
            try:
                url = self.client_for(location).generate_presigned_url(
                    "get_object",
                    Params={"Bucket": location.bucket, "Key": key},
                    ExpiresIn=self.settings.presigned_url_expires,
                )
            except Exception as exc:  # e.g. no credentials: unavailable, never a 500
                log.warning("cannot presign %s in %s: %s", key, location.url, exc)
                return None
            with self._presigned_lock:
                self._presigned[ident] = url
        return url

    # -- health -----------------------------------------------------------------------
    def heartbeat(self, location, timeout):
        """(ok, detail) for /__heartbeat__ (SPEC §8)."""
        if location.kind == LOCAL:
            d = location.directory
            if os.path.isdir(d) and os.access(d, os.R_OK | os.X_OK):
                return True, "directory exists and is readable"
            return False, "directory missing or unreadable"
        key = location.heartbeat_key()
        deadline = time.monotonic() + timeout
        if location.kind == PUBLIC:
            remaining = deadline - time.monotonic()
            try:
                response = self._http.request(
                    "HEAD",
                    location.public_url(key),
                    timeout=urllib3.Timeout(total=remaining),
                    redirect=False,
                    retries=False,
                )
            except Exception as exc:
                return False, f"{type(exc).__name__}"
            ok = response.status in (403, 404)
            return ok, f"HTTP {response.status}"
        answer = self._head_private(location, key, deadline - time.monotonic())
        if answer.outcome == NOT_FOUND:
            return True, "HTTP 404 for a key that cannot exist"
        if answer.outcome == FOUND:
            return True, "reachable"
        return False, answer.detail

    def close(self):
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._http.clear()


@dataclasses.dataclass
class LookupResult:
    location: object  # the Location that has the key, or None
    key: str | None
    failed: bool  # some consulted location failed


class SymbolLookup:
    """Walk the locations through the existence cache (SPEC §2 step 4, §5)."""

    def __init__(self, settings, cache, checker, metrics):
        self.settings = settings
        self.cache = cache
        self.checker = checker
        self.metrics = metrics

    def locations(self, include_try):
        s = self.settings
        return s.all_locations if include_try else s.locations

    def find(self, symbol, debugid, filename, *, include_try=False, refresh=False):
        deadline = time.monotonic() + self.settings.storage_deadline
        consulted = [(loc, loc.key(symbol, debugid, filename)) for loc in self.locations(include_try)]
        cache_keys = {loc: cache_mod.existence_key(loc, key) for loc, key in consulted if loc.cached}
        cached = {}
        if cache_keys and not refresh:
            cached = self.cache.get_many(list(cache_keys.values()))

        fresh = []  # (cache key, FOUND/NOT_FOUND) learnt from storage in this request
        failed = False
        for loc, key in consulted:
            ck = cache_keys.get(loc)
            if ck is not None and not refresh:
                value = cached.get(ck)
                if value is not None:
                    self.metrics.cache_hits.inc()
                    if value == cache_mod.FOUND:
                        return self._finish(LookupResult(loc, key, failed), fresh)
                    continue
                self.metrics.cache_misses.inc()
            answer = self.checker.check(loc, key, deadline)
            if answer.outcome == FAILED:
                failed = True
                continue
            if ck is not None:
                fresh.append((ck, answer.outcome))
            if answer.outcome == FOUND:
                return self._finish(LookupResult(loc, key, failed), fresh)
        return self._finish(LookupResult(None, None, failed), fresh)

    def _finish(self, result, fresh):
        s = self.settings
        if result.failed:
            # Nothing from a request that saw a failure is cached, except the found.
            fresh = [(ck, o) for ck, o in fresh if o == FOUND]
        found = {ck: cache_mod.FOUND for ck, o in fresh if o == FOUND}
        missing = {ck: cache_mod.NOT_FOUND for ck, o in fresh if o == NOT_FOUND}
        if found:
            self.cache.set_many(found, s.cache_found_ttl)
        if missing:
            self.cache.set_many(missing, s.cache_not_found_ttl)
        return result

    def invalidate(self, keys):
        """Drop cached existence of (symbol, debugid, filename) keys everywhere."""
        cache_keys = [
            cache_mod.existence_key(loc, loc.key(sym, did, fn))
            for sym, did, fn in keys
            for loc in self.settings.all_locations
            if loc.cached
        ]
        if cache_keys:
            self.cache.delete_many(cache_keys)
        return len(cache_keys)


def includeme(config):
    registry = config.registry
    registry.storage = StorageChecker(registry.tecken, registry.metrics)
    registry.lookup = SymbolLookup(registry.tecken, registry.cache, registry.storage, registry.metrics)
