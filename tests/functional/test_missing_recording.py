"""Which download requests record a missing symbol, and how (SPEC §2 step 5, §5, §6).

Recording is checked on the real database (SQLite or PostgreSQL, TECKEN_TEST_DB) and, for
the repeat guard, a real memcached. "Nothing recorded" is shown by a sentinel miss sent
after the request under test: the writer's queue is FIFO, so once the sentinel is in the
table anything enqueued before it would be too.
"""

import concurrent.futures
import http.client
import threading
import time
import urllib.parse

import pytest
from webtest.http import StopableWSGIServer

from tests.conftest import free_port, put_file
from tests.functional.missing_helpers import MissingTable, metric, wait_idle

DEBUG_ID = "44E4EC8C2F41492B9369D6B9A059577C2"
SENTINEL = ("sentinel.pdb", "ABC123", "sentinel.sym")
SENTINEL_URL = "/sentinel.pdb/ABC123/sentinel.sym"


def path(symbol="xul.pdb", debugid=DEBUG_ID, filename="xul.sym", query=""):
    quote = lambda s: urllib.parse.quote(s, safe="")  # noqa: E731
    return f"/{quote(symbol)}/{quote(debugid)}/{quote(filename)}" + (f"?{query}" if query else "")


@pytest.fixture
def table(db):
    t = MissingTable(db)
    yield t
    t.close()


@pytest.fixture
def app(make_app, symbols_dir):
    return make_app(symbol_urls=str(symbols_dir))


def assert_not_found(response):
    assert response.status_int == 404
    assert response.text == "Symbol Not Found"
    assert response.headers["X-Symbol-Lookup"] == "not-found"


def assert_only_sentinel(app, table):
    app.get(SENTINEL_URL, status=404)
    wait_idle(app)
    assert table.summary() == {(*SENTINEL, None, None): 1}


# -- what a recorded miss holds ----------------------------------------------------------------
def test_get_miss_is_recorded_with_code_values(app, table):
    before = time.time()
    r = app.get(path(debugid=DEBUG_ID.lower(), query="code_file=xul.dll&code_id=5CF2591C6859000"), status=404)
    assert_not_found(r)
    wait_idle(app)
    [row] = table.rows()
    fields = ("symbol", "debugid", "filename", "code_file", "code_id", "count")
    assert tuple(row[f] for f in fields) == (
        "xul.pdb",
        DEBUG_ID.lower(),
        "xul.sym",
        "xul.dll",
        "5CF2591C6859000",
        1,
    )
    assert row["created_at"] == row["modified_at"]
    assert before - 1 <= row["modified_at"].timestamp() <= time.time() + 1


@pytest.mark.parametrize(
    "query, code_file, code_id",
    [
        ("", None, None),
        ("code_file=&code_id=", None, None),
        ("code_file=xul.dll&code_id=", "xul.dll", None),
        ("code_file=&code_id=5CF2591C6859000", None, "5CF2591C6859000"),
        # '+' is a space; values are kept verbatim, never stripped.
        ("code_file=+a+b+&code_id=%20", " a b ", " "),
        ("code_file=a%2Bb%26c%3Dd", "a+b&c=d", None),
        # The last value wins, an empty last value included.
        ("code_id=first&code_id=second&code_file=x", "x", "second"),
        ("code_id=first&code_id=", None, None),
        # UTF-8 and a correctly encoded U+FFFD are ordinary characters.
        ("code_file=%E6%B1%89.dll&code_id=%EF%BF%BD", "汉.dll", "\ufffd"),
        # Other parameters are not part of the record.
        ("_refresh=1&code_file=x&unknown=y", "x", None),
    ],
)
def test_code_values_from_the_query(app, table, query, code_file, code_id):
    assert_not_found(app.get(path(query=query), status=404))
    wait_idle(app)
    assert table.summary() == {("xul.pdb", DEBUG_ID, "xul.sym", code_file, code_id): 1}


def test_debug_id_is_kept_as_requested(app, table):
    for debugid in ("abcdef0123", "ABCDEF0123", "AbCdEf0123"):
        app.get(path(debugid=debugid), status=404)
    wait_idle(app)
    assert table.summary() == {
        ("xul.pdb", "abcdef0123", "xul.sym", None, None): 1,
        ("xul.pdb", "ABCDEF0123", "xul.sym", None, None): 1,
        ("xul.pdb", "AbCdEf0123", "xul.sym", None, None): 1,
    }


def test_try_requests_record_the_symbol_not_the_prefix(app, table):
    app.get("/try/xul.pdb/abc1/xul.sym", status=404)
    app.get("/xul.pdb/abc2/xul.sym?try", status=404)
    app.get("/try/try/abc3/try.sym", status=404)
    wait_idle(app)
    assert table.summary() == {
        ("xul.pdb", "abc1", "xul.sym", None, None): 1,
        ("xul.pdb", "abc2", "xul.sym", None, None): 1,
        ("try", "abc3", "try.sym", None, None): 1,
    }


# -- what is never recorded ----------------------------------------------------------------------
def test_head_miss_is_never_recorded_and_does_not_claim_the_guard(app, table):
    r = app.head(path(query="code_file=xul.dll"), status=404)
    assert r.headers["X-Symbol-Lookup"] == "not-found"
    # HEAD is not validated either.
    r = app.head(path(query="code_file=%FF&code_id=%00"), status=404)
    assert r.headers["X-Symbol-Lookup"] == "not-found"
    assert_only_sentinel(app, table)
    # The guard was not claimed by HEAD: the first GET records.
    app.get(path(query="code_file=xul.dll"), status=404)
    wait_idle(app)
    assert table.summary()[("xul.pdb", DEBUG_ID, "xul.sym", "xul.dll", None)] == 1


@pytest.mark.parametrize(
    "url, status, lookup",
    [
        (f"/xul.pdb/{'0' * 33}/xul.sym", 404, "ignored"),
        ("/xul.pdb/ABC123/file.ptr", 404, "ignored"),
        ("/xul.pdb/ABC123/xul.txt", 404, "extension-not-allowed"),
        ("/xul.pdb/ABC123/xul.SYM", 404, "extension-not-allowed"),
        ("/xu%7Bl.pdb/ABC123/xul.sym", 400, "invalid-name"),
        ("/xul.pdb/ABC123/xu%25l.sym", 400, "invalid-name"),
        ("/xul.pdb/ABC123/xu%C3%A9l.sym", 400, "invalid-name"),
        ("/xul.pdb/ABC123/xu%FFl.sym", 400, "invalid-name"),
    ],
)
def test_rules_and_invalid_names_are_never_recorded(app, table, url, status, lookup):
    r = app.get(url + "?code_file=x&code_id=y", status=status)
    assert r.headers["X-Symbol-Lookup"] == lookup
    assert_only_sentinel(app, table)


@pytest.mark.parametrize("url", ["/xul.pdb/XYZ/xul.sym", "/xul.pdb/ABC123/xul.sym/", "/xul.pdb/xul.sym"])
def test_paths_that_are_not_downloads_are_never_recorded(app, table, url):
    r = app.get(url, status=404)
    assert r.headers["Content-Type"] == "application/json"
    assert_only_sentinel(app, table)


def test_found_is_never_recorded(app, table, symbols_dir):
    put_file(symbols_dir, f"v1/xul.pdb/{DEBUG_ID}/xul.sym")
    put_file(symbols_dir, f"try/v1/xul.pdb/{DEBUG_ID}/try.sym")
    r = app.get(path(debugid=DEBUG_ID.lower(), query="code_file=xul.dll"), status=302)
    assert r.headers["X-Symbol-Lookup"] == "found"
    app.get(path(filename="try.sym", query="try"), status=302)
    assert_only_sentinel(app, table)


def test_unavailable_is_never_recorded(make_app, table, symbols_dir, memcached_clean):
    refused = f"http://127.0.0.1:{free_port()}/bucket"
    shared = {"memcached_servers": memcached_clean.address}
    app = make_app(symbol_urls=f"{symbols_dir},{refused}", **shared)
    for query in ("code_file=xul.dll&code_id=5CF", "", "_refresh"):
        r = app.get(path(query=query), status=503)
        assert r.headers["X-Symbol-Lookup"] == "unavailable"
    # The request enqueues synchronously, so an empty queue right after it means nothing was queued.
    assert app.registry.missing.queue.qsize() == 0
    wait_idle(app)
    assert table.rows() == []
    assert metric(app, "tecken_missing_symbol_writes_total") == 0
    # Nothing was claimed in the shared guard either: once the failing location is gone,
    # the same miss records.
    plain = make_app(symbol_urls=str(symbols_dir), **shared)
    plain.get(path(query="code_file=xul.dll&code_id=5CF"), status=404)
    wait_idle(plain)
    assert table.summary() == {("xul.pdb", DEBUG_ID, "xul.sym", "xul.dll", "5CF"): 1}


@pytest.mark.parametrize(
    "query, message",
    [
        ("code_file=%FF", "code_file: Invalid characters are not allowed."),
        ("code_id=%C3%28", "code_id: Invalid characters are not allowed."),
        ("code_file=a%00b", "code_file: Null characters are not allowed."),
        ("code_id=%00", "code_id: Null characters are not allowed."),
        ("code_id=%01", "code_id: Control characters are not allowed."),
        ("code_file=a%0Ab", "code_file: Control characters are not allowed."),
        ("code_file=%09", "code_file: Control characters are not allowed."),
        ("code_id=x%7F", "code_id: Control characters are not allowed."),
        # code_file is validated first.
        ("code_id=%FF&code_file=%00", "code_file: Null characters are not allowed."),
        # The last value is the one validated.
        ("code_file=ok&code_file=%1F", "code_file: Control characters are not allowed."),
    ],
)
def test_invalid_query_is_a_400_and_never_recorded(app, table, query, message):
    r = app.get(path(query=query), status=400)
    assert r.text == message
    assert r.headers["X-Symbol-Lookup"] == "invalid-query"
    assert r.headers["Cache-Control"] == "no-store"
    assert_only_sentinel(app, table)
    # The guard was not claimed: a valid GET of the same file records.
    app.get(path(), status=404)
    wait_idle(app)
    assert table.summary()[("xul.pdb", DEBUG_ID, "xul.sym", None, None)] == 1


def test_invalid_query_with_a_valid_last_value_is_recorded(app, table):
    app.get(path(query="code_file=%FF&code_file=ok"), status=404)
    wait_idle(app)
    assert table.summary() == {("xul.pdb", DEBUG_ID, "xul.sym", "ok", None): 1}


# -- the 150 code point limit ----------------------------------------------------------------------
def five_strings(field, length):
    """Defaults with ``field`` made exactly ``length`` code points (multi-byte where allowed)."""
    values = {
        "symbol": "xul.pdb",
        "debugid": DEBUG_ID,
        "filename": "xul.sym",
        "code_file": "xul.dll",
        "code_id": "5CF2591C6859000",
    }
    values[field] = {
        "symbol": "汉" * (length - 4) + ".pdb",
        "debugid": "A" * length,  # hex only
        "filename": "汉" * (length - 4) + ".sym",
        "code_file": "汉" * length,
        "code_id": "汉" * length,
    }[field]
    assert len(values[field]) == length
    return values


def five_string_url(values):
    query = urllib.parse.urlencode({"code_file": values["code_file"], "code_id": values["code_id"]})
    return path(values["symbol"], values["debugid"], values["filename"], query)


FIELDS = ("symbol", "debugid", "filename", "code_file", "code_id")


@pytest.mark.parametrize("field", FIELDS)
def test_a_value_over_150_code_points_is_not_recorded(app, table, field):
    values = five_strings(field, 151)
    assert_not_found(app.get(five_string_url(values), status=404))
    assert_only_sentinel(app, table)


@pytest.mark.parametrize("field", FIELDS)
def test_a_value_of_150_code_points_is_recorded(app, table, field):
    values = five_strings(field, 150)
    assert_not_found(app.get(five_string_url(values), status=404))
    wait_idle(app)
    assert table.summary() == {tuple(values[f] for f in FIELDS): 1}


# -- the repeat guard -----------------------------------------------------------------------------------
@pytest.fixture(params=["in-process", "memcached"])
def cache_settings(request):
    if request.param == "in-process":
        return {}
    return {"memcached_servers": request.getfixturevalue("memcached_clean").address}


def test_guard_records_a_repeat_once_and_refresh_does_not_bypass_it(
    make_app, table, symbols_dir, cache_settings
):
    app = make_app(symbol_urls=str(symbols_dir), **cache_settings)
    for query in ("", "", "_refresh", "_refresh=1", "code_file=", "code_id=&code_file="):
        assert_not_found(app.get(path(query=query), status=404))
    wait_idle(app)
    assert table.summary() == {("xul.pdb", DEBUG_ID, "xul.sym", None, None): 1}
    # The guard covers the whole five-tuple: other code values are other records.
    app.get(path(query="code_id=1"), status=404)
    app.get(path(query="code_id=1&_refresh"), status=404)
    app.get(path(debugid=DEBUG_ID.lower()), status=404)
    wait_idle(app)
    assert table.summary() == {
        ("xul.pdb", DEBUG_ID, "xul.sym", None, None): 1,
        ("xul.pdb", DEBUG_ID, "xul.sym", None, "1"): 1,
        ("xul.pdb", DEBUG_ID.lower(), "xul.sym", None, None): 1,
    }


def test_guard_zero_records_every_miss(make_app, table, symbols_dir, cache_settings):
    app = make_app(symbol_urls=str(symbols_dir), missing_symbol_guard_seconds="0", **cache_settings)
    for query in ("", "", "_refresh", "code_file=", ""):
        app.get(path(query=query), status=404)
    wait_idle(app)
    assert table.summary() == {("xul.pdb", DEBUG_ID, "xul.sym", None, None): 5}
    [row] = table.rows()
    assert row["modified_at"] >= row["created_at"]


def test_memcached_guard_is_shared_between_processes(make_app, table, symbols_dir, memcached_clean):
    shared = {"memcached_servers": memcached_clean.address}
    apps = [make_app(symbol_urls=str(symbols_dir), **shared) for _ in range(2)]
    for app in apps * 2:
        app.get(path(), status=404)
    wait_idle(*apps)
    assert table.summary() == {("xul.pdb", DEBUG_ID, "xul.sym", None, None): 1}


def test_in_process_guard_expires(make_app, table, symbols_dir):
    app = make_app(symbol_urls=str(symbols_dir), missing_symbol_guard_seconds="1")
    app.get(path(), status=404)
    app.get(path(), status=404)
    time.sleep(1.05)
    app.get(path(), status=404)
    wait_idle(app)
    assert table.summary() == {("xul.pdb", DEBUG_ID, "xul.sym", None, None): 2}


@pytest.mark.parametrize("down_from_start", [False, True])
def test_guard_falls_back_in_process_when_memcached_is_down(
    make_app, table, symbols_dir, memcached_clean, down_from_start
):
    if down_from_start:
        memcached_clean.stop()
    app = make_app(symbol_urls=str(symbols_dir), memcached_servers=memcached_clean.address)
    if not down_from_start:
        app.get(path(filename="before.sym"), status=404)
        memcached_clean.stop()
    for _ in range(4):
        started = time.monotonic()
        assert_not_found(app.get(path(), status=404))
        assert time.monotonic() - started < 0.5
    app.get(path(filename="other.sym"), status=404)
    app.get(path(filename="other.sym"), status=404)
    wait_idle(app)
    expected = {
        ("xul.pdb", DEBUG_ID, "xul.sym", None, None): 1,
        ("xul.pdb", DEBUG_ID, "other.sym", None, None): 1,
    }
    if not down_from_start:
        expected[("xul.pdb", DEBUG_ID, "before.sym", None, None)] = 1
    assert table.summary() == expected
    assert metric(app, "tecken_cache_errors_total") > 0


# -- concurrency over a real server ----------------------------------------------------------------------
@pytest.fixture
def serve():
    servers = []

    def start(testapp):
        server = StopableWSGIServer.create(testapp.app, threads=60, connection_limit=200)
        assert server.wait()
        servers.append(server)
        return f"http://{server.adj.host}:{server.adj.port}"

    yield start
    for server in servers:
        server.shutdown()


def fetch_concurrently(urls):
    """GET every URL at once (connections made first, then released together)."""
    barrier = threading.Barrier(len(urls))

    def one(url):
        parts = urllib.parse.urlsplit(url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=20)
        try:
            conn.connect()
            barrier.wait(timeout=20)
            conn.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""))
            response = conn.getresponse()
            body = response.read()
            return response.status, response.getheader("X-Symbol-Lookup"), body
        finally:
            conn.close()

    with concurrent.futures.ThreadPoolExecutor(len(urls)) as pool:
        return list(pool.map(one, urls))


def two_servers(make_app, serve, symbols_dir, **overrides):
    apps = [make_app(symbol_urls=str(symbols_dir), **overrides) for _ in range(2)]
    return apps, [serve(app) for app in apps]


def assert_all_not_found(results, n):
    assert len(results) == n
    assert all(r == (404, "not-found", b"Symbol Not Found") for r in results), set(results)


def assert_no_write_failures(*apps):
    for app in apps:
        assert metric(app, "tecken_missing_symbol_write_failures_total") == 0
        assert metric(app, "tecken_missing_symbol_dropped_total") == 0


def test_50_concurrent_misses_of_one_key_guard_on_memcached(
    make_app, serve, table, symbols_dir, memcached_clean
):
    apps, bases = two_servers(make_app, serve, symbols_dir, memcached_servers=memcached_clean.address)
    results = fetch_concurrently([bases[i % 2] + path(query="code_file=xul.dll") for i in range(50)])
    assert_all_not_found(results, 50)
    wait_idle(*apps)
    assert table.summary() == {("xul.pdb", DEBUG_ID, "xul.sym", "xul.dll", None): 1}
    assert_no_write_failures(*apps)
    assert sum(metric(a, "tecken_missing_symbol_writes_total") for a in apps) == 1


def test_50_concurrent_misses_of_one_key_guard_on_in_process(make_app, serve, table, symbols_dir):
    app = make_app(symbol_urls=str(symbols_dir))
    base = serve(app)
    assert_all_not_found(fetch_concurrently([base + path()] * 50), 50)
    wait_idle(app)
    assert table.summary() == {("xul.pdb", DEBUG_ID, "xul.sym", None, None): 1}
    assert_no_write_failures(app)


def test_50_concurrent_misses_of_one_key_guard_off(make_app, serve, table, symbols_dir, memcached_clean):
    apps, bases = two_servers(
        make_app,
        serve,
        symbols_dir,
        memcached_servers=memcached_clean.address,
        missing_symbol_guard_seconds="0",
    )
    results = fetch_concurrently([bases[i % 2] + path(query="code_file=xul.dll") for i in range(50)])
    assert_all_not_found(results, 50)
    wait_idle(*apps)
    assert table.summary() == {("xul.pdb", DEBUG_ID, "xul.sym", "xul.dll", None): 50}
    assert_no_write_failures(*apps)
    assert sum(metric(a, "tecken_missing_symbol_writes_total") for a in apps) == 50


def test_50_concurrent_misses_of_distinct_keys(make_app, serve, table, symbols_dir, memcached_clean):
    apps, bases = two_servers(make_app, serve, symbols_dir, memcached_servers=memcached_clean.address)
    results = fetch_concurrently([bases[i % 2] + path(filename=f"f{i}.sym") for i in range(50)])
    assert_all_not_found(results, 50)
    wait_idle(*apps)
    assert table.summary() == {("xul.pdb", DEBUG_ID, f"f{i}.sym", None, None): 1 for i in range(50)}
    assert_no_write_failures(*apps)


def test_concurrent_upserts_of_one_key_from_two_writers_are_atomic(make_app, table, symbols_dir):
    """The database upsert itself, from 50 threads over two engines at once: no unique violation."""
    apps = [make_app(symbol_urls=str(symbols_dir)) for _ in range(2)]
    barrier = threading.Barrier(50)
    from tecken_pyramid.missing import utcnow

    def one(i):
        barrier.wait(timeout=20)
        return apps[i % 2].registry.missing.write([("xul.pdb", DEBUG_ID, "xul.sym", None, "id", utcnow())])

    with concurrent.futures.ThreadPoolExecutor(50) as pool:
        assert list(pool.map(one, range(50))) == [1] * 50
    assert table.summary() == {("xul.pdb", DEBUG_ID, "xul.sym", None, "id"): 50}


def test_guard_longer_than_30_days_still_blocks_repeats_in_memcached(make_app, symbols_dir, memcached_clean):
    # memcached reads an expiry over 30 days as an absolute time; the cache converts it.
    from tests.conftest import DEBUG_ID

    app = make_app(
        symbol_urls=str(symbols_dir),
        memcached_servers=memcached_clean.address,
        missing_symbol_guard_seconds=str(40 * 24 * 3600),
    )
    for _ in range(3):
        app.get(f"/long.pdb/{DEBUG_ID}/long.sym", status=404)
    assert app.registry.missing.wait_idle()
    r = app.get("/missingsymbols/?symbol=long.pdb")
    assert [rec["count"] for rec in r.json["records"]] == [1]


def memcached_sets(server):
    """memcached's own count of storage commands (set/add), read over its socket."""
    import socket

    with socket.create_connection(("127.0.0.1", server.port), timeout=2) as s:
        s.sendall(b"stats\r\n")
        data = b""
        while not data.endswith(b"END\r\n"):
            data += s.recv(65536)
    stats = dict(line.split()[1:3] for line in data.decode().splitlines() if line.startswith("STAT "))
    return int(stats["cmd_set"])


def test_a_claim_lost_to_another_process_is_remembered_until_the_guard_expires(
    make_app, table, symbols_dir, memcached_clean
):
    """Issue 7: a process that loses the guard (to another process, or to its own
    earlier life) must not pay a memcached ``add`` on every repeat, forever; and it
    must record again once the guard has expired."""
    shared = {"memcached_servers": memcached_clean.address, "missing_symbol_guard_seconds": "2"}
    first, second = (make_app(symbol_urls=str(symbols_dir), **shared) for _ in range(2))
    first.get(path(), status=404)  # claims the guard
    second.get(path(), status=404)  # loses it: reads the guard's expiry once
    before = memcached_sets(memcached_clean)
    for _ in range(10):
        second.get(path(), status=404)
        first.get(path(), status=404)
    assert memcached_sets(memcached_clean) == before, "repeats of a guarded miss still went to memcached"
    wait_idle(first, second)
    assert table.summary() == {("xul.pdb", DEBUG_ID, "xul.sym", None, None): 1}
    time.sleep(2.2)  # the guard expires: the next miss is recorded again, once
    second.get(path(), status=404)
    first.get(path(), status=404)
    wait_idle(first, second)
    assert table.summary() == {("xul.pdb", DEBUG_ID, "xul.sym", None, None): 2}
