"""Lookup by code id (SPEC §9, download step 4): after every location said not found,
a .sym request whose debug id may be a code id is redirected to the newest indexed
file with that code file and code id.

Real components: symbol_file rows written by symbol_index.record_file into the migrated
database, a local directory, moto's S3 over HTTP, a real memcached, PostgreSQL URLs at a
closed port for the outage.
"""

import threading
import time

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session

from tecken_pyramid import symbol_index
from tecken_pyramid.code_ids import redirect_location
from tests.conftest import PRIVATE_BUCKET, put_file
from tests.functional.download_prelude import HOST, D, count_missing
from tests.functional.download_support import (
    NOT_FOUND_BODY,
    HangingServer,
    assert_download,
    closed_port,
    raw_request,
)

CODE_FILE = "xul.dll"
CODE_ID = "5F2E0B3C1A000"
CODE_PATH = f"/{CODE_FILE}/{CODE_ID.lower()}/xul.sym"
TARGET = f"/xul.pdb/{D}/xul.sym"


def index_row(db, location, *, symbol="xul.pdb", debug_id=D, filename="xul.sym", code_file=CODE_FILE,
              code_id=CODE_ID):  # fmt: skip
    header = {
        "os": "windows",
        "arch": "x86_64",
        "code_id": code_id,
        "code_file": code_file,
        "generator": None,
    }
    engine = db.engine()
    try:
        with Session(engine) as session, session.begin():
            symbol_index.record_file(
                session,
                location=location,
                key=location.key(symbol, debug_id, filename),
                symbol=symbol,
                debug_id=debug_id,
                filename=filename,
                size=12,
                sha256=None,
                header=header,
            )
    finally:
        engine.dispose()


def delete_rows(db):
    engine = db.engine()
    with engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM symbol_file")
    engine.dispose()


def regular(app):
    return app.registry.tecken.locations[0]


def try_location(app):
    return app.registry.tecken.all_locations[-1]


def lookups(app, result):
    return app.registry.metrics.code_id_lookups.labels(result)._value.get()


def assert_code_id(response, location):
    assert_download(response, 302, "code-id", body="", cache="max-age=0")
    assert response.headers["Location"] == location


def test_get_and_head_redirect_to_the_indexed_file(local, db):
    put_file(local.dir, f"v1/xul.pdb/{D}/xul.sym", b"MODULE windows x86_64 " + D.encode() + b" xul.pdb\n")
    index_row(db, regular(local))
    assert_code_id(local.get(CODE_PATH, status=302), HOST + TARGET)
    assert_code_id(local.head(CODE_PATH, status=302), HOST + TARGET)
    assert local.get(TARGET, status=302).headers["X-Symbol-Lookup"] == "found"  # and it is there
    # A redirect is not a miss: nothing recorded.
    assert local.registry.missing.wait_idle()
    assert count_missing(db) == 0
    r = local.get(CODE_PATH, headers={"Debug": "1"}, status=302)
    assert_download(r, 302, "code-id", body="", debug="positive")


def test_query_string_and_try_prefix_are_kept(local, db):
    index_row(db, regular(local))
    query = "code_file=xul.dll&code_id=5F2E0B3C1A000&x=%C3%A9+y"
    assert_code_id(local.get(f"{CODE_PATH}?{query}", status=302), f"{HOST}{TARGET}?{query}")
    assert_code_id(local.get(f"/try{CODE_PATH}", status=302), f"{HOST}/try{TARGET}")
    assert_code_id(local.get(f"/try{CODE_PATH}?try", status=302), f"{HOST}/try{TARGET}?try")
    assert_code_id(local.get(f"{CODE_PATH}?try", status=302), f"{HOST}{TARGET}?try")


def test_raw_query_characters_are_percent_encoded_in_the_location(local, db, serve):
    index_row(db, regular(local))
    served = serve(local)
    r = raw_request(served.port, "GET", CODE_PATH + '?a="<x>"&b=%41|`')
    assert r.status_int == 302 and r.headers["X-Symbol-Lookup"] == "code-id", (r.status, r.body)
    assert r.headers["Location"] == f"{HOST}{TARGET}?a=%22%3Cx%3E%22&b=%41%7C%60"
    # Bytes past ASCII (which waitress refuses in a raw target) would be %XX too.
    location = redirect_location("http://h", ("s", "D", "f.sym"), is_try=False, query_string="a=\xe9")
    assert location == "http://h/s/D/f.sym?a=%E9"


def test_a_try_row_is_used_only_when_try_is_consulted(local, db):
    index_row(db, try_location(local), symbol="try.pdb")
    assert_download(local.get(CODE_PATH, status=404), 404, "not-found", body=NOT_FOUND_BODY)
    assert_download(local.head(CODE_PATH, status=404), 404, "not-found")
    assert_code_id(local.get(f"/try{CODE_PATH}", status=302), f"{HOST}/try/try.pdb/{D}/xul.sym")
    assert_code_id(local.get(f"{CODE_PATH}?try=0", status=302), f"{HOST}/try.pdb/{D}/xul.sym?try=0")


def test_the_newest_row_wins_and_names_are_percent_encoded(local, db):
    index_row(db, regular(local), symbol="old.pdb")
    time.sleep(0.01)
    index_row(db, regular(local), symbol="nouveau é+ #.pdb", filename="x y.sym")
    r = local.get(CODE_PATH, status=302)
    assert_code_id(r, f"{HOST}/nouveau%20%C3%A9+%20%23.pdb/{D}/x%20y.sym")


@pytest.mark.parametrize(
    "path",
    [
        f"/{CODE_FILE}/{CODE_ID}/xul.dl_",  # not a .sym
        f"/{CODE_FILE}/{'A' * 41}/xul.sym",  # 41 characters: a debug id, never a code id
        f"/{CODE_FILE.upper()}/{CODE_ID}/xul.sym",  # the code file is case-sensitive
    ],
)
def test_not_looked_up(local, db, path):
    index_row(db, regular(local))
    index_row(db, regular(local), symbol="long.pdb", code_id="A" * 41)
    index_row(db, regular(local), symbol="ext.pdb", filename="xul.dl_")
    assert_download(local.get(path, status=404), 404, "not-found", body=NOT_FOUND_BODY)


def test_forty_characters_is_still_a_code_id(local, db):
    index_row(db, regular(local), code_id="b" * 40)
    assert_code_id(local.get(f"/{CODE_FILE}/{'B' * 40}/xul.sym", status=302), HOST + TARGET)


def test_never_a_redirect_to_the_same_path(local, db):
    # A row that names the very file requested (its object missing from storage).
    index_row(db, regular(local), symbol=CODE_FILE, debug_id=CODE_ID, filename="xul.sym")
    assert_download(local.get(CODE_PATH, status=404), 404, "not-found", body=NOT_FOUND_BODY)
    # Another file name of the same module is redirected to the indexed one.
    assert_code_id(
        local.get(f"/{CODE_FILE}/{CODE_ID}/other.sym", status=302), f"{HOST}/{CODE_FILE}/{CODE_ID}/xul.sym"
    )


def test_in_process_cache_found_not_found_refresh_and_invalidate(local, db):
    assert local.get(CODE_PATH, status=404)
    index_row(db, regular(local))
    assert local.get(CODE_PATH, status=404)  # the cached answer
    assert lookups(local, "cached-not-found") == 1
    assert_code_id(local.get(CODE_PATH + "?_refresh", status=302), f"{HOST}{TARGET}?_refresh")
    delete_rows(db)
    assert_code_id(local.get(CODE_PATH, status=302), HOST + TARGET)  # found, cached
    local.registry.code_ids.invalidate(CODE_FILE, CODE_ID.lower())
    assert local.get(CODE_PATH, status=404)
    assert (lookups(local, "found"), lookups(local, "not-found"), lookups(local, "cached-found")) == (1, 2, 1)


@pytest.fixture
def s3_apps(make_app, s3, memcached_clean):
    def build():
        return make_app(symbol_urls=s3.url(PRIVATE_BUCKET, "pfx"), memcached_servers=memcached_clean.address)

    return build


def test_memcached_answers_are_shared_and_invalidated(s3_apps, db):
    one, two = s3_apps(), s3_apps()
    assert_download(one.get(CODE_PATH, status=404), 404, "not-found")
    index_row(db, regular(one))
    assert_download(two.get(CODE_PATH, status=404), 404, "not-found")  # one's cached not found
    assert lookups(two, "cached-not-found") == 1
    one.registry.code_ids.invalidate(CODE_FILE, CODE_ID)
    assert_code_id(two.get(CODE_PATH, status=302), HOST + TARGET)
    delete_rows(db)
    assert_code_id(one.get(CODE_PATH, status=302), HOST + TARGET)  # two's cached found
    assert_code_id(one.head(CODE_PATH, status=302), HOST + TARGET)
    assert lookups(one, "cached-found") == 2
    assert_download(two.get(CODE_PATH + "?_refresh", status=404), 404, "not-found")
    assert_download(one.get(CODE_PATH, status=404), 404, "not-found")  # the refresh was written
    # A try request has its own entry: the regular one does not answer for it.
    index_row(db, try_location(one), symbol="try.pdb")
    assert_code_id(one.get(f"/try{CODE_PATH}", status=302), f"{HOST}/try/try.pdb/{D}/xul.sym")


def test_invalidate_logs_a_cache_failure_and_raises_nothing(s3_apps, memcached_clean, caplog):
    app = s3_apps()
    memcached_clean.stop()
    app.registry.code_ids.invalidate(CODE_FILE, CODE_ID)
    assert "not dropped" in caplog.text


class QueryCounter:
    """Statements the request thread sends to the app's engine (background threads excluded)."""

    def __init__(self, engine):
        self.engine = engine
        self.thread = threading.get_ident()
        self.statements = []
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, _conn, _cursor, statement, *_args):
        if threading.get_ident() == self.thread:
            self.statements.append(statement)

    def close(self):
        event.remove(self.engine, "before_cursor_execute", self._seen)


class GetCounter:
    """Calls of the shared cache's get_many (each one a round trip per server)."""

    def __init__(self, cache):
        self.calls = []
        self._get_many = cache.get_many
        cache.get_many = self

    def __call__(self, keys):
        self.calls.append(list(keys))
        return self._get_many(keys)


def test_cached_hit_and_cached_miss_touch_no_database_and_read_the_cache_once(s3_apps, s3, db):
    app = s3_apps()
    s3.put(PRIVATE_BUCKET, f"pfx/v1/xul.pdb/{D}/xul.sym")
    miss = f"/xul.pdb/{D}/nope.sym"
    assert app.get(TARGET, status=302)
    assert app.get(miss, status=404)
    assert app.get(f"/try{miss}", status=404)
    counter, gets = QueryCounter(app.registry.dbengine), GetCounter(app.registry.cache)
    try:
        for _ in range(3):
            assert_download(app.get(TARGET, status=302), 302, "found", cache="no-store")
            assert_download(app.head(TARGET, status=200), 200, "found")
            assert_download(app.get(miss, status=404), 404, "not-found")
            assert_download(app.head(f"/try{miss}", status=404), 404, "not-found")
    finally:
        counter.close()
    assert counter.statements == []
    assert len(gets.calls) == 12  # one get_many per request, the code-id entry in it
    assert all(len(keys) == 2 for keys in gets.calls[:3])
    assert [len(keys) for keys in gets.calls[3:4]] == [3]  # /try/: two locations and the code id


def test_database_unreachable_plain_404_and_a_breaker(make_app, symbols_dir):
    url = f"postgresql+psycopg://nobody@127.0.0.1:{closed_port()}/tecken"
    app = make_app(wait_rules=False, symbol_urls=str(symbols_dir), **{"sqlalchemy.url": url})
    app.registry.code_ids.breaker_seconds = 0.3
    for method in (app.get, app.head, app.get):
        assert_download(method(CODE_PATH, status=404), 404, "not-found")
    assert (lookups(app, "failed"), lookups(app, "skipped")) == (1, 2)
    time.sleep(0.35)
    assert_download(app.get(CODE_PATH, status=404), 404, "not-found")  # one probe, failed again
    assert lookups(app, "failed") == 2
    assert_download(app.get(CODE_PATH, status=404), 404, "not-found")
    assert lookups(app, "skipped") == 3


def test_the_breaker_closes_when_the_database_answers(local, db):
    code_ids = local.registry.code_ids
    code_ids.breaker_seconds = 0.2
    code_ids._failed(RuntimeError("simulated"))
    index_row(db, regular(local))
    assert local.get(CODE_PATH, status=404)
    assert lookups(local, "skipped") == 1
    time.sleep(0.25)
    assert_code_id(local.get(CODE_PATH, status=302), HOST + TARGET)
    assert_code_id(local.get(f"{CODE_PATH}?_refresh", status=302), f"{HOST}{TARGET}?_refresh")
    assert lookups(local, "found") == 2


def test_a_database_that_hangs_costs_one_timeout_then_the_breaker_skips(make_app, symbols_dir):
    hanging = HangingServer()
    try:
        url = f"postgresql+psycopg://nobody@127.0.0.1:{hanging.port}/tecken"
        app = make_app(wait_rules=False, symbol_urls=str(symbols_dir), **{"sqlalchemy.url": url})
        assert_download(app.get(CODE_PATH, status=404), 404, "not-found")  # after the connect timeout
        started = time.monotonic()
        for method in (app.get, app.head):
            assert_download(method(CODE_PATH, status=404), 404, "not-found")
        assert time.monotonic() - started < 1
        assert (lookups(app, "failed"), lookups(app, "skipped")) == (1, 2)
    finally:
        hanging.close()
