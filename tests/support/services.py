"""The real components the tests run against: ports, memcached processes, moto's
S3 server over HTTP, throw-away SQLite and PostgreSQL databases migrated by alembic.

Under CI (``CI=true``) a missing service is a failure, never a skip
(:func:`missing_service`). The fixtures that start these live in tests/conftest.py.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

PRIVATE_BUCKET = "tecken-private"
PUBLIC_BUCKET = "tecken-public"
TRY_BUCKET = "tecken-try"


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
    from alembic.config import Config

    from alembic import command

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
        """Empty the missing-symbol log, uploads, tokens, users and audit log; restore the seeded rules."""
        import datetime

        from sqlalchemy import text

        seeds = _seed_rows()
        now = datetime.datetime.now(datetime.UTC)
        engine = self.engine()
        with engine.begin() as conn:
            # Children before parents (foreign keys).
            for table in (
                "symbol_file",
                "upload_file",
                "upload",
                "api_token",
                "missing_symbol",
                "users",
                "audit_log",
                "ignore_pattern",
                "allowed_extension",
            ):
                conn.execute(text(f"DELETE FROM {table}"))
            conn.execute(
                text(
                    "INSERT INTO allowed_extension (extension, created_by, created_at)"
                    " VALUES (:e, 'migration', :t)"
                ),
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
