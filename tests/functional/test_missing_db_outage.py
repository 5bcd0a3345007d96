"""The missing-symbol writer while the database is unavailable (SPEC §6).

A 404 never waits on the database; the writer retries with back-off and every queued
record lands soon after the database is back; overflow drops and counts.

The outage is real and chosen by the database under test (TECKEN_TEST_DB), at collection
time rather than by skipping:

* PostgreSQL: the app talks to PostgreSQL through a small TCP forwarder written here,
  which the test closes (killing its open connections) and reopens on the same port.
  The shared server is never stopped; the table is read directly, not through the forwarder.
* SQLite: the test holds a write transaction (``BEGIN IMMEDIATE``) on the database file,
  so the writer's upserts fail with "database is locked" until it lets go.
"""

import os
import sqlite3
import threading
import time
import urllib.parse

import pytest
from sqlalchemy.engine import make_url

from tests.conftest import selected_database_kind
from tests.functional.missing_helpers import MissingTable, metric, wait_idle, wait_until
from tests.tcp_forwarder import TcpForwarder

KIND = selected_database_kind()
FAST = 0.5  # seconds: no 404 may take longer while the database is away


class PostgresOutage:
    """The app's database URL goes through a forwarder; cut() closes it, restore() reopens it."""

    def __init__(self, db):
        url = make_url(db.url)
        self.forwarder = TcpForwarder(url.host or "127.0.0.1", url.port or 5432)
        through = url.set(host="127.0.0.1", port=self.forwarder.port)
        self.app_url = through.render_as_string(hide_password=False)
        self.up = False

    def cut(self):
        self.forwarder.close()
        self.up = False

    def restore(self):
        self.forwarder.open()
        self.up = True

    def close(self):
        self.forwarder.close()


class SqliteOutage:
    """cut() holds a write transaction on the file; restore() releases it."""

    def __init__(self, db, monkeypatch):
        # Fail fast instead of waiting out SQLite's 5 s busy timeout on every attempt,
        # so the writer's "database is locked" path is exercised within the test.
        monkeypatch.setattr("tecken_pyramid.db.SQLITE_BUSY_TIMEOUT_SECONDS", 0.1)
        self.path = urllib.parse.unquote(db.url[len("sqlite:///") :])
        assert os.path.isfile(self.path)
        self.app_url = db.url
        self.connection = None
        self.up = True

    def cut(self):
        self.connection = sqlite3.connect(self.path, isolation_level=None, timeout=5, check_same_thread=False)
        self.connection.execute("BEGIN IMMEDIATE")
        self.up = False

    def restore(self):
        if self.connection is not None:
            self.connection.execute("ROLLBACK")
            self.connection.close()
            self.connection = None
        self.up = True

    def close(self):
        self.restore()


@pytest.fixture
def outage(db, monkeypatch):
    if db.kind == "postgresql":
        o = PostgresOutage(db)
        o.restore()
    else:
        o = SqliteOutage(db, monkeypatch)
    yield o
    o.close()


@pytest.fixture
def table(db):
    t = MissingTable(db)
    yield t
    t.close()


def outage_app(make_app, outage, symbols_dir, wait_rules=True, **overrides):
    return make_app(
        wait_rules=wait_rules, symbol_urls=str(symbols_dir), **{"sqlalchemy.url": outage.app_url}, **overrides
    )


def miss(app, i, prefix="f"):
    """One GET miss; asserts it is a plain, fast 404."""
    started = time.monotonic()
    r = app.get(f"/xul.pdb/ABC123/{prefix}{i}.sym?code_file=xul.dll&code_id=5CF", status=404)
    elapsed = time.monotonic() - started
    assert r.text == "Symbol Not Found"
    assert r.headers["X-Symbol-Lookup"] == "not-found"
    assert elapsed < FAST, f"a 404 took {elapsed:.3f} s while the database was away"
    return elapsed


def expected(names):
    return {("xul.pdb", "ABC123", f"{name}.sym", "xul.dll", "5CF"): 1 for name in names}


def wait_failures(app, at_least=1):
    assert wait_until(
        lambda: metric(app, "tecken_missing_symbol_write_failures_total") >= at_least, timeout=10
    ), "the writer never saw the database fail"


def test_database_cut_while_requests_flow(make_app, outage, table, symbols_dir):
    app = outage_app(make_app, outage, symbols_dir)
    names = []
    for i in range(5):
        miss(app, i)
        names.append(f"f{i}")
    wait_idle(app)
    assert table.summary() == expected(names)

    outage.cut()
    for i in range(5, 10):
        miss(app, i)
        names.append(f"f{i}")
    wait_failures(app, 2)
    # Keep requests flowing while the writer retries.
    end = time.monotonic() + 0.5
    i = 10
    while time.monotonic() < end:
        miss(app, i)
        names.append(f"f{i}")
        i += 1
        time.sleep(0.01)
    assert table.summary() == expected(names[:5])

    outage.restore()
    restored = time.monotonic()
    first = table.wait_for(lambda rows: len(rows) > 5, timeout=10)
    first_landed = time.monotonic() - restored
    for j in range(i, i + 5):
        miss(app, j)
        names.append(f"f{j}")
    rows = table.wait_for(lambda rows: len(rows) == len(names), timeout=10)
    landed = time.monotonic() - restored
    assert len(first) > 5
    assert table.summary() == expected(names)
    assert len(rows) == len(names)
    # "A record lands within about 1 s of the database being available again" (the back-off
    # is capped at 0.2 s in the tests; the bounds leave room for a loaded machine).
    assert first_landed < 1.5, f"the first record landed {first_landed:.2f} s after the database came back"
    assert landed < 3, f"all records landed {landed:.2f} s after the database came back"
    # The writer counts a batch just after committing it: rows can be seen a moment
    # before the counter moves, so the writer must be idle before the counters are read.
    wait_idle(app)
    assert metric(app, "tecken_missing_symbol_dropped_total") == 0
    assert metric(app, "tecken_missing_symbol_writes_total") == len(names)
    assert metric(app, "tecken_missing_symbol_queue_length") == 0


def test_database_away_from_start(make_app, outage, table, symbols_dir):
    """A process whose database is unavailable starts, serves fast 404s and writes later."""
    outage.cut()
    app = outage_app(make_app, outage, symbols_dir, wait_rules=False)
    for i in range(10):
        miss(app, i, prefix="s")
    wait_failures(app)
    assert table.rows() == []
    outage.restore()
    table.wait_for(lambda rows: len(rows) == 10, timeout=10)
    assert table.summary() == expected(f"s{i}" for i in range(10))


def test_queue_overflow_drops_and_counts(make_app, outage, table, symbols_dir, caplog):
    app = outage_app(make_app, outage, symbols_dir, missing_symbol_queue_size="5")
    outage.cut()
    # The writer takes the first record and keeps retrying it; the queue is then empty.
    miss(app, 0, prefix="q")
    wait_failures(app)
    assert app.registry.missing.queue.qsize() == 0
    with caplog.at_level("WARNING", logger="tecken_pyramid.missing"):
        for i in range(1, 9):
            miss(app, i, prefix="q")
    # Logged, but rate-limited: one line for three drops.
    assert len([r for r in caplog.records if "queue full" in r.getMessage()]) == 1
    assert metric(app, "tecken_missing_symbol_dropped_total") == 3
    assert metric(app, "tecken_missing_symbol_queue_length") == 5
    outage.restore()
    table.wait_for(lambda rows: len(rows) == 6, timeout=10)
    wait_idle(app)
    # The first six (the one in hand and the five queued) land; the last three were dropped.
    assert table.summary() == expected(f"q{i}" for i in range(6))
    assert metric(app, "tecken_missing_symbol_writes_total") == 6
    assert metric(app, "tecken_missing_symbol_dropped_total") == 3


def test_queue_size_zero_drops_every_record(make_app, outage, table, symbols_dir):
    app = outage_app(make_app, outage, symbols_dir, missing_symbol_queue_size="0")
    for i in range(3):
        miss(app, i, prefix="z")
    wait_idle(app)
    assert table.rows() == []
    assert metric(app, "tecken_missing_symbol_dropped_total") == 3


def test_a_dropped_miss_keeps_no_repeat_guard(make_app, outage, table, symbols_dir):
    """Issue 6, fault 4: a miss dropped on a full queue must not claim its guard, or it
    would not be recorded for the guard's 24 h when it comes again."""
    app = outage_app(make_app, outage, symbols_dir, missing_symbol_queue_size="2")
    outage.cut()
    miss(app, 0, prefix="g")  # taken by the writer, retried while the database is away
    wait_failures(app)
    miss(app, 1, prefix="g")
    miss(app, 2, prefix="g")  # the queue (2) is now full
    miss(app, 3, prefix="g")  # dropped
    assert metric(app, "tecken_missing_symbol_dropped_total") == 1
    outage.restore()
    table.wait_for(lambda rows: len(rows) == 3, timeout=10)
    wait_idle(app)
    miss(app, 3, prefix="g")  # the dropped one, again: recorded now
    miss(app, 1, prefix="g")  # a recorded one, again: still guarded
    table.wait_for(lambda rows: len(rows) == 4, timeout=10)
    wait_idle(app)
    assert table.summary() == expected(f"g{i}" for i in range(4))


def test_queue_size_zero_claims_no_guard(make_app, outage, table, symbols_dir, memcached_clean):
    app = outage_app(
        make_app,
        outage,
        symbols_dir,
        missing_symbol_queue_size="0",
        memcached_servers=memcached_clean.address,
    )
    miss(app, 0, prefix="n")
    from tecken_pyramid.cache import hashed_key

    guard = hashed_key("ms", "xul.pdb", "ABC123", "n0.sym", "xul.dll", "5CF")
    assert app.registry.cache.get_many([guard]) == {}


@pytest.mark.parametrize("queued", [0, 3])
def test_shutdown_flushes_what_is_queued(make_app, outage, table, symbols_dir, queued):
    """stop() (SIGTERM/SIGINT) keeps retrying for up to 5 s: both the batch the writer holds
    and what still waits in the queue land when the database comes back meanwhile."""
    app = outage_app(make_app, outage, symbols_dir)
    outage.cut()
    miss(app, 0, prefix="t")
    wait_failures(app)
    assert app.registry.missing.queue.qsize() == 0  # the first record is in the writer's hand
    for i in range(1, 1 + queued):
        miss(app, i, prefix="t")
    assert app.registry.missing.queue.qsize() == queued
    timer = threading.Timer(0.6, outage.restore)
    timer.start()
    try:
        app.registry.missing.stop(timeout=5)
    finally:
        timer.join()
    assert table.summary() == expected(f"t{i}" for i in range(1 + queued))


if KIND == "postgresql":

    def test_forwarder_really_carries_the_app_connections(make_app, outage, table, symbols_dir):
        """Guard against a vacuous outage test: the app's writes go through the forwarder."""
        app = outage_app(make_app, outage, symbols_dir)
        miss(app, 0, prefix="p")
        wait_idle(app)
        assert table.summary() == expected(["p0"])
        assert outage.forwarder.accepted >= 1
        assert outage.app_url != table.db.url

    def test_connections_cut_mid_flight_are_retried(make_app, outage, table, symbols_dir):
        """Open pooled connections die (not just new ones refused): the writer reconnects."""
        app = outage_app(make_app, outage, symbols_dir)
        miss(app, 0, prefix="m")
        wait_idle(app)
        outage.cut()
        outage.restore()  # same port, every old connection dead
        for i in range(1, 4):
            miss(app, i, prefix="m")
        table.wait_for(lambda rows: len(rows) == 4, timeout=10)
        assert table.summary() == expected(f"m{i}" for i in range(4))


if KIND == "sqlite":

    def test_sqlite_lock_is_really_held(outage, table):
        """Guard against a vacuous outage test: writes from another connection fail while held."""
        outage.cut()
        other = sqlite3.connect(outage.path, isolation_level=None, timeout=0.05)
        try:
            with pytest.raises(sqlite3.OperationalError, match="database is locked"):
                other.execute("DELETE FROM missing_symbol")
        finally:
            other.close()
            outage.restore()

    def test_sqlite_lock_longer_than_the_busy_timeout(make_app, outage, table, symbols_dir, caplog):
        """The writer logs "database unavailable" and retries; no record is lost or doubled."""
        app = outage_app(make_app, outage, symbols_dir)
        outage.cut()
        with caplog.at_level("WARNING", logger="tecken_pyramid.missing"):
            for i in range(3):
                miss(app, i, prefix="l")
            wait_failures(app, 3)
        assert any("database unavailable" in r.getMessage() for r in caplog.records)
        outage.restore()
        table.wait_for(lambda rows: len(rows) == 3, timeout=10)
        wait_idle(app)
        assert table.summary() == expected(f"l{i}" for i in range(3))
