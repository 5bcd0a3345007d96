"""The one place that reads settings.

Every setting of SPEC §1 is read here from the ini file's ``[app:main]`` and then
from the environment (the environment wins), checked, and turned into a typed,
frozen :class:`Settings`. Everything else in the app reads ``registry.tecken``
(or the object returned by :func:`load`) and never looks at raw strings.

A mistake raises :class:`ConfigError` whose text is one line naming the setting;
callers turn it into ``sys.exit(...)`` so that ``pserve`` and the command line print
that line and exit 1 without a traceback.
"""

import dataclasses
import ipaddress
import os
import re
import urllib.parse
import secrets
from collections.abc import Mapping

from . import locations as locations_mod

PLACEHOLDER_PREFIX = "CHANGE-ME"
INVALID_NAME_CHARS = re.compile(r"[\x00-\x1f\x80-\xff\\^`><{}\[\]#%\"'~|]")


class ConfigError(Exception):
    """A misconfiguration; ``str(exc)`` is the one line to print."""


@dataclasses.dataclass(frozen=True)
class Settings:
    environment: str
    here: str
    locations: tuple  # of locations.Location, in order
    try_location: object  # locations.Location
    symbol_file_prefix: str
    database_url: str
    memcached_servers: tuple  # of (host, port)
    download_file_extensions_allowed: tuple
    session_secret: str
    secure_cookies: bool
    missing_symbol_guard_seconds: int
    missing_symbol_queue_size: int
    cache_found_ttl: int
    cache_not_found_ttl: int
    presigned_url_expires: int
    storage_connect_timeout: float
    storage_read_timeout: float
    storage_retries: int
    storage_deadline: float
    rules_refresh_seconds: float
    access_log: bool
    public_url: str  # "" = absolute URLs from a validated Host header
    metrics_allowed_addresses: tuple  # of ipaddress networks
    # Internal knobs (ini only, not part of SPEC's table): tests shrink them.
    memcached_dead_retry_seconds: float
    missing_symbol_retry_max_seconds: float
    version: str

    @property
    def all_locations(self):
        return self.locations + (self.try_location,)


def _bool(name, value):
    v = value.strip().lower()
    if v in ("true", "1", "yes"):
        return True
    if v in ("false", "0", "no"):
        return False
    raise ConfigError(f"{name}: expected true/false/1/0/yes/no, got {value!r}")


def _int(name, value):
    v = value.strip()
    if not re.fullmatch(r"[0-9]+", v):
        raise ConfigError(f"{name}: expected a whole number >= 0, got {value!r}")
    return int(v)


def _seconds(name, value, positive=True):
    # Durations accept a decimal fraction ("0.5"), which lets tests shrink them;
    # SPEC's integers are a subset of what is accepted.
    v = value.strip()
    if not re.fullmatch(r"[0-9]+(\.[0-9]+)?", v):
        raise ConfigError(f"{name}: expected a number of seconds, got {value!r}")
    number = float(v)
    if positive and number <= 0:
        raise ConfigError(f"{name}: must be greater than 0, got {value!r}")
    return number


def _list(value):
    return [part.strip() for part in value.split(",") if part.strip()]


def check_extension(ext):
    """Return an error message for an invalid allowed extension, else None."""
    if not ext.startswith("."):
        return "an extension starts with '.'"
    if len(ext) < 2:
        return "an extension needs at least one character after '.'"
    if "/" in ext or re.search(r"\s", ext) or INVALID_NAME_CHARS.search(ext):
        return "an extension contains no '/', whitespace or invalid character"
    return None


def _extensions(name, value):
    exts = _list(value)
    for ext in exts:
        problem = check_extension(ext)
        if problem:
            raise ConfigError(f"{name}: {problem}, got {ext!r}")
    return tuple(dict.fromkeys(exts))


def _memcached(name, value):
    servers = []
    for item in _list(value):
        host, sep, port = item.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"{name}: expected comma-separated host:port, got {item!r}")
        servers.append((host.strip("[]"), int(port)))
    return tuple(servers)


def normalise_database_url(url):
    """Every PostgreSQL spelling means psycopg 3 (SPEC §8)."""
    for prefix in ("postgres://", "postgresql://", "postgresql+psycopg://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _database(name, value):
    url = normalise_database_url(value.strip())
    if not (url.startswith("postgresql+psycopg://") or url.startswith("sqlite://")):
        raise ConfigError(f"{name}: expected a sqlite:// or postgresql:// URL, got {_redact(url)!r}")
    if url.startswith("postgresql+psycopg://") and len(url) <= len("postgresql+psycopg://"):
        raise ConfigError(f"{name}: the PostgreSQL URL names no host or database")
    return url


DEFAULT_METRICS_ALLOWED = "127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7"


def _networks(name, value):
    networks = []
    for item in _list(value):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ConfigError(f"{name}: expected comma-separated addresses or CIDRs, got {item!r}") from None
    return tuple(networks)


def _public_url(name, value):
    """``scheme://host[:port][/path]`` without query, fragment or user-info; no trailing '/'."""
    url = value.strip()
    if not url:
        return ""
    parts = urllib.parse.urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.query
        or parts.fragment
        or "@" in parts.netloc
        or port == -1
        or not url.isascii()
        or re.search(r"[\x00-\x20\x7f\\\"'<>`{}|^]", url)
    ):
        raise ConfigError(f"{name}: expected http(s)://HOST[:PORT][/PATH], got {value!r}")
    return url.rstrip("/")


def _redact(url):
    return re.sub(r"//([^:/@]*):[^@/]*@", r"//\1:***@", url)


class _Source:
    """Ini values, then environment variables; remembers which name to blame."""

    def __init__(self, ini, environ):
        self.ini = ini
        self.environ = environ

    def get(self, key, envs, default=None):
        for env in envs:
            if env in self.environ:
                return env, self.environ[env]
        if key in self.ini and self.ini[key] is not None:
            return key, str(self.ini[key])
        return envs[0], default


# Environment variables read after the TECKEN_ one, before the ini file.
ALIASES = {"tecken.download_file_extensions_allowed": ("DJANGO_DOWNLOAD_FILE_EXTENSIONS_ALLOWED",)}


def read_raw(ini, environ, key):
    """One raw setting value (environment, aliases included, wins), for alembic's env.py."""
    env = "TECKEN_" + key.split(".", 1)[1].upper() if key.startswith("tecken.") else None
    if key == "sqlalchemy.url":
        env = "TECKEN_DATABASE_URL"
    envs = ([env] if env else []) + list(ALIASES.get(key, ()))
    return _Source(ini, environ).get(key, envs)[1]


def load(ini: Mapping, environ: Mapping | None = None, here: str | None = None) -> Settings:
    """Build :class:`Settings` from ini values and the environment.

    Raises ConfigError with one line naming the setting on any mistake.
    """
    environ = os.environ if environ is None else environ
    here = here or ini.get("here") or os.getcwd()
    src = _Source(ini, environ)

    def raw(key, env, default=None, aliases=()):
        return src.get(key, [env, *aliases], default)

    name, value = raw("tecken.environment", "TECKEN_ENVIRONMENT", "development")
    environment = value.strip().lower()
    if environment not in ("development", "production"):
        raise ConfigError(f"{name}: expected development or production, got {value!r}")
    production = environment == "production"

    name, value = raw("tecken.symbol_file_prefix", "TECKEN_SYMBOL_FILE_PREFIX", "v1")
    file_prefix = value.strip().strip("/")
    if INVALID_NAME_CHARS.search(file_prefix) or re.search(r"\s", file_prefix):
        raise ConfigError(f"{name}: contains an invalid character: {value!r}")

    name, value = raw("tecken.symbol_urls", "TECKEN_SYMBOL_URLS", "")
    urls = _list(value)
    if not urls:
        raise ConfigError(f"{name}: required, a comma-separated list of storage locations")
    locs = []
    for index, url in enumerate(urls):
        try:
            locs.append(locations_mod.parse(url, here=here, file_prefix=file_prefix, index=str(index)))
        except ValueError as exc:
            raise ConfigError(f"{name}: {exc}") from None
    name, value = raw("tecken.try_symbol_url", "TECKEN_TRY_SYMBOL_URL", "")
    try:
        if value.strip():
            try_loc = locations_mod.parse(value.strip(), here=here, file_prefix=file_prefix, index="try")
        else:
            try_loc = locations_mod.derive_try(locs[0])
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc}") from None

    name, value = raw("sqlalchemy.url", "TECKEN_DATABASE_URL", "")
    if not value.strip():
        raise ConfigError(f"{name}: required, a sqlite:// or postgresql:// database URL")
    database_url = _database(name, value)

    name, value = raw("tecken.memcached_servers", "TECKEN_MEMCACHED_SERVERS", "")
    memcached = _memcached(name, value)

    name, value = raw(
        "tecken.download_file_extensions_allowed",
        "TECKEN_DOWNLOAD_FILE_EXTENSIONS_ALLOWED",
        ".sym,.dl_,.ex_,.pd_,.dbg.gz,.tar.bz2",
        aliases=ALIASES["tecken.download_file_extensions_allowed"],
    )
    extensions = _extensions(name, value)

    name, value = raw("tecken.session_secret", "TECKEN_SESSION_SECRET", "")
    secret = value.strip()
    if production:
        if not secret:
            raise ConfigError(f"{name}: required in production (at least 32 characters)")
        if secret.upper().startswith(PLACEHOLDER_PREFIX):
            raise ConfigError(f"{name}: still the placeholder value; set a real secret")
        if len(secret) < 32:
            raise ConfigError(f"{name}: must be at least 32 characters")
    elif not secret or secret.upper().startswith(PLACEHOLDER_PREFIX):
        # Development: a random secret per start (sessions do not survive restarts).
        secret = secrets.token_urlsafe(48)

    def boolean(key, env, default):
        n, v = raw(key, env, default)
        return _bool(n, v)

    def integer(key, env, default):
        n, v = raw(key, env, default)
        return _int(n, v)

    def seconds(key, env, default, positive=True):
        n, v = raw(key, env, default)
        return _seconds(n, v, positive)

    queue_size = integer("tecken.missing_symbol_queue_size", "TECKEN_MISSING_SYMBOL_QUEUE_SIZE", "10000")

    return Settings(
        environment=environment,
        here=here,
        locations=tuple(locs),
        try_location=try_loc,
        symbol_file_prefix=file_prefix,
        database_url=database_url,
        memcached_servers=memcached,
        download_file_extensions_allowed=extensions,
        session_secret=secret,
        secure_cookies=boolean("tecken.secure_cookies", "TECKEN_SECURE_COOKIES", "true" if production else "false"),
        missing_symbol_guard_seconds=integer(
            "tecken.missing_symbol_guard_seconds", "TECKEN_MISSING_SYMBOL_GUARD_SECONDS", "86400"
        ),
        missing_symbol_queue_size=queue_size,
        cache_found_ttl=integer("tecken.cache_found_ttl", "TECKEN_CACHE_FOUND_TTL", "21600"),
        cache_not_found_ttl=integer("tecken.cache_not_found_ttl", "TECKEN_CACHE_NOT_FOUND_TTL", "600"),
        presigned_url_expires=integer("tecken.presigned_url_expires", "TECKEN_PRESIGNED_URL_EXPIRES", "3600"),
        storage_connect_timeout=seconds(
            "tecken.storage_connect_timeout", "TECKEN_STORAGE_CONNECT_TIMEOUT", "2"
        ),
        storage_read_timeout=seconds("tecken.storage_read_timeout", "TECKEN_STORAGE_READ_TIMEOUT", "5"),
        storage_retries=integer("tecken.storage_retries", "TECKEN_STORAGE_RETRIES", "1"),
        storage_deadline=seconds("tecken.storage_deadline", "TECKEN_STORAGE_DEADLINE", "15"),
        rules_refresh_seconds=seconds(
            "tecken.rules_refresh_seconds", "TECKEN_RULES_REFRESH_SECONDS", "5", positive=False
        ),
        access_log=boolean("tecken.access_log", "TECKEN_ACCESS_LOG", "true"),
        public_url=_public_url(*raw("tecken.public_url", "TECKEN_PUBLIC_URL", "")),
        metrics_allowed_addresses=_networks(
            *raw("tecken.metrics_allowed_addresses", "TECKEN_METRICS_ALLOWED_ADDRESSES", DEFAULT_METRICS_ALLOWED)
        ),
        memcached_dead_retry_seconds=seconds(
            "tecken.memcached_dead_retry_seconds", "TECKEN_MEMCACHED_DEAD_RETRY_SECONDS", "30"
        ),
        missing_symbol_retry_max_seconds=seconds(
            "tecken.missing_symbol_retry_max_seconds", "TECKEN_MISSING_SYMBOL_RETRY_MAX_SECONDS", "1"
        ),
        version=_version(),
    )


def _version():
    try:
        from importlib.metadata import version

        return version("tecken-pyramid")
    except Exception:  # pragma: no cover - not installed
        return "0.0.0"
