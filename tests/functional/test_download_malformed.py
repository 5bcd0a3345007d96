"""Malformed requests never answer 5xx (SPEC §2): real waitress, raw bytes.

Real components: a local directory, moto's S3 server over HTTP, a real memcached,
a migrated database, the real command line and, for raw bytes, a real waitress.
"""

import pytest

from tests.conftest import (
    PRIVATE_BUCKET,
    PUBLIC_BUCKET,
    put_file,
)
from tests.functional.download_prelude import OTHER_METHODS, D
from tests.functional.download_support import (
    IGNORED_BODY,
    INVALID_NAME_BODY,
    NOT_FOUND_BODY,
    assert_405,
    assert_download,
    assert_json_404,
    raw_request,
)

# Nothing here depends on the database kind: run once, in the SQLite pass (.ci/test).
pytestmark = pytest.mark.database_independent


# =====================================================================================
# Malformed requests never answer 5xx (real waitress, raw bytes)
# =====================================================================================
@pytest.fixture
def served_local(make_app, symbols_dir, serve):
    put_file(symbols_dir, f"v1/xul.pdb/{D}/xul.sym", b"MODULE xul\n")
    app = make_app(symbol_urls=str(symbols_dir))
    served = serve(app)
    served.app = app
    return served


def test_raw_non_ascii_request_target_is_refused_by_waitress(served_local):
    # waitress itself answers 400 "Bad URI" to raw non-ASCII bytes in the request
    # target, before the app: never a 5xx. Percent-encoded bytes reach the app (below).
    port = served_local.port
    for target in (
        b"/x\xffy.pdb/" + D.encode() + b"/x.sym",
        f"/汉.pdb/{D}/x.sym".encode(),
        f"/xul.pdb/{D}/nope.sym?code_file=".encode() + b"\xff",
        b"/x\xff/y",
    ):
        for method in ("GET", "HEAD", "POST"):
            r = raw_request(port, method, target)
            assert 400 <= r.status_int < 500, (target, r.status_line)


def test_undecodable_path_bytes(served_local):
    port = served_local.port
    # %FF: the name keeps "%FF", so it ends at step 3.
    for target in (f"/x%FFy.pdb/{D}/x.sym", f"/xul.pdb/{D}/x%fe.sym", f"/try/x%FFy.pdb/{D}/x.sym"):
        r = raw_request(port, "GET", target)
        assert_download(r, 400, "invalid-name", body=INVALID_NAME_BODY, cache="no-store")
        r = raw_request(port, "HEAD", target)
        assert_download(r, 400, "invalid-name", cache="no-store")
    # Truncated, overlong and surrogate UTF-8 sequences too.
    for target in (
        f"/xul.pdb/{D}/x%C3%28.sym",
        f"/%E6%B1.pdb/{D}/x.sym",
        f"/%C0%AF.pdb/{D}/x.sym",
        f"/%ED%A0%80.pdb/{D}/x.sym",
    ):
        assert_download(raw_request(port, "GET", target), 400, "invalid-name", body=INVALID_NAME_BODY)
    # Steps 1 and 2 still decide first.
    r = raw_request(port, "GET", f"/x%FF.pdb/{D}/file.ptr")
    assert_download(r, 404, "ignored", body=IGNORED_BODY)
    r = raw_request(port, "GET", f"/xul.pdb/{D}/x%FF.exe")
    assert_download(r, 404, "extension-not-allowed", body=IGNORED_BODY)
    # Bad shape: the JSON 404 names the path with %XX for the undecodable bytes.
    assert_json_404(raw_request(port, "GET", "/x%FF/y"), "/x%FF/y")
    assert_json_404(raw_request(port, "GET", f"/xul.pdb/{D}/x%FF.sym/"), f"/xul.pdb/{D}/x%FF.sym/")
    assert_json_404(raw_request(port, "GET", "/xul.pdb/G%FF/x.sym"), "/xul.pdb/G%FF/x.sym")
    assert_json_404(raw_request(port, "DELETE", "/x%FF/y"), "/x%FF/y")
    # 405 names it the same way.
    assert_405(raw_request(port, "POST", f"/x%FF.pdb/{D}/x.sym"), "POST", f"/x%FF.pdb/{D}/x.sym")
    # Valid UTF-8, percent-encoded, is an ordinary name.
    r = raw_request(port, "GET", f"/%E6%B1%89.pdb/{D}/x.sym")
    assert_download(r, 404, "not-found", body=NOT_FOUND_BODY)


def test_undecodable_path_via_webtest_environ(local):
    # PATH_INFO as a WSGI server gives it: latin-1 characters standing for bytes.
    r = local.get("/", extra_environ={"PATH_INFO": f"/x\xffy.pdb/{D}/x.sym"}, expect_errors=True)
    assert_download(r, 400, "invalid-name", body=INVALID_NAME_BODY)
    r = local.get("/", extra_environ={"PATH_INFO": f"/x\xff.pdb/{D}/file.ptr"}, expect_errors=True)
    assert_download(r, 404, "ignored", body=IGNORED_BODY)
    r = local.get("/", extra_environ={"PATH_INFO": "/x\xff/y"}, expect_errors=True)
    assert_json_404(r, "/x%FF/y")
    r = local.post("/", extra_environ={"PATH_INFO": f"/x\xff.pdb/{D}/x.sym"}, expect_errors=True)
    assert_405(r, "POST", f"/x%FF.pdb/{D}/x.sym")
    # Valid UTF-8 bytes as latin-1 characters: an ordinary name.
    r = local.get(
        "/", extra_environ={"PATH_INFO": f"/汉.pdb/{D}/x.sym".encode().decode("latin-1")}, expect_errors=True
    )
    assert_download(r, 404, "not-found", body=NOT_FOUND_BODY)


def test_undecodable_query_bytes(served_local):
    port = served_local.port
    for query, body in [
        ("code_file=%FF", "code_file: Invalid characters are not allowed."),
        ("code_id=%C3%28", "code_id: Invalid characters are not allowed."),
        ("code_file=%00", "code_file: Null characters are not allowed."),
    ]:
        r = raw_request(port, "GET", f"/xul.pdb/{D}/nope.sym?{query}")
        assert_download(r, 400, "invalid-query", body=body, cache="no-store")
        assert_download(raw_request(port, "HEAD", f"/xul.pdb/{D}/nope.sym?{query}"), 404, "not-found")
        assert_download(raw_request(port, "GET", f"/xul.pdb/{D}/xul.sym?{query}"), 302, "found")
    # Undecodable names and values elsewhere in the query change nothing.
    for query in (
        "%FF=%FF",
        "%FF=%FE&x",
        "try&_refresh=%FF",
        "a=%",
        "%%%",
        "=&&=",
        "code_file=%E6%B1%89",
        "&&&",
    ):
        r = raw_request(port, "GET", f"/xul.pdb/{D}/nope.sym?{query}")
        assert_download(r, 404, "not-found", body=NOT_FOUND_BODY)
        assert_download(raw_request(port, "GET", f"/xul.pdb/{D}/xul.sym?{query}"), 302, "found")
    # ?try with an undecodable value still means try.
    put_file(served_local.app.registry.tecken.try_location.directory, f"v1/xul.pdb/{D}/t.sym")
    assert_download(raw_request(port, "GET", f"/xul.pdb/{D}/t.sym?try=%FF"), 302, "found")
    assert_download(raw_request(port, "GET", f"/xul.pdb/{D}/t.sym?%FF&try"), 302, "found")


def test_undecodable_query_via_webtest_environ(local):
    # QUERY_STRING as a WSGI server would give raw bytes: latin-1 characters.
    path = f"/xul.pdb/{D}/nope.sym"
    for query, body in [
        ("code_file=\xff", "code_file: Invalid characters are not allowed."),
        ("code_id=\xc3\x28", "code_id: Invalid characters are not allowed."),
        ("code_file=\x00", "code_file: Null characters are not allowed."),
        ("code_file=a\x7fb", "code_file: Control characters are not allowed."),
    ]:
        r = local.request(local.RequestClass.blank(path, {"QUERY_STRING": query}), expect_errors=True)
        assert_download(r, 400, "invalid-query", body=body)
    req = local.RequestClass.blank(path, {"QUERY_STRING": "code_file=\xe6\xb1\x89&\xff=\xff"})
    assert_download(local.request(req, expect_errors=True), 404, "not-found", body=NOT_FOUND_BODY)


def test_nul_and_control_characters_in_path(served_local):
    port = served_local.port
    for target in (
        f"/xul%00.pdb/{D}/xul.sym",
        f"/xul.pdb/{D}/x%00.sym",
        f"/x%01.pdb/{D}/x.sym",
        f"/x%0A.pdb/{D}/x.sym",
        f"/x%0D%0A.pdb/{D}/x.sym",
        f"/x%1B.pdb/{D}/x.sym",
    ):
        r = raw_request(port, "GET", target)
        assert_download(r, 400, "invalid-name", body=INVALID_NAME_BODY, cache="no-store")
    r = raw_request(port, "GET", f"/xul.pdb/{D}%00/xul.sym")
    assert r.status_int == 404 and r.headers["Content-Type"] == "application/json"
    r = raw_request(port, "GET", f"/xul.pdb/{D}/x%7F.sym")  # DEL is allowed
    assert_download(r, 404, "not-found", body=NOT_FOUND_BODY)


def test_leading_slashes_collapse_under_waitress(served_local):
    r = raw_request(served_local.port, "GET", f"//xul.pdb/{D}/xul.sym")
    assert_download(r, 302, "found")
    r = raw_request(served_local.port, "GET", f"///try/xul.pdb/{D}/xul.sym")
    assert_download(r, 302, "found")


@pytest.mark.parametrize("storage", ["local", "private", "public"])
def test_8kb_path_and_query(make_app, symbols_dir, s3, serve, storage):
    urls = {
        "local": str(symbols_dir),
        "private": s3.url(PRIVATE_BUCKET),
        "public": s3.url(PUBLIC_BUCKET, public=True),
    }[storage]
    app = make_app(symbol_urls=urls)
    served = serve(app)
    long_symbol = "s" * 8000 + ".pdb"
    long_file = "f" * 8000 + ".sym"
    for target in (
        f"/{long_symbol}/{D}/x.sym",
        f"/xul.pdb/{D}/{long_file}",
        f"/try/xul.pdb/{D}/{long_file}",
        f"/xul.pdb/{'A' * 8000}/x.sym",
    ):
        r = raw_request(served.port, "GET", target)
        assert_download(r, 404, "not-found", body=NOT_FOUND_BODY)
        assert_download(raw_request(served.port, "HEAD", target), 404, "not-found")
    r = raw_request(served.port, "GET", f"/xul.pdb/{D}/x.sym?code_file={'c' * 8000}&code_id={'%FF' * 2000}")
    assert_download(r, 400, "invalid-query", body="code_id: Invalid characters are not allowed.")
    r = raw_request(served.port, "GET", f"/xul.pdb/{D}/x.sym?code_file={'c' * 8000}&code_id={'i' * 8000}")
    assert_download(r, 404, "not-found", body=NOT_FOUND_BODY)
    r = raw_request(served.port, "GET", f"/{'a/' * 4000}x.sym")
    assert r.status_int == 404 and r.headers["Content-Type"] == "application/json"


@pytest.mark.parametrize("method", ["FOO", "PROPFIND", "MKCOL", "TRACE", "LOCK", "X-CUSTOM"])
def test_weird_methods_over_waitress(served_local, method):
    port = served_local.port
    r = raw_request(port, method, f"/xul.pdb/{D}/xul.sym")
    assert r.status_int < 500
    assert_405(r, method, f"/xul.pdb/{D}/xul.sym")
    r = raw_request(port, method, f"/xul.pdb/{D}/xul.sym/")
    assert_json_404(r, f"/xul.pdb/{D}/xul.sym/")
    r = raw_request(port, method, "/metrics/ABC/x.sym")
    assert_json_404(r, "/metrics/ABC/x.sym")


@pytest.mark.parametrize("method", [b"get", b"Head", b"G\xffT", b"GET\x00", b"A" * 300])
def test_malformed_methods_are_refused_by_waitress(served_local, method):
    # Not tokens waitress accepts: it answers 4xx itself, never a 5xx.
    r = raw_request(served_local.port, method, f"/xul.pdb/{D}/xul.sym")
    assert 400 <= r.status_int < 500


def test_methods_over_waitress(served_local):
    port = served_local.port
    for method in OTHER_METHODS:
        body = b"data" if method in ("POST", "PUT") else b""
        r = raw_request(port, method, f"/xul.pdb/{D}/xul.sym", body=body)
        assert_405(r, method, f"/xul.pdb/{D}/xul.sym")
    # A CORS preflight is the one OPTIONS that is answered (204; test_download_cors.py);
    # any other OPTIONS is the 405.
    preflight = [("Origin", "https://profiler.firefox.com"), ("Access-Control-Request-Method", "GET")]
    r = raw_request(port, "OPTIONS", f"/xul.pdb/{D}/xul.sym", headers=preflight)
    assert r.status_int == 204 and r.body == b""
    assert r.headers["Access-Control-Allow-Headers"] == "Debug"
    r = raw_request(
        port, "OPTIONS", f"/xul.pdb/{D}/xul.sym", headers=[("Origin", "https://profiler.firefox.com")]
    )
    assert_405(r, "OPTIONS", f"/xul.pdb/{D}/xul.sym")
    assert_download(raw_request(port, "GET", f"/xul.pdb/{D}/xul.sym"), 302, "found")
    assert_download(raw_request(port, "HEAD", f"/xul.pdb/{D}/xul.sym"), 200, "found")
