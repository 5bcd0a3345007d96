"""SPEC §1 settings: defaults, ini then environment, value checks, one-line errors."""

import os

import pytest
from pyramid.paster import get_appsettings

from tecken_pyramid import locations
from tecken_pyramid.settings import ConfigError, load, normalise_database_url

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = "/srv/tecken"
SECRET = "s" * 40
DEFAULT_EXTENSIONS = (".sym", ".dl_", ".ex_", ".pd_", ".dbg.gz", ".tar.bz2")

# A minimal valid ini: what a test does not set comes from the code's defaults.
MINIMAL = {
    "tecken.symbol_urls": "var/symbols",
    "sqlalchemy.url": "sqlite:////tmp/x.sqlite3",
}
PRODUCTION_ENV = {
    "TECKEN_ENVIRONMENT": "production",
    "TECKEN_SESSION_SECRET": SECRET,
    "TECKEN_SYMBOL_URLS": "https://s3.us-west-2.amazonaws.com/bucket/pfx",
    "TECKEN_DATABASE_URL": "postgresql://postgres@db.example.com/tecken",
}


def settings(ini=None, environ=None, base=MINIMAL):
    merged = dict(base)
    merged.update(ini or {})
    return load(merged, environ=dict(environ or {}), here=HERE)


def config_error(ini=None, environ=None, base=MINIMAL):
    with pytest.raises(ConfigError) as info:
        settings(ini, environ, base)
    message = str(info.value)
    assert message.strip(), "a ConfigError needs a message"
    assert "\n" not in message and "\r" not in message, f"not one line: {message!r}"
    return message


# -- defaults --------------------------------------------------------------------------------------
def test_code_defaults():
    s = settings()
    assert s.environment == "development"
    assert s.symbol_file_prefix == "v1"
    assert s.memcached_servers == ()
    assert s.download_file_extensions_allowed == DEFAULT_EXTENSIONS
    assert s.secure_cookies is False
    assert s.missing_symbol_guard_seconds == 86400
    assert s.missing_symbol_queue_size == 10000
    assert s.cache_found_ttl == 21600
    assert s.cache_not_found_ttl == 600
    assert s.presigned_url_expires == 3600
    assert s.storage_connect_timeout == 2
    assert s.storage_read_timeout == 5
    assert s.storage_retries == 1
    assert s.storage_deadline == 15
    assert s.rules_refresh_seconds == 5
    # Try location empty = derived from the first location.
    assert s.try_location.directory == os.path.join(HERE, "var", "symbols", "try")
    assert s.try_location.index == "try"


def test_development_ini_defaults():
    ini = dict(get_appsettings(os.path.join(ROOT, "development.ini")))
    s = load(ini, environ={}, here=ROOT)
    assert s.environment == "development"
    assert len(s.locations) == 1
    assert s.locations[0].kind == locations.LOCAL
    assert s.locations[0].directory == os.path.join(ROOT, "var", "symbols")
    assert s.try_location.directory == os.path.join(ROOT, "var", "symbols", "try")
    assert s.database_url == f"sqlite:///{ROOT}/var/tecken.sqlite3"
    assert s.memcached_servers == ()
    assert s.secure_cookies is False
    assert s.symbol_file_prefix == "v1"
    assert s.download_file_extensions_allowed == DEFAULT_EXTENSIONS
    # Development: a random session secret per start.
    assert len(s.session_secret) >= 32
    assert load(ini, environ={}, here=ROOT).session_secret != s.session_secret


def test_production_ini_defaults_and_requirements():
    ini = dict(get_appsettings(os.path.join(ROOT, "production.ini")))
    required = {
        "TECKEN_SESSION_SECRET": SECRET,
        "TECKEN_SYMBOL_URLS": "https://s3.us-west-2.amazonaws.com/bucket",
        "TECKEN_DATABASE_URL": "postgresql://postgres@db.example.com/tecken",
    }
    s = load(ini, environ=required, here=ROOT)
    assert s.environment == "production"
    assert s.secure_cookies is True
    assert s.session_secret == SECRET
    assert s.database_url == "postgresql+psycopg://postgres@db.example.com/tecken"
    assert s.memcached_servers == ()  # allowed (a warning at start-up)
    for missing in required:
        environ = {k: v for k, v in required.items() if k != missing}
        with pytest.raises(ConfigError) as info:
            load(ini, environ=environ, here=ROOT)
        message = str(info.value)
        assert missing in message
        assert "\n" not in message


def test_production_accepts_sqlite_http_and_insecure_cookies():
    s = settings(
        environ={
            **PRODUCTION_ENV,
            "TECKEN_DATABASE_URL": "sqlite:////var/lib/tecken.sqlite3",
            "TECKEN_SYMBOL_URLS": "http://minio.internal:9000/symbols",
            "TECKEN_SECURE_COOKIES": "false",
        },
        base={},
    )
    assert s.environment == "production"
    assert s.database_url == "sqlite:////var/lib/tecken.sqlite3"
    assert s.locations[0].endpoint == "http://minio.internal:9000"
    assert s.secure_cookies is False


def test_production_default_secure_cookies_from_code():
    assert settings(environ=PRODUCTION_ENV, base={}).secure_cookies is True


# -- ini then environment, environment wins --------------------------------------------------------
OVERRIDES = [
    # (ini key, env var, ini value, env value, attribute, expected from ini, expected from env)
    (
        "tecken.environment",
        "TECKEN_ENVIRONMENT",
        "development",
        "production",
        "environment",
        "development",
        "production",
    ),
    ("tecken.symbol_file_prefix", "TECKEN_SYMBOL_FILE_PREFIX", "v1", "v2", "symbol_file_prefix", "v1", "v2"),
    (
        "sqlalchemy.url",
        "TECKEN_DATABASE_URL",
        "sqlite:////a.db",
        "sqlite:////b.db",
        "database_url",
        "sqlite:////a.db",
        "sqlite:////b.db",
    ),
    (
        "tecken.memcached_servers",
        "TECKEN_MEMCACHED_SERVERS",
        "a:11211",
        "b:1,c:2",
        "memcached_servers",
        (("a", 11211),),
        (("b", 1), ("c", 2)),
    ),
    (
        "tecken.download_file_extensions_allowed",
        "TECKEN_DOWNLOAD_FILE_EXTENSIONS_ALLOWED",
        ".sym",
        ".sym,.pdb",
        "download_file_extensions_allowed",
        (".sym",),
        (".sym", ".pdb"),
    ),
    (
        "tecken.session_secret",
        "TECKEN_SESSION_SECRET",
        "i" * 40,
        "e" * 40,
        "session_secret",
        "i" * 40,
        "e" * 40,
    ),
    ("tecken.secure_cookies", "TECKEN_SECURE_COOKIES", "true", "false", "secure_cookies", True, False),
    (
        "tecken.missing_symbol_guard_seconds",
        "TECKEN_MISSING_SYMBOL_GUARD_SECONDS",
        "10",
        "0",
        "missing_symbol_guard_seconds",
        10,
        0,
    ),
    (
        "tecken.missing_symbol_queue_size",
        "TECKEN_MISSING_SYMBOL_QUEUE_SIZE",
        "5",
        "7",
        "missing_symbol_queue_size",
        5,
        7,
    ),
    ("tecken.cache_found_ttl", "TECKEN_CACHE_FOUND_TTL", "100", "200", "cache_found_ttl", 100, 200),
    (
        "tecken.cache_not_found_ttl",
        "TECKEN_CACHE_NOT_FOUND_TTL",
        "30",
        "3600",
        "cache_not_found_ttl",
        30,
        3600,
    ),
    (
        "tecken.presigned_url_expires",
        "TECKEN_PRESIGNED_URL_EXPIRES",
        "60",
        "7200",
        "presigned_url_expires",
        60,
        7200,
    ),
    (
        "tecken.storage_connect_timeout",
        "TECKEN_STORAGE_CONNECT_TIMEOUT",
        "3",
        "4",
        "storage_connect_timeout",
        3,
        4,
    ),
    ("tecken.storage_read_timeout", "TECKEN_STORAGE_READ_TIMEOUT", "6", "7", "storage_read_timeout", 6, 7),
    ("tecken.storage_retries", "TECKEN_STORAGE_RETRIES", "0", "3", "storage_retries", 0, 3),
    ("tecken.storage_deadline", "TECKEN_STORAGE_DEADLINE", "20", "30", "storage_deadline", 20, 30),
    ("tecken.rules_refresh_seconds", "TECKEN_RULES_REFRESH_SECONDS", "1", "9", "rules_refresh_seconds", 1, 9),
]


@pytest.mark.parametrize(
    "key,env,ini_value,env_value,attr,from_ini,from_env", OVERRIDES, ids=[row[1] for row in OVERRIDES]
)
def test_ini_then_environment(key, env, ini_value, env_value, attr, from_ini, from_env):
    base = dict(MINIMAL, **{"tecken.session_secret": SECRET})
    assert getattr(settings({key: ini_value}, base=base), attr) == from_ini
    assert getattr(settings({key: ini_value}, {env: env_value}, base=base), attr) == from_env
    # Without the ini key, the environment alone works too.
    without = {k: v for k, v in base.items() if k != key}
    assert getattr(settings(environ={env: env_value}, base=without), attr) == from_env


def test_symbol_urls_ini_then_environment():
    s = settings({"tecken.symbol_urls": "from-ini"})
    assert [loc.directory for loc in s.locations] == [f"{HERE}/from-ini"]
    s = settings({"tecken.symbol_urls": "from-ini"}, {"TECKEN_SYMBOL_URLS": "a, /abs/b ,http://h:9000/bkt"})
    assert [loc.url for loc in s.locations] == [f"file://{HERE}/a", "file:///abs/b", "http://h:9000/bkt"]
    assert [loc.index for loc in s.locations] == ["0", "1", "2"]


def test_try_symbol_url_ini_then_environment():
    s = settings({"tecken.try_symbol_url": "https://h/try-bucket"})
    assert s.try_location.url == "https://h/try-bucket"
    assert s.try_location.index == "try"
    s = settings({"tecken.try_symbol_url": "https://h/try-bucket"}, {"TECKEN_TRY_SYMBOL_URL": "/other/try"})
    assert s.try_location.directory == "/other/try"
    # Empty (in the ini or the environment) means derived.
    s = settings({"tecken.try_symbol_url": "https://h/try-bucket"}, {"TECKEN_TRY_SYMBOL_URL": ""})
    assert s.try_location.directory == f"{HERE}/var/symbols/try"
    assert s.all_locations == s.locations + (s.try_location,)


def test_environment_names_the_bad_setting_over_the_ini():
    # The ini value is good, the environment's is bad: the environment variable is named.
    message = config_error({"tecken.cache_found_ttl": "10"}, {"TECKEN_CACHE_FOUND_TTL": "ten"})
    assert "TECKEN_CACHE_FOUND_TTL" in message
    # A bad ini value is named by its ini key.
    message = config_error({"tecken.cache_found_ttl": "ten"})
    assert "tecken.cache_found_ttl" in message


# -- value types -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value,expected",
    [
        ("true", True),
        ("TRUE", True),
        ("True", True),
        ("1", True),
        ("yes", True),
        ("YES", True),
        ("Yes", True),
        ("false", False),
        ("FALSE", False),
        ("False", False),
        ("0", False),
        ("no", False),
        ("NO", False),
        ("nO", False),
        (" true ", True),
    ],
)
def test_booleans(value, expected):
    assert settings(environ={"TECKEN_SECURE_COOKIES": value}).secure_cookies is expected
    assert settings({"tecken.secure_cookies": value}).secure_cookies is expected


@pytest.mark.parametrize("value", ["", "on", "off", "y", "n", "2", "-1", "truee", "t", "f", "enabled"])
def test_bad_booleans(value):
    message = config_error(environ={"TECKEN_SECURE_COOKIES": value})
    assert "TECKEN_SECURE_COOKIES" in message
    message = config_error({"tecken.secure_cookies": value})
    assert "tecken.secure_cookies" in message


INTEGERS = [
    (
        "TECKEN_MISSING_SYMBOL_GUARD_SECONDS",
        "tecken.missing_symbol_guard_seconds",
        "missing_symbol_guard_seconds",
    ),
    ("TECKEN_MISSING_SYMBOL_QUEUE_SIZE", "tecken.missing_symbol_queue_size", "missing_symbol_queue_size"),
    ("TECKEN_CACHE_FOUND_TTL", "tecken.cache_found_ttl", "cache_found_ttl"),
    ("TECKEN_CACHE_NOT_FOUND_TTL", "tecken.cache_not_found_ttl", "cache_not_found_ttl"),
    ("TECKEN_PRESIGNED_URL_EXPIRES", "tecken.presigned_url_expires", "presigned_url_expires"),
    ("TECKEN_STORAGE_RETRIES", "tecken.storage_retries", "storage_retries"),
]


@pytest.mark.parametrize("env,key,attr", INTEGERS, ids=[row[0] for row in INTEGERS])
def test_integers(env, key, attr):
    assert getattr(settings(environ={env: "0"}), attr) == 0
    assert getattr(settings(environ={env: "42"}), attr) == 42
    assert getattr(settings(environ={env: " 7 "}), attr) == 7
    assert getattr(settings(environ={env: "007"}), attr) == 7
    for bad in ("-1", "1.5", "abc", "1e3", "0x10", "+5", "1_000", "١٢", "12abc"):
        assert env in config_error(environ={env: bad}), bad
        assert key in config_error({key: bad}), bad


SECONDS = [
    ("TECKEN_STORAGE_CONNECT_TIMEOUT", "tecken.storage_connect_timeout", "storage_connect_timeout"),
    ("TECKEN_STORAGE_READ_TIMEOUT", "tecken.storage_read_timeout", "storage_read_timeout"),
    ("TECKEN_STORAGE_DEADLINE", "tecken.storage_deadline", "storage_deadline"),
]


@pytest.mark.parametrize("env,key,attr", SECONDS, ids=[row[0] for row in SECONDS])
def test_timeouts_and_deadline_are_positive(env, key, attr):
    assert getattr(settings(environ={env: "1"}), attr) == 1
    assert getattr(settings(environ={env: "30"}), attr) == 30
    for bad in ("0", "-1", "abc", "", "1e3", "-0.5", "five"):
        assert env in config_error(environ={env: bad}), bad
        assert key in config_error({key: bad}), bad


def test_rules_refresh_seconds_is_an_integer_at_least_zero():
    assert settings(environ={"TECKEN_RULES_REFRESH_SECONDS": "0"}).rules_refresh_seconds == 0
    assert settings(environ={"TECKEN_RULES_REFRESH_SECONDS": "10"}).rules_refresh_seconds == 10
    for bad in ("-1", "abc", ""):
        assert "TECKEN_RULES_REFRESH_SECONDS" in config_error(environ={"TECKEN_RULES_REFRESH_SECONDS": bad})


def test_environment_values():
    assert settings(environ={"TECKEN_ENVIRONMENT": "development"}).environment == "development"
    message = config_error(environ={"TECKEN_ENVIRONMENT": "staging"})
    assert "TECKEN_ENVIRONMENT" in message


# -- lists -----------------------------------------------------------------------------------------
def test_memcached_servers():
    s = settings(environ={"TECKEN_MEMCACHED_SERVERS": "10.0.0.1:11211, cache.internal:11212"})
    assert s.memcached_servers == (("10.0.0.1", 11211), ("cache.internal", 11212))
    assert settings(environ={"TECKEN_MEMCACHED_SERVERS": ""}).memcached_servers == ()
    for bad in ("localhost", "localhost:", ":11211", "host:port", "host:0", "host:70000"):
        assert "TECKEN_MEMCACHED_SERVERS" in config_error(environ={"TECKEN_MEMCACHED_SERVERS": bad}), bad


def test_extensions_kept_in_order_and_validated():
    s = settings(environ={"TECKEN_DOWNLOAD_FILE_EXTENSIONS_ALLOWED": ".sym, .dbg.gz,.tar.bz2"})
    assert s.download_file_extensions_allowed == (".sym", ".dbg.gz", ".tar.bz2")
    for bad in ("sym", ".s/y", ".a b", ".", ".x#"):
        message = config_error(environ={"TECKEN_DOWNLOAD_FILE_EXTENSIONS_ALLOWED": bad})
        assert "TECKEN_DOWNLOAD_FILE_EXTENSIONS_ALLOWED" in message, bad


def test_django_extensions_alias():
    alias = "DJANGO_DOWNLOAD_FILE_EXTENSIONS_ALLOWED"
    tecken = "TECKEN_DOWNLOAD_FILE_EXTENSIONS_ALLOWED"
    ini_key = "tecken.download_file_extensions_allowed"
    # The alias alone is read, and it beats the ini file (it is the environment).
    assert settings(environ={alias: ".foo"}).download_file_extensions_allowed == (".foo",)
    assert settings({ini_key: ".ini"}, {alias: ".foo"}).download_file_extensions_allowed == (".foo",)
    # TECKEN_ wins over the alias.
    s = settings({ini_key: ".ini"}, {alias: ".foo", tecken: ".bar"})
    assert s.download_file_extensions_allowed == (".bar",)
    # A bad alias value is named by the alias.
    assert alias in config_error(environ={alias: "nodot"})


# -- session secret --------------------------------------------------------------------------------
PLACEHOLDERS = ["CHANGE-ME-to-64-random-characters", "CHANGE-ME", "change-me-" + "x" * 40]


def test_production_secret_required():
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "TECKEN_SESSION_SECRET"}
    assert "TECKEN_SESSION_SECRET" in config_error(environ=env, base={})
    assert "TECKEN_SESSION_SECRET" in config_error(environ={**env, "TECKEN_SESSION_SECRET": ""}, base={})
    assert "TECKEN_SESSION_SECRET" in config_error(environ={**env, "TECKEN_SESSION_SECRET": "   "}, base={})
    # From the ini file the ini key is named.
    message = config_error({"tecken.session_secret": "short"}, env, base={})
    assert "tecken.session_secret" in message


def test_production_secret_length():
    env = dict(PRODUCTION_ENV)
    short = {**env, "TECKEN_SESSION_SECRET": "x" * 31}
    assert "TECKEN_SESSION_SECRET" in config_error(environ=short, base={})
    assert settings(environ={**env, "TECKEN_SESSION_SECRET": "x" * 32}, base={}).session_secret == "x" * 32


@pytest.mark.parametrize("placeholder", PLACEHOLDERS)
def test_production_secret_placeholder(placeholder):
    message = config_error(environ={**PRODUCTION_ENV, "TECKEN_SESSION_SECRET": placeholder}, base={})
    assert "TECKEN_SESSION_SECRET" in message


def test_ini_files_show_a_refused_placeholder():
    # The comments of the ini files show the placeholder; it must be refused in production.
    shown = []
    for name in ("development.ini", "production.ini"):
        with open(os.path.join(ROOT, name)) as f:
            for line in f:
                for word in line.replace("=", " ").split():
                    if word.upper().startswith("CHANGE-ME"):
                        shown.append(word.strip("`'\".,;"))
    assert shown, "an ini file's comments show the CHANGE-ME placeholder"
    for word in shown:
        with pytest.raises(ConfigError):
            settings(environ={**PRODUCTION_ENV, "TECKEN_SESSION_SECRET": word}, base={})


@pytest.mark.parametrize("secret", ["", "CHANGE-ME-to-64-random-characters"])
def test_development_secret_random(secret):
    a = settings(environ={"TECKEN_SESSION_SECRET": secret})
    b = settings(environ={"TECKEN_SESSION_SECRET": secret})
    assert len(a.session_secret) >= 32
    assert a.session_secret != b.session_secret
    assert not a.session_secret.upper().startswith("CHANGE-ME")


def test_development_short_secret_kept():
    # Development does not enforce the production rules on an explicit secret.
    assert settings(environ={"TECKEN_SESSION_SECRET": "devsecret"}).session_secret == "devsecret"


# -- required symbol urls and database url ---------------------------------------------------------
def test_symbol_urls_required():
    for environment in ("development", "production"):
        env = {**PRODUCTION_ENV, "TECKEN_ENVIRONMENT": environment}
        del env["TECKEN_SYMBOL_URLS"]
        assert "TECKEN_SYMBOL_URLS" in config_error(environ=env, base={})
        assert "TECKEN_SYMBOL_URLS" in config_error(environ={**env, "TECKEN_SYMBOL_URLS": " , "}, base={})


def test_database_url_required():
    env = dict(PRODUCTION_ENV)
    del env["TECKEN_DATABASE_URL"]
    assert "TECKEN_DATABASE_URL" in config_error(environ=env, base={})
    assert "TECKEN_DATABASE_URL" in config_error(environ={**env, "TECKEN_DATABASE_URL": ""}, base={})


@pytest.mark.parametrize(
    "url",
    [
        "postgres://u:p@db.example.com:5432/tecken",
        "postgresql://u:p@db.example.com:5432/tecken",
        "postgresql+psycopg://u:p@db.example.com:5432/tecken",
    ],
)
def test_postgres_urls_normalised(url):
    expected = "postgresql+psycopg://u:p@db.example.com:5432/tecken"
    assert normalise_database_url(url) == expected
    assert settings(environ={"TECKEN_DATABASE_URL": url}).database_url == expected
    assert settings({"sqlalchemy.url": url}).database_url == expected


@pytest.mark.parametrize(
    "url", ["mysql://u@h/db", "postgresql+psycopg2://u@h/db", "http://h/db", "not a url", "postgres://"]
)
def test_bad_database_urls(url):
    message = config_error(environ={"TECKEN_DATABASE_URL": url})
    assert "TECKEN_DATABASE_URL" in message
    assert "tecken.database" not in message


def test_bad_database_url_does_not_leak_the_password():
    message = config_error(environ={"TECKEN_DATABASE_URL": "mysql://user:hunter2@h/db"})
    assert "hunter2" not in message


# -- storage URLs ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "url",
    [
        "s3://bucket/pfx",
        "ftp://h/bucket",
        "https://h/",
        "https://h",
        "https://h:notaport/bucket",
        "https://key:secret@h/bucket",
        "https://h/bucket?access=everyone",
        "https://h/bucket?region=x",
        "file://relative/dir",
    ],
)
def test_bad_symbol_urls(url):
    message = config_error(environ={"TECKEN_SYMBOL_URLS": f"/ok,{url}"})
    assert "TECKEN_SYMBOL_URLS" in message
    message = config_error(environ={"TECKEN_TRY_SYMBOL_URL": url})
    assert "TECKEN_TRY_SYMBOL_URL" in message
    message = config_error({"tecken.symbol_urls": url})
    assert "tecken.symbol_urls" in message


def test_every_error_is_one_line_naming_its_setting():
    # A value with a newline must not break the one-line rule.
    for env, value in [
        ("TECKEN_CACHE_FOUND_TTL", "1\n2"),
        ("TECKEN_SECURE_COOKIES", "tr\nue"),
        ("TECKEN_SYMBOL_URLS", "s3://a\nb"),
        ("TECKEN_DATABASE_URL", "mysql://a\nb"),
        ("TECKEN_MEMCACHED_SERVERS", "a:1\n2"),
        ("TECKEN_STORAGE_DEADLINE", "1\n2"),
        ("TECKEN_DOWNLOAD_FILE_EXTENSIONS_ALLOWED", ".a\nb"),
        ("TECKEN_ENVIRONMENT", "prod\nuction"),
        ("TECKEN_SYMBOL_FILE_PREFIX", "v\n1"),
    ]:
        message = config_error(environ={env: value})
        assert env in message, (env, message)


def test_symbol_file_prefix():
    assert settings(environ={"TECKEN_SYMBOL_FILE_PREFIX": "/v2/"}).symbol_file_prefix == "v2"
    s = settings(environ={"TECKEN_SYMBOL_FILE_PREFIX": "v9"})
    assert s.locations[0].key("xul.pdb", "abc", "xul.sym") == "v9/xul.pdb/ABC/xul.sym"
    assert "TECKEN_SYMBOL_FILE_PREFIX" in config_error(environ={"TECKEN_SYMBOL_FILE_PREFIX": "v 1"})


# -- access log, public URL, metrics addresses (SPEC §1, §8) --------------------------------------
def test_access_log_public_url_metrics_defaults():
    s = settings()
    assert s.access_log is True
    assert s.public_url == ""
    allowed = {str(n) for n in s.metrics_allowed_addresses}
    assert {"127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"} <= allowed


def test_access_log_off_and_bad_value():
    assert settings(environ={"TECKEN_ACCESS_LOG": "false"}).access_log is False
    assert "TECKEN_ACCESS_LOG" in config_error(environ={"TECKEN_ACCESS_LOG": "sometimes"})


@pytest.mark.parametrize(
    "value, expected",
    [
        ("https://symbols.example.com/", "https://symbols.example.com"),
        ("http://h:8080/base", "http://h:8080/base"),
    ],
)
def test_public_url_accepted(value, expected):
    assert settings(environ={"TECKEN_PUBLIC_URL": value}).public_url == expected


@pytest.mark.parametrize(
    "value",
    [
        "ftp://h",
        "https://user@h",
        "https://h/?q=1",
        "https://h/#f",
        "https://h:port",
        "h.example.com",
        "https://h/a b",
        "https://h/\u00e9",
    ],
)
def test_public_url_rejected(value):
    assert "TECKEN_PUBLIC_URL" in config_error(environ={"TECKEN_PUBLIC_URL": value})


def test_metrics_allowed_addresses():
    s = settings(environ={"TECKEN_METRICS_ALLOWED_ADDRESSES": "203.0.113.7, 2001:db8::/32"})
    assert [str(n) for n in s.metrics_allowed_addresses] == ["203.0.113.7/32", "2001:db8::/32"]
    assert "TECKEN_METRICS_ALLOWED_ADDRESSES" in config_error(
        environ={"TECKEN_METRICS_ALLOWED_ADDRESSES": "10.0.0.0/33"}
    )


# -- the settings table (issue 8: settings described once) ----------------------------------------
def test_every_setting_is_one_row_of_the_table():
    from tecken_pyramid.settings import SETTINGS, Settings

    fields = [f.name for f in __import__("dataclasses").fields(Settings)]
    assert fields == [s.field for s in SETTINGS] + ["here", "version"]
    assert len({s.env for s in SETTINGS}) == len(SETTINGS)
    assert len({s.key for s in SETTINGS}) == len(SETTINGS)
    by_field = {s.field: s for s in SETTINGS}
    assert (by_field["locations"].key, by_field["locations"].env) == (
        "tecken.symbol_urls",
        "TECKEN_SYMBOL_URLS",
    )
    assert (by_field["database_url"].key, by_field["database_url"].env) == (
        "sqlalchemy.url",
        "TECKEN_DATABASE_URL",
    )
    assert [s.field for s in SETTINGS if s.secret] == ["session_secret"]


def test_describe_shows_every_setting_but_the_secret():
    from tecken_pyramid.settings import describe

    s = settings(
        environ={
            **PRODUCTION_ENV,
            "TECKEN_DATABASE_URL": "postgresql://u:pw@db/x",
            "TECKEN_MEMCACHED_SERVERS": "a:1,[::1]:2",
        }
    )
    rows = {field: (source, text) for field, source, text in describe(s)}
    assert "session_secret" not in rows and SECRET not in str(rows)
    assert rows["database_url"] == ("TECKEN_DATABASE_URL", "postgresql+psycopg://u:***@db/x")
    assert rows["memcached_servers"] == ("TECKEN_MEMCACHED_SERVERS", "a:1\n[::1]:2")
    assert rows["access_log"] == ("TECKEN_ACCESS_LOG", "true")
    assert rows["storage_deadline"] == ("TECKEN_STORAGE_DEADLINE", "15")
    assert rows["here"][1] == HERE


def test_read_one_uses_the_table_aliases_and_checks():
    from tecken_pyramid.settings import read_one

    field = "download_file_extensions_allowed"
    assert read_one({}, {}, field) == DEFAULT_EXTENSIONS
    assert read_one({}, {"DJANGO_DOWNLOAD_FILE_EXTENSIONS_ALLOWED": ".a,.b"}, field) == (".a", ".b")
    assert read_one(
        {},
        {"DJANGO_DOWNLOAD_FILE_EXTENSIONS_ALLOWED": ".a", "TECKEN_DOWNLOAD_FILE_EXTENSIONS_ALLOWED": ".c"},
        field,
    ) == (".c",)
    with pytest.raises(ConfigError):
        read_one({}, {"TECKEN_DOWNLOAD_FILE_EXTENSIONS_ALLOWED": "sym"}, field)
