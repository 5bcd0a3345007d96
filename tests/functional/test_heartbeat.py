"""``/__heartbeat__`` while storage hangs (issue 6, fault 6): one bounded pool per
process, checks joined rather than started again, so concurrent heartbeats never
grow the thread count without bound."""

import json
import threading
import time

import pytest

from .download_support import HangingServer

# Nothing here depends on the database kind: run once, in the SQLite pass (.ci/test).
pytestmark = pytest.mark.database_independent


@pytest.fixture
def hanging():
    server = HangingServer()
    yield server
    server.close()


def _heartbeats(app, n):
    answers = []

    def ask():
        r = app.get("/__heartbeat__", expect_errors=True)
        answers.append((r.status_int, json.loads(r.text)))

    threads = [threading.Thread(target=ask) for _ in range(n)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return answers, time.monotonic() - started


def test_concurrent_heartbeats_against_hanging_storage_keep_threads_bounded(make_app, hanging, symbols_dir):
    app = make_app(
        symbol_urls=f"{hanging.url()},{hanging.url('tecken-public', public=True)},{symbols_dir}",
        # Calls that hang longer than the heartbeat's 5 s deadline.
        storage_connect_timeout="10",
        storage_read_timeout="10",
    )
    checks = 2 + len(app.registry.tecken.all_locations)
    before = threading.active_count()

    answers, elapsed = _heartbeats(app, 20)
    assert len(answers) == 20
    for status, body in answers:
        assert status == 500 and body["status"] == "error"
        hung = [name for name, check in body["checks"].items() if not check["ok"]]
        # The two hanging locations and the try location derived from the first.
        expected = [loc for loc in app.registry.tecken.all_locations if loc.kind != "local"]
        assert sorted(hung) == sorted(f"storage {loc.url}" for loc in expected)
        assert body["checks"]["database"]["ok"] is True
    assert elapsed < 8, f"20 concurrent heartbeats took {elapsed:.1f} s (deadline 5 s)"
    after_first = threading.active_count()
    # At most one heartbeat thread per check, plus one storage-pool thread per private
    # location (their boto3 call runs there so that it can be abandoned). Before the
    # fix: 86 new threads.
    private = sum(loc.kind == "private" for loc in app.registry.tecken.all_locations)
    assert after_first - before <= checks + private, (before, after_first)

    answers, _ = _heartbeats(app, 20)
    assert all(status == 500 for status, _ in answers)
    # The second wave reuses the heartbeat threads; only the private calls still hung
    # from the first wave hold storage-pool threads (that pool is bounded, 32).
    assert threading.active_count() <= after_first + private, (after_first, threading.active_count())


def test_heartbeat_checks_are_fresh_once_done(make_app, symbols_dir):
    """Single flight only joins a running check: a finished one runs again next time."""
    app = make_app(symbol_urls=str(symbols_dir))
    assert app.get("/__heartbeat__").json["status"] == "ok"
    local = symbols_dir
    moved = local.with_name(local.name + "-away")
    local.rename(moved)
    try:
        r = app.get("/__heartbeat__", status=500)
        assert r.json["checks"][f"storage {app.registry.tecken.locations[0].url}"]["ok"] is False
    finally:
        moved.rename(local)
    assert app.get("/__heartbeat__").json["status"] == "ok"
