"""The services on the registry, as protocols (read with :func:`tecken_pyramid.make_app`).

Each service is built once by its module's ``includeme`` and read directly as
``request.registry.<name>`` (no service locator on the download path). These
protocols say what the rest of the package may rely on; an implementation
satisfies one by having the methods, no inheritance needed, and
``tests/functional/test_service_contracts.py`` checks the assembled app against them.
Settings (``registry.tecken``, :class:`tecken_pyramid.settings.Settings`), the
SQLAlchemy engine and session factory are concrete types and need no protocol.
"""

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Cache(Protocol):
    """``registry.cache``: the shared cache (SPEC §5). Memcached or in-process;
    failures of reads and writes are misses, never raised; ``add``, ``incr`` and
    ``delete_many`` raise ``CacheUnavailable`` (a guard, a throttle or an
    invalidation must not silently succeed). ``tests/functional/test_cache_contract.py``
    runs the same contract against both backends."""

    shared: bool  # an invalidation reaches every process
    name: str

    def get_many(self, keys: Sequence[str]) -> dict[str, Any]: ...
    def set_many(self, values: Mapping[str, Any], ttl: float) -> None: ...
    def add(self, key: str, value: Any, ttl: float) -> bool: ...
    def incr(self, key: str, ttl: float) -> int: ...
    def delete_many(self, keys: Sequence[str]) -> bool: ...
    def check(self) -> tuple[bool, str]: ...
    def close(self) -> None: ...


@runtime_checkable
class ExistenceCache(Protocol):
    """``registry.existence``: found / not found per (location, storage key). The one
    place that builds existence keys and invalidates them (lookup, console, CLI)."""

    shared: bool

    def key(self, location: Any, storage_key: str) -> str: ...
    def keys_for(self, symbol: str, debugid: str, filename: str) -> list[str]: ...
    def read(self, cache_keys: Sequence[str]) -> dict[str, bytes]: ...
    def write(self, found: Sequence[str], missing: Sequence[str]) -> None: ...
    def invalidate(self, keys: Iterable[tuple[str, str, str]]) -> int: ...


@runtime_checkable
class StorageBackend(Protocol):
    """One location of one kind (private S3, public HTTP, local directory). The
    write side (SPEC §9) raises ``StorageWriteError``; ``StorageChecker`` retries."""

    kind: str
    location: Any

    def check(self, key: str, remaining: float) -> Any: ...  # an Answer
    def redirect_url(self, key: str, application_url: str) -> str | None: ...
    def heartbeat(self, timeout: float) -> tuple[bool, str]: ...
    def stat(self, key: str) -> Any: ...  # a StoredObject or None
    def write(
        self, key: str, open_chunks: Callable[[], Iterable[bytes]], *, size: int, sha256: str, md5: str
    ) -> None: ...
    def read_head(self, key: str, nbytes: int) -> bytes | None: ...
    def list_keys(self, prefix: str = "", start_after: str = "") -> Iterator[tuple[str, int | None]]: ...


@runtime_checkable
class Storage(Protocol):
    """``registry.storage``: every location's backend behind one deadline/retry loop."""

    def check(self, location: Any, key: str, deadline: float) -> Any: ...  # an Answer
    def redirect_url(self, location: Any, key: str, application_url: str) -> str | None: ...
    def heartbeat(self, location: Any, timeout: float) -> tuple[bool, str]: ...
    def local_path(self, location: Any, key: str) -> str | None: ...
    # The write side (SPEC §9): failures raise StorageWriteError (one line).
    def stat(self, location: Any, key: str) -> Any: ...  # a StoredObject or None
    def write(
        self,
        location: Any,
        key: str,
        open_chunks: Callable[[], Iterable[bytes]],
        *,
        size: int,
        sha256: str,
        md5: str,
    ) -> None: ...
    def read_head(self, location: Any, key: str, nbytes: int) -> bytes | None: ...
    def list_keys(
        self, location: Any, *, prefix: str = "", start_after: str = ""
    ) -> Iterator[tuple[str, int | None]]: ...
    def close(self) -> None: ...


@runtime_checkable
class Lookup(Protocol):
    """``registry.lookup``: the location walk through the existence cache (SPEC §2 step 4)."""

    def locations(self, include_try: bool) -> Sequence[Any]: ...
    def find(
        self,
        symbol: str,
        debugid: str,
        filename: str,
        *,
        include_try: bool = False,
        refresh: bool = False,
        extra_keys: Sequence[str] = (),
    ) -> Any: ...  # a LookupResult; its ``extra`` holds the extra_keys the cache had


@runtime_checkable
class CodeIds(Protocol):
    """``registry.code_ids``: lookup by code id after a miss (SPEC §9). Answers, found or
    not, are cached in the shared cache; a database failure skips the lookup (never raised)."""

    def eligible(self, filename: str, debugid: str) -> bool: ...
    def cache_key(self, code_file: str, code_id: str, include_try: bool) -> str: ...
    def resolve(
        self, code_file: str, code_id: str, include_try: bool, *, cached: bytes | None, refresh: bool
    ) -> tuple[str, str, str] | None: ...  # (symbol, debug id, filename) of the newest row
    def invalidate(self, code_file: str, code_id: str) -> None: ...  # logs a cache failure


@runtime_checkable
class Rules(Protocol):
    """``registry.rules``: allow list and ignore patterns in memory, reloaded by a thread (§4)."""

    current: Any  # a RuleSet: decide(symbol, debugid, filename)
    last_error: str | None

    def reload(self) -> bool: ...
    def status(self) -> str: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...


@runtime_checkable
class MissingRecorder(Protocol):
    """``registry.missing``: the missing-symbol log's guard and background writer (§6)."""

    def record(self, symbol: str, debugid: str, filename: str, code_file: str, code_id: str) -> bool: ...
    def start(self) -> None: ...
    def stop(self, timeout: float = 5.0) -> None: ...
    def wait_idle(self, timeout: float = 10.0) -> bool: ...


@runtime_checkable
class Uploads(Protocol):
    """``registry.uploads``: the upload pipeline (SPEC §9; :mod:`.uploads`)."""

    def run(self, request: Any) -> Any: ...  # an UploadRequest in, an Outcome (never raises)
    def target(self, try_symbols: bool) -> Any: ...  # the Location an upload goes to
    def slot(self) -> Any: ...  # a context manager yielding whether this request may go on
    def busy(self) -> Any: ...  # the 503 Outcome when every slot is taken


@runtime_checkable
class Health(Protocol):
    """``registry.health``: the heartbeat's checks on one bounded pool (§8)."""

    def run(self) -> dict[str, dict[str, Any]]: ...
    def close(self) -> None: ...


@runtime_checkable
class LoginThrottle(Protocol):
    """``registry.login_throttle``: failed sign-ins counted in the shared cache (§7)."""

    def locked(self, username: str, address: str) -> bool: ...
    def failed(self, username: str, address: str) -> int: ...
    def succeeded(self, username: str, address: str) -> None: ...


@runtime_checkable
class AccessLog(Protocol):
    """``registry.access_log``: the JSON access-log writer, or None when it is off."""

    def add(self, entry: tuple) -> None: ...
    def flush(self) -> None: ...
    def start(self) -> None: ...
    def close(self) -> bool: ...


@runtime_checkable
class Metrics(Protocol):
    """``registry.metrics``: the Prometheus collectors every service counts into (§8)."""

    registry: Any  # the CollectorRegistry /metrics serves
    download_result: Mapping[str, Any]
    cache_hits: Any
    cache_misses: Any
    cache_errors: Any
    storage_latency: Any
    missing_writes: Any
    missing_failures: Any
    missing_dropped: Any
    missing_queue: Any
    rules_reload_failures: Any
