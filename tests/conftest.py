"""Fixtures that start the real components: memcached, moto's S3 server over HTTP,
SQLite and PostgreSQL databases migrated by alembic, and apps built from settings.

Under CI (``CI=true``) a missing service is a failure, never a skip.
"""

import os
import shutil

import pytest

# Credentials for moto; boto3 reads them from the environment as in production.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
for _name in list(os.environ):
    # The app reads TECKEN_* from the environment; tests pass settings explicitly.
    if _name.startswith("TECKEN_") and not _name.startswith("TECKEN_TEST_"):
        del os.environ[_name]

# The helpers live in tests/support/; these names stay importable from here.
from tests.support.apps import (  # noqa: E402, F401
    BASE_INI,
    DEBUG_ID,
    AppFactory,
    create_user,
    login,
    put_file,
    put_public,
)
from tests.support.services import (  # noqa: E402, F401
    IN_CI,
    PRIVATE_BUCKET,
    PUBLIC_BUCKET,
    ROOT,
    TRY_BUCKET,
    Database,
    MemcachedProcess,
    S3Server,
    free_port,
    migrate,
    missing_service,
    postgres_admin_url,
    postgres_available,
    selected_database_kind,
    wait_for_port,
)

HERE = os.path.dirname(os.path.abspath(__file__))


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


@pytest.fixture
def admin_app(make_app, db, symbols_dir):
    """A console app signed in as the superuser admin / correct-horse."""
    create_user(db, "admin", "correct-horse")
    app = make_app(symbol_urls=str(symbols_dir))
    login(app, "admin", "correct-horse")
    return app
