"""SPEC §1: the real ``tecken-pyramid`` command, run as a subprocess.

Exit codes: 0 success, 2 usage error, 1 operational error (one line on stderr),
3 nothing to do; never a traceback.
"""

import datetime
import json
import os
import subprocess
import sys
import uuid

import pytest
from pymemcache.client.base import Client as MemcacheClient
from pyramid.paster import get_appsettings
from sqlalchemy import insert, inspect, select, text, update

from tecken_pyramid import cache as cache_mod
from tecken_pyramid import settings as settings_mod
from tecken_pyramid.db import make_engine
from tecken_pyramid.models import AuditLog, MissingSymbol, User
from tecken_pyramid.passwords import verify_password
from tests.conftest import (
    ROOT,
    free_port,
    missing_service,
    postgres_admin_url,
    postgres_available,
    selected_database_kind,
)

BIN = os.path.dirname(sys.executable)
TECKEN = os.path.join(BIN, "tecken-pyramid")
ALEMBIC = os.path.join(BIN, "alembic")
DEV_INI = os.path.join(ROOT, "development.ini")
PROD_INI = os.path.join(ROOT, "production.ini")
UNREACHABLE_DB = "postgresql://postgres@127.0.0.1:1/x"
SECRET = "p" * 40


def base_env(**extra):
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TECKEN_", "DJANGO_")) or k.startswith("TECKEN_TEST_")
    }
    env.update(extra)
    return env


def run(*args, env=None, input=None, timeout=120):
    result = subprocess.run(
        [TECKEN, *args],
        cwd=ROOT,
        env=env if env is not None else base_env(),
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert "Traceback" not in result.stderr, result.stderr
    assert "Traceback" not in result.stdout, result.stdout
    return result


def one_line(stderr):
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one stderr line, got {stderr!r}"
    return lines[0]


def assert_usage_error(result):
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "usage:" in result.stderr
    assert "error:" in result.stderr


# -- fresh databases (SQLite files or PostgreSQL databases of the selected kind) -------------------
class FreshDatabases:
    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.kind = selected_database_kind()
        self.names = []

    def __call__(self):
        if self.kind == "sqlite":
            return f"sqlite:///{self.tmp_path}/db-{uuid.uuid4().hex[:8]}.sqlite3"
        import psycopg

        name = f"tecken_test_{uuid.uuid4().hex[:12]}"
        admin = postgres_admin_url().replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.names.append(name)
        # A plain postgresql:// URL: the command normalises it to psycopg 3.
        return f"{admin.rsplit('/', 1)[0]}/{name}"

    def drop(self):
        if not self.names:
            return
        import psycopg

        admin = postgres_admin_url().replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(admin, autocommit=True) as conn:
            for name in self.names:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def fresh_db(tmp_path):
    if selected_database_kind() == "postgresql" and not postgres_available():
        missing_service("PostgreSQL does not answer")
    factory = FreshDatabases(tmp_path)
    yield factory
    factory.drop()


def engine_for(url):
    return make_engine(settings_mod.normalise_database_url(url))


def snapshot(url):
    """Tables with their columns, and the seeded rule rows."""
    engine = engine_for(url)
    try:
        insp = inspect(engine)
        tables = {t: sorted(c["name"] for c in insp.get_columns(t)) for t in insp.get_table_names()}
        with engine.connect() as conn:
            extensions = sorted(
                conn.execute(text("SELECT extension, created_by FROM allowed_extension")).all()
            )
            patterns = sorted(
                conn.execute(text("SELECT pattern, enabled, note, created_by FROM ignore_pattern")).all()
            )
            revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    finally:
        engine.dispose()
    return tables, [tuple(r) for r in extensions], [tuple(r) for r in patterns], revision


def head_revision():
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(Config(DEV_INI)).get_current_head()


def extensions_of(url):
    engine = engine_for(url)
    try:
        with engine.connect() as conn:
            return sorted(conn.execute(text("SELECT extension FROM allowed_extension")).scalars())
    finally:
        engine.dispose()


# -- migrate ---------------------------------------------------------------------------------------
def test_migrate_equals_alembic_upgrade_head(fresh_db):
    one, two = fresh_db(), fresh_db()
    result = run("migrate", "development.ini", env=base_env(TECKEN_DATABASE_URL=one))
    assert result.returncode == 0, result.stderr
    head = head_revision()
    assert head in result.stdout
    assert len(result.stdout.strip().splitlines()) == 1

    alembic = subprocess.run(
        [ALEMBIC, "-c", "development.ini", "upgrade", "head"],
        cwd=ROOT,
        env=base_env(TECKEN_DATABASE_URL=two),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert alembic.returncode == 0, alembic.stderr
    assert "Traceback" not in alembic.stderr

    a, b = snapshot(one), snapshot(two)
    assert a == b
    tables, extensions, patterns, revision = a
    expected_tables = {"allowed_extension", "ignore_pattern", "users", "missing_symbol", "alembic_version"}
    assert expected_tables <= set(tables)
    assert sorted(e for e, _ in extensions) == sorted([".sym", ".dl_", ".ex_", ".pd_", ".dbg.gz", ".tar.bz2"])
    assert sorted(p[0] for p in patterns) == sorted(["*/*/file.ptr", "*/" + "0" * 33 + "/*"])
    assert all(p[1] for p in patterns)
    assert revision == head
    assert set(tables["missing_symbol"]) >= {
        "id",
        "hash",
        "symbol",
        "debugid",
        "filename",
        "code_file",
        "code_id",
        "count",
        "created_at",
        "modified_at",
    }


def test_migrate_again_is_a_no_op_and_never_re_adds_removed_rows(fresh_db):
    url = fresh_db()
    env = base_env(TECKEN_DATABASE_URL=url)
    assert run("migrate", "development.ini", env=env).returncode == 0
    engine = engine_for(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM allowed_extension WHERE extension = '.dl_'"))
            conn.execute(text("DELETE FROM ignore_pattern WHERE pattern = '*/*/file.ptr'"))
    finally:
        engine.dispose()
    result = run("migrate", "development.ini", env=env)
    assert result.returncode == 0, result.stderr
    assert head_revision() in result.stdout
    assert ".dl_" not in extensions_of(url)
    _tables, _exts, patterns, _rev = snapshot(url)
    assert [p[0] for p in patterns] == ["*/" + "0" * 33 + "/*"]


def test_migrate_seeds_extensions_from_the_setting(fresh_db):
    url = fresh_db()
    env = base_env(TECKEN_DATABASE_URL=url, TECKEN_DOWNLOAD_FILE_EXTENSIONS_ALLOWED=".sym,.foo")
    assert run("migrate", "development.ini", env=env).returncode == 0
    assert extensions_of(url) == [".foo", ".sym"]


def test_alembic_seeds_extensions_from_the_setting(fresh_db):
    url = fresh_db()
    env = base_env(TECKEN_DATABASE_URL=url, TECKEN_DOWNLOAD_FILE_EXTENSIONS_ALLOWED=".sym,.bar")
    result = subprocess.run(
        [ALEMBIC, "-c", "development.ini", "upgrade", "head"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert extensions_of(url) == [".bar", ".sym"]


def test_migrate_reads_the_django_alias_and_tecken_wins(fresh_db):
    # development.ini sets the extensions; the environment (alias included) wins over it.
    url = fresh_db()
    env = base_env(TECKEN_DATABASE_URL=url, DJANGO_DOWNLOAD_FILE_EXTENSIONS_ALLOWED=".baz")
    assert run("migrate", "development.ini", env=env).returncode == 0
    assert extensions_of(url) == [".baz"]
    url = fresh_db()
    env = base_env(
        TECKEN_DATABASE_URL=url,
        DJANGO_DOWNLOAD_FILE_EXTENSIONS_ALLOWED=".baz",
        TECKEN_DOWNLOAD_FILE_EXTENSIONS_ALLOWED=".sym,.qux",
    )
    assert run("migrate", "development.ini", env=env).returncode == 0
    assert extensions_of(url) == [".qux", ".sym"]


def test_migrate_with_production_ini(fresh_db):
    url = fresh_db()
    env = base_env(
        TECKEN_DATABASE_URL=url,
        TECKEN_SESSION_SECRET=SECRET,
        TECKEN_SYMBOL_URLS="https://s3.us-west-2.amazonaws.com/bucket",
    )
    result = run("migrate", "production.ini", env=env)
    assert result.returncode == 0, result.stderr
    assert head_revision() in result.stdout


def test_migrate_unreachable_database():
    result = run("migrate", "development.ini", env=base_env(TECKEN_DATABASE_URL=UNREACHABLE_DB))
    assert result.returncode == 1
    assert "TECKEN_DATABASE_URL" in one_line(result.stderr)
    assert result.stdout == ""


@pytest.fixture
def regular_file(tmp_path):
    path = tmp_path / "a-regular-file"
    path.write_text("not a directory")
    return path


def unusable_sqlite_urls(regular_file):
    return [
        f"sqlite:///{regular_file}/sub/tecken.sqlite3",  # the directory cannot be created
        f"sqlite:///{regular_file}/tecken.sqlite3",  # the parent is a regular file
        f"sqlite:///{regular_file.parent}",  # a directory, not a database file
    ]


UNUSABLE_COMMANDS = [
    ("migrate", "development.ini"),
    ("create-superuser", "development.ini", "--username", "erin", "--password-stdin"),
    ("cleanse-missing-symbols", "development.ini"),
    ("cleanse-missing-symbols", "development.ini", "--dry-run"),
]


@pytest.mark.parametrize("args", UNUSABLE_COMMANDS, ids=lambda a: " ".join(a[:1] + a[2:]))
def test_unusable_sqlite_database_is_one_line_naming_the_setting(regular_file, args):
    for url in unusable_sqlite_urls(regular_file):
        result = run(*args, env=base_env(TECKEN_DATABASE_URL=url), input="long-enough\n")
        assert result.returncode == 1, (url, result.stderr)
        line = one_line(result.stderr)
        assert line.startswith("tecken-pyramid: database unavailable (TECKEN_DATABASE_URL)"), (url, line)
        assert result.stdout == ""
    assert regular_file.read_text() == "not a directory"


@pytest.mark.parametrize("args", UNUSABLE_COMMANDS, ids=lambda a: " ".join(a[:1] + a[2:]))
def test_unreachable_postgresql_is_one_line_naming_the_setting(args):
    result = run(*args, env=base_env(TECKEN_DATABASE_URL=UNREACHABLE_DB), input="long-enough\n")
    assert result.returncode == 1
    assert one_line(result.stderr).startswith("tecken-pyramid: database unavailable (TECKEN_DATABASE_URL)")
    assert result.stdout == ""


def test_migrate_production_without_database_url():
    result = run("migrate", "production.ini", env=base_env(TECKEN_SESSION_SECRET=SECRET))
    assert result.returncode == 1
    assert "TECKEN_DATABASE_URL" in one_line(result.stderr)


def test_migrate_bad_database_url():
    result = run("migrate", "development.ini", env=base_env(TECKEN_DATABASE_URL="mysql://u:secretpw@h/db"))
    assert result.returncode == 1
    line = one_line(result.stderr)
    assert "TECKEN_DATABASE_URL" in line
    assert "secretpw" not in line


def test_missing_ini_file():
    result = run("migrate", "nope.ini")
    assert result.returncode == 1
    assert "nope.ini" in one_line(result.stderr)


# -- create-superuser ------------------------------------------------------------------------------
def user_row(db, username):
    engine = db.engine()
    try:
        with engine.connect() as conn:
            return conn.execute(select(User).where(User.username == username)).mappings().one_or_none()
    finally:
        engine.dispose()


def test_create_superuser_creates_then_updates(db):
    env = base_env(TECKEN_DATABASE_URL=db.url)
    result = run(
        "create-superuser",
        "development.ini",
        "--username",
        "alice",
        "--password-stdin",
        env=env,
        input="first-password\n",
    )
    assert result.returncode == 0, result.stderr
    assert "alice" in result.stdout
    row = user_row(db, "alice")
    assert row["is_superuser"] and row["is_active"]
    assert row["password_hash"].startswith("$argon2")
    assert verify_password(row["password_hash"], "first-password")
    assert not verify_password(row["password_hash"], "first-password\n")

    # An operator made her an inactive non-superuser; re-running restores and resets.
    engine = db.engine()
    try:
        with engine.begin() as conn:
            conn.execute(
                update(User).where(User.username == "alice").values(is_superuser=False, is_active=False)
            )
    finally:
        engine.dispose()
    result = run(
        "create-superuser",
        "development.ini",
        "--username",
        "alice",
        "--password-stdin",
        env=env,
        input="second password with spaces\n",
    )
    assert result.returncode == 0, result.stderr
    row = user_row(db, "alice")
    assert row["is_superuser"] and row["is_active"]
    assert verify_password(row["password_hash"], "second password with spaces")
    assert not verify_password(row["password_hash"], "first-password")
    engine = db.engine()
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT COUNT(*) FROM users WHERE username = 'alice'")).scalar_one() == 1
    finally:
        engine.dispose()


def test_create_superuser_password_without_newline(db):
    env = base_env(TECKEN_DATABASE_URL=db.url)
    result = run(
        "create-superuser",
        "development.ini",
        "--username",
        "bob",
        "--password-stdin",
        env=env,
        input="exactly8",
    )
    assert result.returncode == 0, result.stderr
    assert verify_password(user_row(db, "bob")["password_hash"], "exactly8")


@pytest.mark.parametrize("password", ["short\n", "1234567\n", "\n", ""])
def test_create_superuser_short_password(db, password):
    env = base_env(TECKEN_DATABASE_URL=db.url)
    result = run(
        "create-superuser",
        "development.ini",
        "--username",
        "carol",
        "--password-stdin",
        env=env,
        input=password,
    )
    assert result.returncode == 1
    assert "8" in one_line(result.stderr)
    assert user_row(db, "carol") is None


def test_create_superuser_without_a_terminal(db):
    # No --password-stdin and no terminal to prompt on: an operational error, not a hang.
    env = base_env(TECKEN_DATABASE_URL=db.url)
    result = subprocess.run(
        [TECKEN, "create-superuser", "development.ini", "--username", "dave"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    one_line(result.stderr)
    assert user_row(db, "dave") is None


def test_create_superuser_unreachable_database():
    result = run(
        "create-superuser",
        "development.ini",
        "--username",
        "erin",
        "--password-stdin",
        env=base_env(TECKEN_DATABASE_URL=UNREACHABLE_DB),
        input="long-enough\n",
    )
    assert result.returncode == 1
    assert "TECKEN_DATABASE_URL" in one_line(result.stderr)


@pytest.mark.parametrize(
    "username, message",
    [
        ("del\x7fname", "control characters"),
        ("c1\x85name", "control characters"),
        ("zero\u200bwidth", "control characters"),
        ("line\u2028sep", "control characters"),
        ("has space", "no spaces"),
        ("x" * 151, "at most 150"),
        ("   ", "required"),
    ],
)
def test_create_superuser_applies_the_console_username_rules(db, username, message):
    env = base_env(TECKEN_DATABASE_URL=db.url)
    result = run(
        "create-superuser",
        "development.ini",
        "--username",
        username,
        "--password-stdin",
        env=env,
        input="long-enough\n",
    )
    assert result.returncode == 1
    assert message in one_line(result.stderr)
    assert all_usernames(db) == []


def test_create_superuser_password_maximum(db):
    env = base_env(TECKEN_DATABASE_URL=db.url)
    result = run(
        "create-superuser",
        "development.ini",
        "--username",
        "frank",
        "--password-stdin",
        env=env,
        input="x" * 1025 + "\n",
    )
    assert result.returncode == 1
    assert "at most 1024" in one_line(result.stderr)
    result = run(
        "create-superuser",
        "development.ini",
        "--username",
        "frank",
        "--password-stdin",
        env=env,
        input="x" * 1024 + "\n",
    )
    assert result.returncode == 0, result.stderr


def test_create_superuser_refuses_a_name_differing_only_in_case(db):
    env = base_env(TECKEN_DATABASE_URL=db.url)
    assert (
        run(
            "create-superuser",
            "development.ini",
            "--username",
            "admin",
            "--password-stdin",
            env=env,
            input="long-enough\n",
        ).returncode
        == 0
    )
    for other in ("Admin", "ADMIN"):
        result = run(
            "create-superuser",
            "development.ini",
            "--username",
            other,
            "--password-stdin",
            env=env,
            input="long-enough\n",
        )
        assert result.returncode == 1
        assert "admin" in one_line(result.stderr)
    assert all_usernames(db) == ["admin"]


def test_create_superuser_writes_audit_rows(db):
    env = base_env(TECKEN_DATABASE_URL=db.url)
    for password in ("first-password\n", "second-password\n"):
        result = run(
            "create-superuser",
            "development.ini",
            "--username",
            "grace",
            "--password-stdin",
            env=env,
            input=password,
        )
        assert result.returncode == 0, result.stderr
    engine = db.engine()
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(AuditLog).order_by(AuditLog.id)).mappings().all()
    finally:
        engine.dispose()
    assert [(r["username"], r["action"], r["target"]) for r in rows] == [
        ("(command line)", "user.create", "grace"),
        ("(command line)", "user.reset", "grace"),
    ]
    assert rows[0]["before"] is None
    assert json.loads(rows[0]["after"]) == {
        "username": "grace",
        "superuser": True,
        "active": True,
        "password": "(set)",
    }
    assert json.loads(rows[1]["after"])["password"] == "(reset)"
    for r in rows:
        text_ = (r["before"] or "") + (r["after"] or "")
        assert "argon2" not in text_ and "first-password" not in text_ and "second-password" not in text_


def all_usernames(db):
    engine = db.engine()
    try:
        with engine.connect() as conn:
            return sorted(conn.execute(select(User.username)).scalars())
    finally:
        engine.dispose()


def test_create_superuser_missing_username():
    assert_usage_error(run("create-superuser", "development.ini", "--password-stdin", input="long-enough\n"))


# -- usage errors ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "args",
    [
        [],
        ["frobnicate", "development.ini"],
        ["migrate"],
        ["invalidate", "development.ini"],
        ["cleanse-missing-symbols", "development.ini", "--days", "-1"],
        ["cleanse-missing-symbols", "development.ini", "--days", "abc"],
        ["migrate", "development.ini", "--bogus"],
    ],
    ids=[
        "nothing",
        "unknown-subcommand",
        "migrate-no-ini",
        "invalidate-no-key",
        "days-negative",
        "days-text",
        "unknown-option",
    ],
)
def test_usage_errors(args):
    assert_usage_error(run(*args))


@pytest.mark.parametrize(
    "key",
    [
        "xul.pdb/XYZ/xul.sym",
        "xul.pdb/ABC",
        "xul.pdb/ABC/xul.sym/extra",
        "/ABC/xul.sym",
        "xul.pdb/ABC/",
        "xul.pdb//xul.sym",
        "xul.pdb/AB-C/xul.sym",
    ],
)
def test_invalidate_bad_key_is_a_usage_error(key, memcached_clean):
    env = base_env(TECKEN_MEMCACHED_SERVERS=memcached_clean.address)
    result = run("invalidate", "development.ini", "xul.pdb/ABC/xul.sym", key, env=env)
    assert_usage_error(result)
    assert result.stdout == ""


# -- invalidate ------------------------------------------------------------------------------------
S3_URLS = "http://127.0.0.1:1/bucket-a,http://127.0.0.1:1/bucket-b?access=public"


def test_invalidate_without_memcached_is_nothing_to_do():
    result = run("invalidate", "development.ini", "xul.pdb/ABC/xul.sym")
    assert result.returncode == 3
    one_line(result.stderr)
    assert result.stdout == ""


def test_invalidate_drops_keys_in_every_location(memcached_clean):
    env = base_env(TECKEN_MEMCACHED_SERVERS=memcached_clean.address, TECKEN_SYMBOL_URLS=S3_URLS)
    settings = settings_mod.load(dict(get_appsettings(DEV_INI)), environ=env, here=ROOT)
    assert len(settings.all_locations) == 3

    named = [
        ("xul.pdb", "ABCDEF", "xul.sym"),
        ("XUL.pdb", "ABCDEF", "xul.sym"),
        ("ntdll.pdb", "12AB", "ntdll.sym"),
    ]
    other = ("other.pdb", "ABCDEF", "other.sym")
    client = MemcacheClient(("127.0.0.1", memcached_clean.port), default_noreply=False)

    def ck(loc, key):
        return cache_mod.existence_key(loc, loc.key(*key))

    try:
        for loc in settings.all_locations:
            for key in [*named, other]:
                client.set(ck(loc, key), cache_mod.FOUND, expire=600)
        result = run(
            "invalidate",
            "development.ini",
            "xul.pdb/abcdef/xul.sym",
            "xul.pdb/ABCDEF/xul.sym",
            "xul.pdb/AbCdEf/xul.sym",  # one key
            "XUL.pdb/abcdef/xul.sym",  # the symbol is case-sensitive: another key
            "ntdll.pdb/12ab/ntdll.sym",
            env=env,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "invalidated 3 keys in 3 locations"
        for loc in settings.all_locations:
            for key in named:
                assert client.get(ck(loc, key)) is None, (loc.url, key)
            assert client.get(ck(loc, other)) == cache_mod.FOUND
    finally:
        client.close()


def test_invalidate_counts_local_and_try_locations(memcached_clean, tmp_path):
    env = base_env(
        TECKEN_MEMCACHED_SERVERS=memcached_clean.address,
        TECKEN_SYMBOL_URLS=f"{tmp_path},http://127.0.0.1:1/bucket-a",
        TECKEN_TRY_SYMBOL_URL="http://127.0.0.1:1/bucket-try",
    )
    result = run("invalidate", "development.ini", "a.pdb/AB/a.sym", "b.pdb/ab/b.sym", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "invalidated 2 keys in 3 locations"


def test_invalidate_default_locations(memcached_clean):
    # development.ini: var/symbols and its try directory.
    env = base_env(TECKEN_MEMCACHED_SERVERS=memcached_clean.address)
    result = run("invalidate", "development.ini", "a.pdb/AB/a.sym", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "invalidated 1 keys in 2 locations"


def test_invalidate_memcached_down():
    env = base_env(TECKEN_MEMCACHED_SERVERS=f"127.0.0.1:{free_port()}", TECKEN_SYMBOL_URLS=S3_URLS)
    result = run("invalidate", "development.ini", "xul.pdb/ABC/xul.sym", env=env)
    assert result.returncode == 1
    assert "memcached" in one_line(result.stderr).lower()
    assert result.stdout == ""


def test_invalidate_bad_configuration():
    env = base_env(TECKEN_MEMCACHED_SERVERS="nonsense")
    result = run("invalidate", "development.ini", "xul.pdb/ABC/xul.sym", env=env)
    assert result.returncode == 1
    assert "TECKEN_MEMCACHED_SERVERS" in one_line(result.stderr)


# -- cleanse-missing-symbols -----------------------------------------------------------------------
def insert_missing(db, ages_in_days):
    now = datetime.datetime.now(datetime.UTC)
    rows = []
    for i, days in enumerate(ages_in_days):
        when = now - datetime.timedelta(days=days)
        rows.append(
            {
                "hash": uuid.uuid4().hex,
                "symbol": f"s{i}.pdb",
                "debugid": "ABC",
                "filename": f"s{i}.sym",
                "code_file": None,
                "code_id": None,
                "count": 1,
                "created_at": when,
                "modified_at": when,
            }
        )
    engine = db.engine()
    try:
        with engine.begin() as conn:
            conn.execute(insert(MissingSymbol.__table__), rows)
    finally:
        engine.dispose()


def missing_symbols(db):
    engine = db.engine()
    try:
        with engine.connect() as conn:
            return sorted(conn.execute(text("SELECT symbol FROM missing_symbol")).scalars())
    finally:
        engine.dispose()


def test_cleanse_dry_run_then_delete(db):
    insert_missing(db, [0, 29, 31])
    env = base_env(TECKEN_DATABASE_URL=db.url)
    result = run("cleanse-missing-symbols", "development.ini", "--dry-run", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "would delete 1"
    assert missing_symbols(db) == ["s0.pdb", "s1.pdb", "s2.pdb"]

    result = run("cleanse-missing-symbols", "development.ini", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "deleted 1"
    assert missing_symbols(db) == ["s0.pdb", "s1.pdb"]

    result = run("cleanse-missing-symbols", "development.ini", env=env)
    assert result.stdout.strip() == "deleted 0"


def test_cleanse_days(db):
    insert_missing(db, [0, 29, 31])
    env = base_env(TECKEN_DATABASE_URL=db.url)
    result = run("cleanse-missing-symbols", "development.ini", "--days", "28", "--dry-run", env=env)
    assert result.stdout.strip() == "would delete 2"
    result = run("cleanse-missing-symbols", "development.ini", "--days", "28", env=env)
    assert result.stdout.strip() == "deleted 2"
    assert missing_symbols(db) == ["s0.pdb"]


def test_cleanse_with_production_ini(db):
    insert_missing(db, [40])
    env = base_env(
        TECKEN_DATABASE_URL=db.url, TECKEN_SESSION_SECRET=SECRET, TECKEN_SYMBOL_URLS="https://h/bucket"
    )
    result = run("cleanse-missing-symbols", "production.ini", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "deleted 1"


def test_cleanse_unreachable_database():
    result = run(
        "cleanse-missing-symbols",
        "development.ini",
        "--dry-run",
        env=base_env(TECKEN_DATABASE_URL=UNREACHABLE_DB),
    )
    assert result.returncode == 1
    assert "TECKEN_DATABASE_URL" in one_line(result.stderr)
