"""The one place that reads settings.

Every setting of SPEC §1 is one row of :data:`SETTINGS` (field, ini key,
environment variable, default, parser, secrecy). :func:`load` reads each from the
ini file's ``[app:main]`` and then from the environment (the environment wins),
checks it and builds a typed, frozen :class:`Settings`; the dashboard's
configuration view (:func:`describe`) and the migrations' seeding read the same
table. Everything else in the app reads ``registry.tecken`` and never looks at
raw strings. Parsers of single values live in :mod:`.setting_values`.

A mistake raises :class:`ConfigError` whose text is one line naming the setting;
callers turn it into ``sys.exit(...)`` so that ``pserve`` and the command line print
that line and exit 1 without a traceback.
"""

import dataclasses
import os
import re
import secrets
from collections.abc import Mapping

from . import locations as locations_mod
from .rules import INVALID_NAME_CHARS, check_extension  # noqa: F401 (check_extension re-exported)
from .setting_values import (  # noqa: F401 (re-exported: callers import them from here)
    DEFAULT_METRICS_ALLOWED,
    ConfigError,
    _bool,
    _database,
    _directory,
    _domains,
    _extensions,
    _int,
    _list,
    _memcached,
    _networks,
    _public_url,
    _redact,
    _seconds,
    normalise_database_url,
)

PLACEHOLDER_PREFIX = "CHANGE-ME"


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


# -- parsers that need what was read before them (the table's order) -------------
def _environment(name, value, _ctx):
    environment = value.strip().lower()
    if environment not in ("development", "production"):
        raise ConfigError(f"{name}: expected development or production, got {value!r}")
    return environment


def _file_prefix(name, value, _ctx):
    prefix = value.strip().strip("/")
    if INVALID_NAME_CHARS.search(prefix) or re.search(r"\s", prefix):
        raise ConfigError(f"{name}: contains an invalid character: {value!r}")
    return prefix


def _locations(name, value, ctx):
    urls = _list(value)
    if not urls:
        raise ConfigError(f"{name}: required, a comma-separated list of storage locations")
    try:
        return tuple(
            locations_mod.parse(
                url, here=ctx["here"], file_prefix=ctx["symbol_file_prefix"], index=str(index)
            )
            for index, url in enumerate(urls)
        )
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc}") from None


def _try_location(name, value, ctx):
    try:
        if value.strip():
            return locations_mod.parse(
                value.strip(), here=ctx["here"], file_prefix=ctx["symbol_file_prefix"], index="try"
            )
        return locations_mod.derive_try(ctx["locations"][0])
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc}") from None


def _upload_location(name, value, ctx):
    """Where regular uploads go: one of the download locations (never the try one),
    so that every upload is found by downloads; matched by storage identity, so an
    S3 bucket read as ``?access=public`` can be named without it (SPEC §9)."""
    regular = ctx["locations"]
    if not value.strip():
        return regular[0]
    try:
        wanted = locations_mod.parse(
            value.strip(), here=ctx["here"], file_prefix=ctx["symbol_file_prefix"], index="upload"
        )
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc}") from None
    for location in regular:
        if location.same_storage(wanted):
            return location
    raise ConfigError(f"{name}: must be one of TECKEN_SYMBOL_URLS (uploads must be found by downloads)")


def _snippets(name, value, _ctx):
    return tuple(_list(value))


def _required_database(name, value, _ctx):
    if not value.strip():
        raise ConfigError(f"{name}: required, a sqlite:// or postgresql:// database URL")
    return _database(name, value)


def _session_secret(name, value, ctx):
    secret = value.strip()
    if ctx["environment"] == "production":
        if not secret:
            raise ConfigError(f"{name}: required in production (at least 32 characters)")
        if secret.upper().startswith(PLACEHOLDER_PREFIX):
            raise ConfigError(f"{name}: still the placeholder value; set a real secret")
        if len(secret) < 32:
            raise ConfigError(f"{name}: must be at least 32 characters")
    elif not secret or secret.upper().startswith(PLACEHOLDER_PREFIX):
        # Development: a random secret per start (sessions do not survive restarts).
        secret = secrets.token_urlsafe(48)
    return secret


def _simple(parse):
    """A parser of the value alone, as the table's parsers take (name, value, ctx)."""
    return lambda name, value, _ctx: parse(name, value)


def _positive_int(name, value):
    number = _int(name, value)
    if number < 1:
        raise ConfigError(f"{name}: must be at least 1, got {value!r}")
    return number


def _positive_or_zero_seconds(name, value):
    return _seconds(name, value, positive=False)


def _production_default(production_value, development_value):
    return lambda ctx: production_value if ctx["environment"] == "production" else development_value


@dataclasses.dataclass(frozen=True)
class Setting:
    """One setting: where it is read, its default, how it is parsed and shown."""

    field: str  # the attribute of Settings
    key: str  # the ini key in [app:main]
    env: str  # the environment variable (wins over the ini file)
    default: object  # text, or a function of what was read before it
    parse: object  # (name, value, ctx) -> value; raises ConfigError
    secret: bool = False  # never shown (the dashboard, logs)
    aliases: tuple = ()  # more environment variables, read after ``env``
    internal: bool = False  # a knob for tests, not in SPEC §1's table


def _s(field, default, parse, *, key=None, env=None, **kw):
    """A row of the table; the ini key and variable follow from the field by default."""
    return Setting(field, key or "tecken." + field, env or "TECKEN_" + field.upper(), default, parse, **kw)


# Every setting of SPEC §1, in the order they are read (a parser may use the values
# above it). A new setting is one line here; the loader, the dashboard's
# configuration view and the migrations' seeding all read this table.
SETTINGS = (
    _s("environment", "development", _environment),
    _s("symbol_file_prefix", "v1", _file_prefix),
    _s("locations", "", _locations, key="tecken.symbol_urls", env="TECKEN_SYMBOL_URLS"),
    _s("try_location", "", _try_location, key="tecken.try_symbol_url", env="TECKEN_TRY_SYMBOL_URL"),
    _s("database_url", "", _required_database, key="sqlalchemy.url", env="TECKEN_DATABASE_URL"),
    _s("memcached_servers", "", _simple(_memcached)),
    _s(
        "download_file_extensions_allowed",
        ".sym,.dl_,.ex_,.pd_,.dbg.gz,.tar.bz2",
        _simple(_extensions),
        aliases=("DJANGO_DOWNLOAD_FILE_EXTENSIONS_ALLOWED",),
    ),
    _s("session_secret", "", _session_secret, secret=True),
    _s("secure_cookies", _production_default("true", "false"), _simple(_bool)),
    _s("missing_symbol_guard_seconds", "86400", _simple(_int)),
    _s("missing_symbol_queue_size", "10000", _simple(_int)),
    _s("cache_found_ttl", "21600", _simple(_int)),
    _s("cache_not_found_ttl", "600", _simple(_int)),
    _s("presigned_url_expires", "3600", _simple(_int)),
    _s("storage_connect_timeout", "2", _simple(_seconds)),
    _s("storage_read_timeout", "5", _simple(_seconds)),
    _s("storage_retries", "1", _simple(_int)),
    _s("storage_deadline", "15", _simple(_seconds)),
    _s("rules_refresh_seconds", "5", _simple(_positive_or_zero_seconds)),
    _s("access_log", "true", _simple(_bool)),
    _s("public_url", "", _simple(_public_url)),
    _s("metrics_allowed_addresses", DEFAULT_METRICS_ALLOWED, _simple(_networks)),
    _s("upload_url", "", _upload_location),
    _s("upload_max_bytes", "2147483648", _simple(_int)),
    _s("upload_max_files", "20000", _simple(_int)),
    _s("upload_max_uncompressed_bytes", "8589934592", _simple(_int)),
    _s("upload_by_download_domains", "", _simple(_domains)),
    _s("disallowed_symbols_snippets", "qcom/proprietary", _snippets),
    _s("upload_tempdir", "", _simple(_directory)),
    # Not in SPEC §1: uploads a process works on at once (each holds a waitress thread
    # for its whole run); more are answered 503 with Retry-After, so downloads keep threads.
    _s("upload_concurrency", "2", _simple(_positive_int)),
    # How long a retry waits for another request uploading the same archive (then
    # 409), and after how long without progress a pending upload counts as abandoned.
    _s("upload_wait_seconds", "25", _simple(_seconds), internal=True),
    _s("upload_stale_seconds", "300", _simple(_seconds), internal=True),
    _s("memcached_dead_retry_seconds", "30", _simple(_seconds), internal=True),
    _s("missing_symbol_retry_max_seconds", "1", _simple(_seconds), internal=True),
)
SETTINGS_BY_FIELD = {setting.field: setting for setting in SETTINGS}


class _SettingsBase:
    @property
    def all_locations(self):
        return self.locations + (self.try_location,)


Settings = dataclasses.make_dataclass(
    "Settings",
    [(setting.field, object) for setting in SETTINGS] + [("here", str), ("version", str)],
    bases=(_SettingsBase,),
    frozen=True,
)
Settings.__doc__ = "The typed, frozen settings (one attribute per row of SETTINGS, plus here and version)."


def read_raw(ini, environ, key):
    """One raw setting value by ini key (the environment, aliases included, wins), or None."""
    setting = next(s for s in SETTINGS if s.key == key)
    return _Source(ini, environ).get(setting.key, [setting.env, *setting.aliases])[1]


def read_one(ini, environ, field, here=None):
    """One setting parsed on its own (for settings no other setting depends on)."""
    setting = SETTINGS_BY_FIELD[field]
    ctx = {"here": here or ini.get("here") or os.getcwd(), "environment": "development"}
    name, value = _Source(ini, environ).get(
        setting.key, [setting.env, *setting.aliases], _default(setting, ctx)
    )
    return setting.parse(name, value, ctx)


def _default(setting, ctx):
    return setting.default(ctx) if callable(setting.default) else setting.default


def load(ini: Mapping, environ: Mapping | None = None, here: str | None = None):
    """Build :class:`Settings` from ini values and the environment.

    Raises ConfigError with one line naming the setting on any mistake.
    """
    environ = os.environ if environ is None else environ
    ctx = {"here": here or ini.get("here") or os.getcwd()}
    source = _Source(ini, environ)
    for setting in SETTINGS:
        name, value = source.get(setting.key, [setting.env, *setting.aliases], _default(setting, ctx))
        ctx[setting.field] = setting.parse(name, value, ctx)
    return Settings(**ctx, version=_version())


def describe(settings):
    """[(field, where it comes from, value text)] for every setting but the secrets."""
    rows = [("here", "(directory of the ini file)", settings.here)]
    for setting in SETTINGS:
        if not setting.secret:
            rows.append((setting.field, setting.env, show(getattr(settings, setting.field))))
    rows.append(("version", "(installed package)", settings.version))
    return rows


def show(value):
    """A setting's value as text for people (database passwords redacted)."""
    if isinstance(value, locations_mod.Location):
        return value.url
    if isinstance(value, tuple) and value and isinstance(value[0], locations_mod.Location):
        return "\n".join(location.url for location in value)
    if isinstance(value, tuple) and value and isinstance(value[0], tuple):  # memcached servers
        return "\n".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in value)
    if isinstance(value, tuple):
        return " ".join(str(v) for v in value) or "(none)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str) and "://" in value:
        return _redact(value)
    return str(value)


def _version():
    try:
        from importlib.metadata import version

        return version("tecken-pyramid")
    except Exception:  # pragma: no cover - not installed
        return "0.0.0"
