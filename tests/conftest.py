"""Fixtures that start the real components: memcached, moto's S3 server over HTTP,
SQLite and PostgreSQL databases migrated by alembic, and apps built from settings.

Under CI (``CI=true``) a missing service is a failure, never a skip.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# Credentials for moto; boto3 reads them from the environment as in production.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
for _name in list(os.environ):
    # The app reads TECKEN_* from the environment; tests pass settings explicitly.
    if _name.startswith("TECKEN_") and not _name.startswith("TECKEN_TEST_"):
        del os.environ[_name]

PRIVATE_BUCKET = "tecken-private"
PUBLIC_BUCKET = "tecken-public"
TRY_BUCKET = "tecken-try"
DEBUG_ID = "44E4EC8C2F41492B9369D6B9A059577C2"


def missing_service(message):
    """Fail under CI, skip elsewhere."""
    if IN_CI:
        pytest.fail(f"{message} (CI=true: a missing service is a failure)", pytrace=False)
    pytest.skip(message)  # only outside CI: under CI=true the line above fails instead


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, timeout=10.0, host="127.0.0.1"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.02)
    return False


# -- memcached --------------------------------------------------------------------------
class MemcachedProcess:
    def __init__(self):
        self.port = free_port()
        self.proc = None

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        binary = shutil.which("memcached")
        args = [binary, "-l", "127.0.0.1", "-p", str(self.port), "-U", "0"]
        if os.geteuid() == 0:
            args += ["-u", "root"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not wait_for_port(self.port):
            raise RuntimeError("memcached did not start")

    def stop(self):
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None

    def flush(self):
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
            s.sendall(b"flush_all\r\n")
            s.recv(100)


@pytest.fixture(scope="session")
def memcached():
    if not shutil.which("memcached"):
        missing_service("memcached is not installed (make test installs it)")
    server = MemcachedProcess()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def memcached_clean(memcached):
    if memcached.proc is None:
        memcached.start()
    memcached.flush()
    yield memcached
    if memcached.proc is None:
        memcached.start()


# -- S3: moto's server over real HTTP ---------------------------------------------------------
class S3Server:
    def __init__(self):
        from moto.server import ThreadedMotoServer

        self.port = free_port()
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.running = False

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        self.server.start()
        wait_for_port(self.port)
        self.running = True

    def stop(self):
        self.server.stop()
        self.running = False

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1")

    def put(self, bucket, key, body=b"MODULE test\n"):
        self.client().put_object(Bucket=bucket, Key=key, Body=body)

    def delete(self, bucket, key):
        self.client().delete_object(Bucket=bucket, Key=key)

    def empty(self):
        client = self.client()
        for bucket in (PRIVATE_BUCKET, PUBLIC_BUCKET, TRY_BUCKET):
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                for obj in page.get("Contents", []):
                    client.delete_object(Bucket=bucket, Key=obj["Key"])

    def url(self, bucket, prefix="", public=False):
        url = f"{self.endpoint}/{bucket}" + (f"/{prefix}" if prefix else "")
        return url + ("?access=public" if public else "")


@pytest.fixture(scope="session")
def s3_server():
    try:
        server = S3Server()
    except ImportError:
        missing_service("moto[server] is not installed")
    server.start()
    client = server.client()
    client.create_bucket(Bucket=PRIVATE_BUCKET)
    client.create_bucket(Bucket=PUBLIC_BUCKET, ACL="public-read")
    client.create_bucket(Bucket=TRY_BUCKET)
    yield server
    if server.running:
        server.stop()


@pytest.fixture
def s3(s3_server):
    if not s3_server.running:
        s3_server.start()
    s3_server.empty()
    yield s3_server
    if not s3_server.running:
        s3_server.start()


def put_public(s3_server, key, body=b"MODULE test\n"):
    s3_server.client().put_object(Bucket=PUBLIC_BUCKET, Key=key, Body=body, ACL="public-read")


# -- databases ---------------------------------------------------------------------------------
def postgres_admin_url():
    return os.environ.get("TECKEN_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def postgres_available():
    import psycopg

    url = postgres_admin_url().replace("postgresql+psycopg://", "postgresql://")
    try:
        with psycopg.connect(url, connect_timeout=3):
            return True
    except Exception:
        return False


def migrate(url):
    from alembic import command
    from alembic.config import Config

    cfg = Config(os.path.join(ROOT, "development.ini"))
    cfg.attributes["database_url"] = url
    cfg.attributes["configure_logging"] = False
    command.upgrade(cfg, "head")


class Database:
    """A throw-away, migrated database: SQLite file or PostgreSQL database."""

    def __init__(self, kind):
        self.kind = kind
        self.tmpdir = tempfile.mkdtemp(prefix="tecken-test-")
        if kind == "sqlite":
            self.url = f"sqlite:///{self.tmpdir}/tecken.sqlite3"
        else:
            import psycopg

            self.name = f"tecken_test_{uuid.uuid4().hex[:12]}"
            admin = postgres_admin_url()
            self.admin_dsn = admin.replace("postgresql+psycopg://", "postgresql://")
            with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{self.name}"')
            base = admin.rsplit("/", 1)[0]
            self.url = f"{base}/{self.name}"
        migrate(self.url)

    def engine(self):
        from tecken_pyramid.db import make_engine

        return make_engine(self.url)

    def reset(self):
        """Empty the missing-symbol log, users and audit log; restore the seeded rules."""
        import datetime

        from sqlalchemy import text

        seeds = _seed_rows()
        now = datetime.datetime.now(datetime.UTC)
        engine = self.engine()
        with engine.begin() as conn:
            for table in ("missing_symbol", "users", "audit_log", "ignore_pattern", "allowed_extension"):
                conn.execute(text(f"DELETE FROM {table}"))
            conn.execute(
                text("INSERT INTO allowed_extension (extension, created_by, created_at) VALUES (:e, 'migration', :t)"),
                [{"e": e, "t": now} for e in seeds.DEFAULT_EXTENSIONS],
            )
            conn.execute(
                text(
                    "INSERT INTO ignore_pattern (pattern, enabled, note, created_by, created_at) "
                    "VALUES (:p, :on, :n, 'migration', :t)"
                ),
                [{"p": p, "on": True, "n": n, "t": now} for p, n in seeds.DEFAULT_PATTERNS],
            )
        engine.dispose()

    def drop(self):
        if self.kind == "postgresql":
            import psycopg

            with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        shutil.rmtree(self.tmpdir, ignore_errors=True)


def _seed_rows():
    """The seed rows as the first migration defines them."""
    import importlib.util

    path = os.path.join(ROOT, "alembic", "versions", "0001_rules_and_users.py")
    spec = importlib.util.spec_from_file_location("_tecken_seed_migration", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def selected_database_kind():
    return os.environ.get("TECKEN_TEST_DB", "sqlite")


@pytest.fixture(scope="session")
def database():
    kind = selected_database_kind()
    if kind == "postgresql" and not postgres_available():
        missing_service(f"PostgreSQL does not answer at {postgres_admin_url()}")
    db = Database(kind)
    yield db
    db.drop()


@pytest.fixture
def db(database):
    database.reset()
    yield database


# -- apps ----------------------------------------------------------------------------------------
BASE_INI = {
    "tecken.environment": "development",
    "tecken.symbol_file_prefix": "v1",
    "tecken.rules_refresh_seconds": "0.2",
    "tecken.storage_connect_timeout": "1",
    "tecken.storage_read_timeout": "2",
    "tecken.storage_deadline": "5",
    "tecken.memcached_dead_retry_seconds": "1",
    "tecken.missing_symbol_retry_max_seconds": "0.2",
    "jinja2.directories": os.path.join(ROOT, "templates"),
}


class AppFactory:
    def __init__(self, database):
        self.database = database
        self.apps = []

    def settings(self, **overrides):
        from tecken_pyramid import settings as settings_mod

        ini = dict(BASE_INI)
        ini["sqlalchemy.url"] = self.database.url
        for key, value in overrides.items():
            ini["tecken." + key if "." not in key else key] = value
        return settings_mod.load(ini, environ={}, here=ROOT), ini

    def __call__(self, wait_rules=True, **overrides):
        """A webtest.TestApp over a fresh app with these tecken.* overrides."""
        import webtest

        from tecken_pyramid import make_app

        tecken, ini = self.settings(**overrides)
        app = make_app(tecken, ini)
        self.apps.append(app)
        if wait_rules:
            end = time.monotonic() + 10
            while app.registry.rules.current.source != "database" and time.monotonic() < end:
                time.sleep(0.01)
        # waitress always sets REMOTE_ADDR; /metrics and the login throttle read it.
        testapp = webtest.TestApp(
            app, extra_environ={"HTTP_HOST": "symbols.example.com", "REMOTE_ADDR": "127.0.0.1"}
        )
        testapp.registry = app.registry
        return testapp

    def close(self):
        from tecken_pyramid import shutdown

        for app in self.apps:
            shutdown(app.registry, flush_seconds=1)


@pytest.fixture
def make_app(db):
    factory = AppFactory(db)
    yield factory
    factory.close()


@pytest.fixture
def symbols_dir(tmp_path):
    d = tmp_path / "symbols"
    (d / "try").mkdir(parents=True)
    return d


def put_file(directory, key, body=b"MODULE test\n"):
    path = os.path.join(str(directory), key)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(body)
    return path


# -- console ---------------------------------------------------------------------------------------
def create_user(database, username, password, superuser=True, active=True):
    """Insert (or reset) a user directly in the database."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from tecken_pyramid.models import User
    from tecken_pyramid.passwords import hash_password

    engine = database.engine()
    with Session(engine) as session, session.begin():
        user = session.scalars(select(User).where(User.username == username)).one_or_none()
        if user is None:
            user = User(username=username)
            session.add(user)
        user.password_hash = hash_password(password)
        user.is_superuser = superuser
        user.is_active = active
    engine.dispose()


def login(testapp, username, password, next_url=None, status=303):
    """Sign in through the real login form (CSRF token included)."""
    form = testapp.get("/admin/login" + (f"?next={next_url}" if next_url else "")).forms[0]
    form["username"] = username
    form["password"] = password
    return form.submit(status=status)


@pytest.fixture
def admin_app(make_app, db, symbols_dir):
    """A console app signed in as the superuser admin / correct-horse."""
    create_user(db, "admin", "correct-horse")
    app = make_app(symbol_urls=str(symbols_dir))
    login(app, "admin", "correct-horse")
    return app
