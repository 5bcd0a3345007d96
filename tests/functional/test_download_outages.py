"""The download path when its components fail (SPEC §2 step 4, §3, §5), with real
components stopped mid-test: memcached, moto's S3 server, storage endpoints that
hang, refuse connections or answer errors over real HTTP.
"""

import time

import pytest
import requests
from sqlalchemy import text

from tests.conftest import (
    DEBUG_ID,
    PRIVATE_BUCKET,
    PUBLIC_BUCKET,
    TRY_BUCKET,
    free_port,
    put_file,
    put_public,
    selected_database_kind,
)
from tests.functional.download_support import (
    NOT_FOUND_BODY,
    UNAVAILABLE_BODY,
    HangingServer,
    StatusServer,
    assert_download,
    closed_port,
    poll,
)
from tests.tcp_forwarder import TcpForwarder

D = DEBUG_ID
# Generous for a loaded 2-core box; the deadline under test is 1 s.
DEADLINE_UPPER_BOUND = 4.0


def assert_unavailable(app, path, debug=False):
    headers = {"Debug": "1"} if debug else {}
    r = app.get(path, headers=headers, status=503)
    assert_download(
        r, 503, "unavailable", body=UNAVAILABLE_BODY, cache="no-store", debug="positive" if debug else None
    )
    r = app.head(path, headers=headers, status=503)
    assert_download(r, 503, "unavailable", body="", cache="no-store", debug="positive" if debug else None)


def count_missing(db):
    engine = db.engine()
    try:
        with engine.connect() as connection:
            return connection.execute(text("SELECT coalesce(sum(count), 0) FROM missing_symbol")).scalar_one()
    finally:
        engine.dispose()


def missing_rows(db):
    engine = db.engine()
    try:
        with engine.connect() as connection:
            sql = text("SELECT filename, count FROM missing_symbol ORDER BY filename")
            rows = connection.execute(sql).all()
            return [tuple(row) for row in rows]
    finally:
        engine.dispose()


@pytest.fixture
def hanging():
    server = HangingServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def s3_mirror(s3_server):
    """A second moto server on its own port. moto keeps its state per process, so
    it serves the same buckets: stopping one leaves the other answering."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    server.endpoint = f"http://127.0.0.1:{port}"
    yield server
    server.stop()


# =====================================================================================
# memcached outages: a cache failure is a cache miss
# =====================================================================================
def _cache_works(app, s3, n):
    """True when a found result is now served from the cache (the object is gone)."""
    key = f"v1/resume{n}.pdb/{D}/x.sym"
    s3.put(PRIVATE_BUCKET, key)
    app.get(f"/resume{n}.pdb/{D}/x.sym", status=302)
    s3.delete(PRIVATE_BUCKET, key)
    return app.get(f"/resume{n}.pdb/{D}/x.sym", expect_errors=True).status_int == 302


def test_memcached_stopped_mid_test(make_app, s3, memcached_clean, db):
    app = make_app(symbol_urls=s3.url(PRIVATE_BUCKET), memcached_servers=memcached_clean.address)
    key = f"v1/xul.pdb/{D}/xul.sym"
    s3.put(PRIVATE_BUCKET, key)
    assert app.get(f"/xul.pdb/{D}/xul.sym", status=302)
    assert _cache_works(app, s3, 0)

    memcached_clean.stop()
    for _ in range(3):
        started = time.monotonic()
        r = app.get(f"/xul.pdb/{D}/xul.sym", headers={"Debug": "1"}, status=302)
        assert_download(r, 302, "found", cache="no-store", debug="positive")
        assert requests.get(r.headers["Location"], timeout=10).status_code == 200
        assert_download(app.head(f"/xul.pdb/{D}/xul.sym", status=200), 200, "found")
        assert_download(app.get(f"/xul.pdb/{D}/nope.sym", status=404), 404, "not-found", body=NOT_FOUND_BODY)
        assert_download(app.head(f"/xul.pdb/{D}/nope.sym", status=404), 404, "not-found")
        assert app.get(f"/try/xul.pdb/{D}/xul.sym", status=302)
        assert app.get(f"/xul.pdb/{D}/xul.sym?_refresh", status=302)
        assert time.monotonic() - started < 5
    # Without the cache every answer comes from storage: a deleted object is gone at once.
    s3.delete(PRIVATE_BUCKET, key)
    assert_download(app.get(f"/xul.pdb/{D}/xul.sym", status=404), 404, "not-found")
    # The repeat guard falls back to an in-process one: three misses of nope.sym, one record.
    assert app.registry.missing.wait_idle()
    assert missing_rows(db) == [("nope.sym", 1), ("xul.sym", 1)]

    memcached_clean.start()
    # The failed server is retried (tecken.memcached_dead_retry_seconds = 1 in tests).
    n = iter(range(1, 1000))
    assert poll(lambda: _cache_works(app, s3, next(n)), timeout=15, interval=0.2)


def test_memcached_down_at_start(make_app, s3, memcached_clean):
    memcached_clean.stop()
    app = make_app(symbol_urls=s3.url(PRIVATE_BUCKET), memcached_servers=memcached_clean.address)
    s3.put(PRIVATE_BUCKET, f"v1/xul.pdb/{D}/xul.sym")
    assert_download(app.get(f"/xul.pdb/{D}/xul.sym", status=302), 302, "found", cache="no-store")
    assert_download(app.get(f"/xul.pdb/{D}/nope.sym", status=404), 404, "not-found")
    assert not _cache_works(app, s3, 0)
    memcached_clean.start()
    n = iter(range(1, 1000))
    assert poll(lambda: _cache_works(app, s3, next(n)), timeout=15, interval=0.2)


# =====================================================================================
# S3 outages: 503, nothing negative cached, nothing recorded
# =====================================================================================
@pytest.mark.parametrize("cache", ["memcached", "in-process"])
def test_s3_stopped_mid_test_private(make_app, s3, memcached_clean, db, cache):
    servers = memcached_clean.address if cache == "memcached" else ""
    app = make_app(symbol_urls=s3.url(PRIVATE_BUCKET, "pfx"), memcached_servers=servers)
    s3.put(PRIVATE_BUCKET, f"pfx/v1/xul.pdb/{D}/xul.sym")
    assert app.get(f"/xul.pdb/{D}/xul.sym", status=302)  # cached found
    assert app.get(f"/xul.pdb/{D}/known-missing.sym", status=404)  # cached not found

    s3.stop()
    # Cached answers still work (presigning does not contact storage).
    r = app.get(f"/xul.pdb/{D}/xul.sym", status=302)
    assert_download(r, 302, "found", cache="no-store")
    assert "X-Amz-Signature=" in r.headers["Location"]
    assert_download(app.head(f"/xul.pdb/{D}/xul.sym", status=200), 200, "found")
    assert_download(app.get(f"/xul.pdb/{D}/known-missing.sym", status=404), 404, "not-found")
    # Uncached keys: 503 for GET and HEAD, with or without debug.
    for path in (
        f"/xul.pdb/{D}/new.sym",
        f"/xul.pdb/{D.lower()}/new.sym",
        f"/xul.pdb/{D}/new.sym?code_file=%00",  # no query validation before the lookup answers
        f"/xul.pdb/{D}/new.sym?_refresh",
        f"/try/xul.pdb/{D}/new-try.sym",
        f"/xul.pdb/{D}/xul.sym?_refresh",  # refresh skips the cached found and storage fails
    ):
        assert_unavailable(app, path)
        assert_unavailable(app, path, debug=True)
    # Steps 1-3 never need storage.
    assert_download(app.get(f"/xul.pdb/{D}/file.ptr", status=404), 404, "ignored")
    assert_download(app.get(f"/x%7C.pdb/{D}/x.sym", status=400), 400, "invalid-name")

    s3.start()
    # Nothing negative was cached during the outage: found without ?_refresh.
    s3.put(PRIVATE_BUCKET, f"pfx/v1/xul.pdb/{D}/new.sym")
    s3.put(PRIVATE_BUCKET, f"try/pfx/v1/xul.pdb/{D}/new-try.sym")
    r = app.get(f"/xul.pdb/{D}/new.sym", status=302)
    assert requests.get(r.headers["Location"], timeout=10).status_code == 200
    r = app.get(f"/try/xul.pdb/{D}/new-try.sym", status=302)
    assert "/try/pfx/v1/" in r.headers["Location"]
    # And nothing was recorded for the 503s.
    assert app.registry.missing.wait_idle()
    assert count_missing(db) == 1  # only known-missing.sym


def test_s3_stopped_mid_test_public(make_app, s3, db):
    app = make_app(symbol_urls=s3.url(PUBLIC_BUCKET, public=True))
    put_public(s3, f"v1/xul.pdb/{D}/xul.sym")
    assert app.get(f"/xul.pdb/{D}/xul.sym", status=302)
    s3.stop()
    r = app.get(f"/xul.pdb/{D}/xul.sym", status=302)
    assert r.headers["Location"] == f"{s3.endpoint}/{PUBLIC_BUCKET}/v1/xul.pdb/{D}/xul.sym"
    assert_unavailable(app, f"/xul.pdb/{D}/new.sym", debug=True)
    assert_unavailable(app, f"/xul.pdb/{D}/new.sym?try")
    s3.start()
    put_public(s3, f"v1/xul.pdb/{D}/new.sym")
    assert app.get(f"/xul.pdb/{D}/new.sym", status=302)
    assert app.registry.missing.wait_idle()
    assert count_missing(db) == 0


def test_found_in_later_location_although_earlier_failed(make_app, s3, s3_mirror, memcached_clean, db):
    # Location 0: private, through the s3 server (stopped below); location 1: public,
    # through the mirror (kept running). Same buckets.
    public = f"{s3_mirror.endpoint}/{PUBLIC_BUCKET}?access=public"
    app = make_app(
        symbol_urls=f"{s3.url(PRIVATE_BUCKET)},{public}", memcached_servers=memcached_clean.address
    )
    put_public(s3, f"v1/xul.pdb/{D}/public.sym", b"public bytes")

    s3.stop()
    r = app.get(f"/xul.pdb/{D}/public.sym", status=302)
    assert_download(r, 302, "found", cache="max-age=0")
    assert r.headers["Location"] == f"{s3_mirror.endpoint}/{PUBLIC_BUCKET}/v1/xul.pdb/{D}/public.sym"
    assert requests.get(r.headers["Location"], timeout=10).content == b"public bytes"
    assert_download(app.head(f"/xul.pdb/{D}/public.sym", status=200), 200, "found")
    # Missing in the location that answered, and the other failed: 503.
    assert_unavailable(app, f"/xul.pdb/{D}/neither.sym", debug=True)
    assert_unavailable(app, f"/xul.pdb/{D}/later.sym")

    s3.start()
    # The later location's "not found" from the failed requests was not cached either.
    put_public(s3, f"v1/xul.pdb/{D}/later.sym")
    r = app.get(f"/xul.pdb/{D}/later.sym", status=302)
    assert r.headers["Location"].startswith(f"{s3_mirror.endpoint}/{PUBLIC_BUCKET}/")
    s3.put(PRIVATE_BUCKET, f"v1/xul.pdb/{D}/neither.sym")
    r = app.get(f"/xul.pdb/{D}/neither.sym", status=302)
    assert r.headers["Location"].startswith(f"{s3.endpoint}/{PRIVATE_BUCKET}/")
    # The found in the later location was cached.
    s3.delete(PUBLIC_BUCKET, f"v1/xul.pdb/{D}/public.sym")
    assert app.get(f"/xul.pdb/{D}/public.sym", status=302)
    assert app.registry.missing.wait_idle()
    assert count_missing(db) == 0


@pytest.mark.parametrize("public", [False, True], ids=["private", "public"])
def test_connection_refused(make_app, symbols_dir, public, db):
    refused = f"http://127.0.0.1:{closed_port()}/{PRIVATE_BUCKET}" + ("?access=public" if public else "")
    app = make_app(symbol_urls=refused)
    started = time.monotonic()
    assert_unavailable(app, f"/xul.pdb/{D}/xul.sym", debug=True)
    assert_unavailable(app, f"/try/xul.pdb/{D}/xul.sym")
    assert time.monotonic() - started < 4 * DEADLINE_UPPER_BOUND
    # A later location that has the key answers found.
    put_file(symbols_dir, f"v1/xul.pdb/{D}/xul.sym")
    app = make_app(symbol_urls=f"{refused},{symbols_dir}")
    r = app.get(f"/xul.pdb/{D}/xul.sym", status=302)
    assert r.headers["Location"] == f"http://symbols.example.com/__files__/1/v1/xul.pdb/{D}/xul.sym"
    assert_download(app.head(f"/xul.pdb/{D}/xul.sym", status=200), 200, "found")
    assert_unavailable(app, f"/xul.pdb/{D}/other.sym")
    assert app.registry.missing.wait_idle()
    assert count_missing(db) == 0


def test_storage_failures_are_logged_once_a_minute_per_location(make_app, caplog):
    """An outage fails every request; one line per request drowned the log (about 1,000
    in 5 s under load in bench/faults.py)."""
    refused = f"http://127.0.0.1:{closed_port()}/{PRIVATE_BUCKET}"
    app = make_app(symbol_urls=refused, try_symbol_url=f"http://127.0.0.1:{closed_port()}/{TRY_BUCKET}")
    with caplog.at_level("WARNING", logger="tecken_pyramid.storage"):
        for n in range(5):
            assert_unavailable(app, f"/try/xul.pdb/{D}/x{n}.sym")
    lines = [r.getMessage() for r in caplog.records if "storage check failed" in r.getMessage()]
    assert len(lines) == 2, lines  # one for each location
    assert {line.split()[4] for line in lines} == {loc.url + ":" for loc in app.registry.tecken.all_locations}


# =====================================================================================
# The storage deadline: a location that accepts connections and never answers
# =====================================================================================
@pytest.mark.parametrize("public", [False, True], ids=["private", "public"])
def test_storage_deadline(make_app, hanging, public):
    app = make_app(
        symbol_urls=hanging.url(public=public),
        storage_deadline="1",
        storage_read_timeout="3",
        storage_connect_timeout="1",
    )
    for method in ("GET", "HEAD"):
        started = time.monotonic()
        r = app.request(f"/xul.pdb/{D}/xul.sym", method=method, headers={"Debug": "1"}, expect_errors=True)
        elapsed = time.monotonic() - started
        assert_download(
            r,
            503,
            "unavailable",
            body=UNAVAILABLE_BODY if method == "GET" else "",
            cache="no-store",
            debug="positive",
        )
        assert 0.9 <= elapsed < DEADLINE_UPPER_BOUND, elapsed
        assert 0.9 <= float(r.headers["Debug-Time"]) < DEADLINE_UPPER_BOUND


def test_storage_deadline_counts_unchecked_locations_as_failed(make_app, hanging, symbols_dir):
    # The deadline runs out in location 0; location 1 is never checked, so the answer
    # is "try again later", not "not found".
    put_file(symbols_dir, f"v1/xul.pdb/{D}/xul.sym")
    app = make_app(
        symbol_urls=f"{hanging.url()},{symbols_dir}",
        storage_deadline="1",
        storage_read_timeout="3",
        storage_connect_timeout="1",
    )
    started = time.monotonic()
    assert_download(app.get(f"/xul.pdb/{D}/nope.sym", status=503), 503, "unavailable", body=UNAVAILABLE_BODY)
    assert time.monotonic() - started < DEADLINE_UPPER_BOUND


@pytest.mark.parametrize("public", [False, True], ids=["private", "public"])
@pytest.mark.parametrize("retries", [0, 1, 2])
def test_read_timeout_and_retries(make_app, hanging, public, retries):
    app = make_app(
        symbol_urls=hanging.url(public=public),
        storage_deadline="10",
        storage_read_timeout="0.3",
        storage_connect_timeout="1",
        storage_retries=str(retries),
    )
    started = time.monotonic()
    assert_download(app.get(f"/xul.pdb/{D}/xul.sym", status=503), 503, "unavailable", body=UNAVAILABLE_BODY)
    elapsed = time.monotonic() - started
    assert 0.3 * (retries + 1) * 0.9 <= elapsed < 0.3 * (retries + 1) + DEADLINE_UPPER_BOUND, elapsed
    # One connection per attempt: a timeout is retried, at most `retries` times.
    assert poll(lambda: len(hanging.connections) >= retries + 1, timeout=2)
    time.sleep(0.1)
    assert len(hanging.connections) == retries + 1


# =====================================================================================
# How storage answers are classified, over real HTTP (SPEC §2 step 4)
# =====================================================================================
@pytest.mark.parametrize(
    "public,status,outcome,attempts",
    [
        (True, 404, "not-found", 1),
        (True, 403, "not-found", 1),  # S3's answer for a missing key without anonymous listing
        (True, 400, "not-found", 1),  # e.g. a key over S3's 1,024-byte limit
        (True, 410, "not-found", 1),
        (True, 401, "not-found", 1),
        (True, 429, "unavailable", 2),
        (True, 500, "unavailable", 2),
        (True, 502, "unavailable", 2),
        (True, 503, "unavailable", 2),
        (False, 404, "not-found", 1),
        (False, 400, "not-found", 1),
        (False, 403, "unavailable", 1),  # bad credentials or a missing permission
        (False, 401, "unavailable", 1),
        (False, 429, "unavailable", 2),
        (False, 500, "unavailable", 2),
        (False, 503, "unavailable", 2),
    ],
)
def test_storage_status_classification(make_app, public, status, outcome, attempts, memcached_clean):
    server = StatusServer(status)
    try:
        app = make_app(symbol_urls=server.url(public=public), memcached_servers=memcached_clean.address)
        object_path = f"/{PRIVATE_BUCKET}/v1/xul.pdb/{D}/xul.sym"

        def object_requests():
            # botocore may add a bucket-region probe (HEAD /bucket) after a 400: not a check.
            return [m for m, p in server.requests if p == object_path]

        r = app.get(f"/xul.pdb/{D}/xul.sym", expect_errors=True)
        if outcome == "not-found":
            assert_download(r, 404, "not-found", body=NOT_FOUND_BODY)
        else:
            assert_download(r, 503, "unavailable", body=UNAVAILABLE_BODY, cache="no-store")
        # Checks are HEADs of the object; only 429 and 5xx are retried.
        assert object_requests() == ["HEAD"] * attempts, server.requests
        # A not-found is cached; a failure is not (the next request asks storage again).
        app.get(f"/xul.pdb/{D}/xul.sym", expect_errors=True)
        assert len(object_requests()) == (attempts if outcome == "not-found" else 2 * attempts)
    finally:
        server.close()


def test_storage_2xx_is_found(make_app):
    server = StatusServer(200)
    try:
        app = make_app(symbol_urls=server.url(public=True))
        r = app.get(f"/x%20%2B.pdb/{D}/a%20b+c.sym", status=302)
        expected = f"/{PRIVATE_BUCKET}/v1/x%20%2B.pdb/{D}/a%20b%2Bc.sym"
        assert r.headers["Location"] == f"http://127.0.0.1:{server.port}{expected}"
        assert server.requests == [("HEAD", expected)]
    finally:
        server.close()


# =====================================================================================
# A database outage: the running app keeps its last rules and never waits on the database
# =====================================================================================
# Needs a TCP database to cut: defined only for the PostgreSQL run (no skip).
if selected_database_kind() == "postgresql":

    def test_database_outage_keeps_last_rules(make_app, db, symbols_dir):
        import urllib.parse

        parsed = urllib.parse.urlsplit(db.url)
        forwarder = TcpForwarder(parsed.hostname, parsed.port or 5432)
        forwarder.open()
        try:
            url = db.url.replace(f"@{parsed.netloc.split('@', 1)[1]}", f"@127.0.0.1:{forwarder.port}")
            app = make_app(symbol_urls=str(symbols_dir), **{"sqlalchemy.url": url})
            engine = db.engine()  # direct, not through the forwarder
            blocked = f"/xul.pdb/{D}/blocked.sym"

            def lookup(path):
                return app.get(path, expect_errors=True).headers["X-Symbol-Lookup"]

            try:
                with engine.begin() as c:
                    c.execute(
                        text(
                            "INSERT INTO ignore_pattern (pattern, enabled, note, created_by, created_at) "
                            "VALUES ('*/*/blocked.sym', true, '', 'test', CURRENT_TIMESTAMP)"
                        )
                    )
                assert poll(lambda: lookup(blocked) == "ignored")

                forwarder.close()
                with engine.begin() as c:
                    c.execute(text("DELETE FROM ignore_pattern WHERE pattern = '*/*/blocked.sym'"))
                # Reloads fail for a while (every 0.2 s here): the last rules stay, answers stay fast.
                end = time.monotonic() + 1.5
                while time.monotonic() < end:
                    started = time.monotonic()
                    r = app.get(blocked, status=404)
                    assert r.headers["X-Symbol-Lookup"] == "ignored"
                    assert (
                        app.get(f"/xul.pdb/{D}/xul.sym", status=404).headers["X-Symbol-Lookup"] == "not-found"
                    )
                    assert time.monotonic() - started < 1.0
                    time.sleep(0.05)
                assert app.registry.rules.last_error is not None

                forwarder.open()
                assert poll(lambda: lookup(blocked) == "not-found")
            finally:
                engine.dispose()
        finally:
            forwarder.close()


def test_presigning_without_credentials_is_unavailable_not_500(make_app, s3, monkeypatch):
    # A cached "found" whose presigned URL cannot be made (no credentials) answers
    # 503 unavailable, never a 500.
    from tecken_pyramid.cache import FOUND, existence_key

    app = make_app(symbol_urls=s3.url(PRIVATE_BUCKET))
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    loc = app.registry.tecken.locations[0]
    key = loc.key("xul.pdb", DEBUG_ID, "xul.sym")
    app.registry.cache.set_many({existence_key(loc, key): FOUND}, 60)
    r = app.get(f"/xul.pdb/{DEBUG_ID}/xul.sym", status=503)
    assert r.headers["X-Symbol-Lookup"] == "unavailable"
    assert r.headers["Retry-After"] == "5"
    # HEAD needs no URL: the cached "found" answers 200.
    app.head(f"/xul.pdb/{DEBUG_ID}/xul.sym", status=200)
