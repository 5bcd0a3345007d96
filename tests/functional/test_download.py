"""Functional tests of the download path (SPEC §2, §3, §5) with real components:
a local directory, moto's S3 server over HTTP, a real memcached, a migrated
database, the real command line and, for malformed requests, a real waitress.
"""

import os
import time
import urllib.request

import pytest
import requests
from sqlalchemy import text

from tests.conftest import (
    DEBUG_ID,
    PRIVATE_BUCKET,
    PUBLIC_BUCKET,
    TRY_BUCKET,
    put_file,
    put_public,
)
from tests.functional.download_support import (
    DEVELOPMENT_INI,
    IGNORED_BODY,
    INVALID_NAME_BODY,
    NOT_FOUND_BODY,
    TEXT,
    assert_405,
    assert_download,
    assert_json_404,
    assert_no_cookie,
    closed_port,
    poll,
    q,
    raw_request,
    run_cli,
    serve,  # noqa: F401 - fixture
)

D = DEBUG_ID
ZERO_ID = "0" * 33
HOST = "http://symbols.example.com"
OTHER_METHODS = ("POST", "PUT", "DELETE", "OPTIONS", "PATCH")
ALL_METHODS = ("GET", "HEAD", *OTHER_METHODS)
ALLOWED_EXTENSIONS = (".sym", ".dl_", ".ex_", ".pd_", ".dbg.gz", ".tar.bz2")


@pytest.fixture
def local(make_app, symbols_dir):
    """An app over one local directory (in-process cache)."""
    app = make_app(symbol_urls=str(symbols_dir))
    app.dir = symbols_dir
    return app


def files_path(location):
    assert location.startswith(HOST + "/__files__/"), location
    return location[len(HOST):]


def count_missing(db):
    engine = db.engine()
    try:
        with engine.connect() as connection:
            return connection.execute(text("SELECT count(*) FROM missing_symbol")).scalar_one()
    finally:
        engine.dispose()


# =====================================================================================
# Step 1: ignore patterns (the seeded */*/file.ptr and the 33-zero debug id)
# =====================================================================================
@pytest.mark.parametrize(
    "path",
    [
        f"/xul.pdb/{D}/file.ptr",
        f"/whatever.dll/{D.lower()}/file.ptr",
        f"/try/xul.pdb/{D}/file.ptr",
        f"/xul.pdb/{ZERO_ID}/xul.sym",
        f"/try/xul.pdb/{ZERO_ID}/xul.sym",
        f"/xul.pdb/{ZERO_ID}/anything.exe",
    ],
)
def test_ignored(local, path):
    # Present in storage, and still never looked up.
    segs = path.split("/")[-3:]
    put_file(local.dir, "v1/" + "/".join([segs[0], segs[1].upper(), segs[2]]))
    r = local.get(path, status=404)
    assert_download(r, 404, "ignored", body=IGNORED_BODY)
    r = local.head(path, status=404)
    assert_download(r, 404, "ignored", body="")


@pytest.mark.parametrize("debugid", ["0" * 32, "0" * 34, "0" * 33 + "1", "1" + "0" * 32])
def test_not_quite_zero_debug_id_is_looked_up(local, debugid):
    r = local.get(f"/xul.pdb/{debugid}/xul.sym", status=404)
    assert_download(r, 404, "not-found", body=NOT_FOUND_BODY)


@pytest.mark.parametrize("filename", ["File.ptr", "file.ptr.sym", "xfile.ptr.sym"])
def test_file_ptr_pattern_is_exact(local, filename):
    r = local.get(f"/xul.pdb/{D}/{filename}", expect_errors=True)
    assert r.headers["X-Symbol-Lookup"] != "ignored"


@pytest.mark.parametrize(
    "path",
    [
        f"/x%7B.pdb/{D}/file.ptr",  # invalid '{' in the symbol, but ignored first
        f"/x{q('ü')}.pdb/{ZERO_ID}/x.sym",
        f"/xul.pdb/{ZERO_ID}/x%5E.sym",
        f"/x%25.pdb/{D}/file.ptr",
    ],
)
def test_ignore_beats_invalid_characters(local, path):
    assert_download(local.get(path, status=404), 404, "ignored", body=IGNORED_BODY)
    assert_download(local.head(path, status=404), 404, "ignored", body="")


# =====================================================================================
# Step 2: allowed extensions (case-sensitive endswith)
# =====================================================================================
@pytest.mark.parametrize(
    "filename",
    ["XUL.SYM", "xul.Sym", "xul.pdb", "xul.dll", "xul.exe", "xul.xxx", "xul.sym.bak", "xul", "sym"],
)
def test_extension_not_allowed(local, filename):
    put_file(local.dir, f"v1/xul.pdb/{D}/{filename}")  # present, never looked up
    r = local.get(f"/xul.pdb/{D}/{filename}", status=404)
    assert_download(r, 404, "extension-not-allowed", body=IGNORED_BODY)
    r = local.head(f"/xul.pdb/{D}/{filename}", status=404)
    assert_download(r, 404, "extension-not-allowed", body="")


@pytest.mark.parametrize(
    "path", [f"/x%7B.pdb/{D}/x.pdb", f"/x{q('ü')}.pdb/{D}/x.exe", f"/xul.pdb/{D}/x%7C.dll"]
)
def test_extension_beats_invalid_characters(local, path):
    assert_download(local.get(path, status=404), 404, "extension-not-allowed", body=IGNORED_BODY)


@pytest.mark.parametrize("ext", ALLOWED_EXTENSIONS)
def test_every_default_extension_is_allowed(local, ext):
    put_file(local.dir, f"v1/xul.pdb/{D}/xul{ext}", b"data" + ext.encode())
    r = local.get(f"/xul.pdb/{D}/xul{ext}", status=302)
    assert_download(r, 302, "found", body="")
    f = local.get(files_path(r.headers["Location"]), status=200)
    assert f.body == b"data" + ext.encode()
    assert_download(local.get(f"/xul.pdb/{D}/other{ext}", status=404), 404, "not-found", body=NOT_FOUND_BODY)


# =====================================================================================
# Step 3: invalid characters in symbol or filename
# =====================================================================================
INVALID_CHARS = list("\\^`><{}[]#%\"'~|") + [
    "\x00", "\x01", "\x09", "\x0a", "\x0d", "\x1b", "\x1f",
    "\x80", "\x9f", "\xa0", "\xe9", "ü", "\xff",
]


@pytest.mark.parametrize("char", INVALID_CHARS, ids=[f"U+{ord(c):04X}" for c in INVALID_CHARS])
@pytest.mark.parametrize("where", ["symbol", "filename"])
def test_invalid_name_characters(local, char, where):
    symbol, filename = "xul.pdb", "xul.sym"
    if where == "symbol":
        symbol = f"x{char}ul.pdb"
    else:
        filename = f"x{char}ul.sym"
    for path in (f"/{q(symbol)}/{D}/{q(filename)}", f"/try/{q(symbol)}/{D}/{q(filename)}"):
        r = local.get(path, status=400)
        assert_download(r, 400, "invalid-name", body=INVALID_NAME_BODY, cache="no-store")
        r = local.head(path, status=400)
        assert_download(r, 400, "invalid-name", body="", cache="no-store")


ALLOWED_ODD = ["汉", "⚡️", " ", "+", "\x7f", "\u0100", "@", "!", "$", "(", ")", "=", ";", ",", "&", "*", ":"]


@pytest.mark.parametrize("char", ALLOWED_ODD, ids=[f"U+{ord(c[0]):04X}" for c in ALLOWED_ODD])
def test_allowed_characters_reach_storage(local, char):
    symbol, filename = f"x{char}.pdb", f"y{char}.sym"
    path = f"/{q(symbol)}/{D}/{q(filename)}"
    r = local.get(path, status=404)
    assert_download(r, 404, "not-found", body=NOT_FOUND_BODY)
    put_file(local.dir, f"v1/{symbol}/{D}/{filename}", b"odd " + char.encode())
    r = local.get(path, status=302)
    assert_download(r, 302, "found", body="")
    assert r.headers["Location"] == f"{HOST}/__files__/0/v1/{q(symbol)}/{D}/{q(filename)}"
    assert local.get(files_path(r.headers["Location"]), status=200).body == b"odd " + char.encode()
    assert_download(local.head(path, status=200), 200, "found", body="")


# =====================================================================================
# Step 4/5: found, not found, query validation
# =====================================================================================
def test_found_get_302_head_200_empty(local):
    put_file(local.dir, f"v1/xul.pdb/{D}/xul.sym", b"MODULE xul\n")
    r = local.get(f"/xul.pdb/{D}/xul.sym", status=302)
    assert_download(r, 302, "found", body="", cache="max-age=0")
    assert r.headers["Location"] == f"{HOST}/__files__/0/v1/xul.pdb/{D}/xul.sym"
    r = local.head(f"/xul.pdb/{D}/xul.sym", status=200)
    assert_download(r, 200, "found", body="", cache="max-age=0")
    assert "Location" not in r.headers


def test_not_found_get_and_head(local):
    r = local.get(f"/xul.pdb/{D}/xul.sym", status=404)
    assert_download(r, 404, "not-found", body=NOT_FOUND_BODY)
    assert r.headers["Content-Type"] == TEXT
    r = local.head(f"/xul.pdb/{D}/xul.sym", status=404)
    assert_download(r, 404, "not-found", body="")


BAD_QUERY_VALUES = [
    ("%FF", "Invalid characters are not allowed."),
    ("%C3%28", "Invalid characters are not allowed."),
    ("abc%E6%B1", "Invalid characters are not allowed."),
    ("%ED%A0%80", "Invalid characters are not allowed."),  # an encoded surrogate is not UTF-8
    ("%00", "Null characters are not allowed."),
    ("xul%00.dll", "Null characters are not allowed."),
    ("%01", "Control characters are not allowed."),
    ("%09", "Control characters are not allowed."),
    ("a%0Ab", "Control characters are not allowed."),
    ("%1F", "Control characters are not allowed."),
    ("%7F", "Control characters are not allowed."),
    ("%7f", "Control characters are not allowed."),
]


@pytest.mark.parametrize("field", ["code_file", "code_id"])
@pytest.mark.parametrize("value,message", BAD_QUERY_VALUES)
def test_query_validation(local, db, field, value, message):
    r = local.get(f"/xul.pdb/{D}/xul.sym?{field}={value}", status=400)
    assert_download(r, 400, "invalid-query", body=f"{field}: {message}", cache="no-store")
    r = local.get(f"/xul.pdb/{D}/xul.sym?{field}={value}", headers={"Debug": "true"}, status=400)
    assert_download(r, 400, "invalid-query", body=f"{field}: {message}", cache="no-store", debug="positive")
    # HEAD: 404, no validation.
    r = local.head(f"/xul.pdb/{D}/xul.sym?{field}={value}", status=404)
    assert_download(r, 404, "not-found", body="")
    # Found: 302, no validation.
    put_file(local.dir, f"v1/xul.pdb/{D}/xul.sym")
    r = local.get(f"/xul.pdb/{D}/xul.sym?{field}={value}", status=302)
    assert_download(r, 302, "found", body="")
    assert local.registry.missing.wait_idle()
    assert count_missing(db) == 0


@pytest.mark.parametrize(
    "query",
    [
        "code_file=%EF%BF%BD&code_id=%EF%BF%BD",  # a correctly encoded U+FFFD is an ordinary character
        "code_file=xul.dll&code_id=5F3A1B2C8A000",
        "code_file=&code_id=",
        "code_file",
        "code_file=a+b&code_id=+",  # '+' is a space, not a control character
        "code_file=%E6%B1%89.dll",
        "code_file=%00&code_file=ok",  # the last value wins
        "code_id=%FF&code_id=",  # an empty last value is the same as absent
        "other=%FF&%FF=%00",  # unknown parameters are not validated
        "code_file=%F0%9F%98%80&_refresh",
    ],
)
def test_query_valid(local, query):
    r = local.get(f"/xul.pdb/{D}/xul.sym?{query}", status=404)
    assert_download(r, 404, "not-found", body=NOT_FOUND_BODY)


def test_query_last_value_wins_and_code_file_first(local):
    r = local.get(f"/xul.pdb/{D}/xul.sym?code_file=ok&code_file=%00", status=400)
    assert r.text == "code_file: Null characters are not allowed."
    r = local.get(f"/xul.pdb/{D}/xul.sym?code_file=%01&code_id=%FF", status=400)
    assert r.text == "code_file: Control characters are not allowed."
    r = local.get(f"/xul.pdb/{D}/xul.sym?code_file=ok&code_id=%FF", status=400)
    assert r.text == "code_id: Invalid characters are not allowed."


def test_miss_recorded_verbatim_and_only_for_valid_get(local, db):
    local.get(f"/xul.pdb/{D.lower()}/xul.sym?code_file=+xul.dll+&code_id=", status=404)
    local.head(f"/xul.pdb/{D}/head.sym", status=404)
    local.get(f"/xul.pdb/{D}/bad.sym?code_id=%00", status=400)
    local.get(f"/xul.pdb/{D}/file.ptr", status=404)
    local.get(f"/xul.pdb/{D}/xul.exe", status=404)
    local.get(f"/x%7B.pdb/{D}/xul.sym", status=400)
    assert local.registry.missing.wait_idle()
    engine = db.engine()
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT symbol, debugid, filename, code_file, code_id, count FROM missing_symbol")
            ).all()
    finally:
        engine.dispose()
    assert [tuple(r) for r in rows] == [("xul.pdb", D.lower(), "xul.sym", " xul.dll ", None, 1)]


# =====================================================================================
# Headers: Debug / Debug-Time, CORS, Cache-Control, cookies
# =====================================================================================
@pytest.mark.parametrize("value", ["1", "true", "TRUE", "True", "tRuE", "yes", "YES", "Yes"])
def test_debug_time_values(local, value):
    h = {"Debug": value}
    put_file(local.dir, f"v1/xul.pdb/{D}/xul.sym")
    # Steps 1-3: exactly 0.0.
    assert_download(local.get(f"/xul.pdb/{D}/file.ptr", headers=h, status=404), 404, "ignored", debug="zero")
    assert_download(local.head(f"/xul.pdb/{D}/file.ptr", headers=h, status=404), 404, "ignored", debug="zero")
    assert_download(
        local.get(f"/xul.pdb/{D}/xul.exe", headers=h, status=404), 404, "extension-not-allowed", debug="zero"
    )
    assert_download(
        local.get(f"/x%7C.pdb/{D}/xul.sym", headers=h, status=400), 400, "invalid-name", debug="zero"
    )
    assert_download(
        local.head(f"/x%7C.pdb/{D}/xul.sym", headers=h, status=400), 400, "invalid-name", debug="zero"
    )
    # Step 4/5: the time spent, > 0.
    for method, name, status, lookup in [
        ("GET", "xul.sym", 302, "found"),
        ("HEAD", "xul.sym", 200, "found"),
        ("GET", "nope.sym", 404, "not-found"),
        ("HEAD", "nope.sym", 404, "not-found"),
    ]:
        r = local.request(f"/xul.pdb/{D}/{name}", method=method, headers=h, expect_errors=True)
        assert_download(r, status, lookup, debug="positive")


@pytest.mark.parametrize("value", ["0", "on", "false", "no", "", "2", "y", "true1", " "])
def test_debug_other_values_add_nothing(local, value):
    put_file(local.dir, f"v1/xul.pdb/{D}/xul.sym")
    h = {"Debug": value}
    assert_download(local.get(f"/xul.pdb/{D}/xul.sym", headers=h, status=302), 302, "found")
    assert_download(local.get(f"/xul.pdb/{D}/file.ptr", headers=h, status=404), 404, "ignored")
    assert_download(local.get(f"/xul.pdb/{D}/nope.sym", headers=h, status=404), 404, "not-found")


def test_debug_time_on_in_process_cache_hit(make_app, s3):
    s3.put(PRIVATE_BUCKET, f"v1/xul.pdb/{D}/xul.sym")
    app = make_app(symbol_urls=s3.url(PRIVATE_BUCKET))
    app.get(f"/xul.pdb/{D}/xul.sym", status=302)
    app.get(f"/xul.pdb/{D}/nope.sym", status=404)
    for _ in range(3):  # cache hits: still > 0 (repr of a float, never rounded to 0)
        r = app.get(f"/xul.pdb/{D}/xul.sym", headers={"Debug": "1"}, status=302)
        assert_download(r, 302, "found", cache="no-store", debug="positive")
        r = app.get(f"/xul.pdb/{D}/nope.sym", headers={"Debug": "1"}, status=404)
        assert_download(r, 404, "not-found", debug="positive")


def test_no_cookie_even_with_cookies_sent(local):
    put_file(local.dir, f"v1/xul.pdb/{D}/xul.sym")
    h = {"Cookie": "session=abc; csrf=def"}
    for path, status, head_status in [
        (f"/xul.pdb/{D}/xul.sym", 302, 200),
        (f"/xul.pdb/{D}/nope.sym", 404, 404),
        (f"/xul.pdb/{D}/file.ptr", 404, 404),
        (f"/x%5E.pdb/{D}/x.sym", 400, 400),
        (f"/xul.pdb/{D}/x.sym?code_id=%00", 400, 404),
    ]:
        assert_no_cookie(local.get(path, headers=h, status=status))
        assert_no_cookie(local.head(path, headers=h, status=head_status))
    assert_no_cookie(local.post(f"/xul.pdb/{D}/xul.sym", headers=h, status=405))
    assert_no_cookie(local.get(f"/xul.pdb/{D}/xul.sym/", headers=h, status=404))


# =====================================================================================
# Path shape: the JSON 404, whatever the method
# =====================================================================================
BAD_SHAPES = [
    (f"/xul.pdb/{D}/xul.sym/", f"/xul.pdb/{D}/xul.sym/"),
    (f"/xul.pdb//{D}/xul.sym", f"/xul.pdb//{D}/xul.sym"),
    (f"/xul.pdb/{D}//xul.sym", f"/xul.pdb/{D}//xul.sym"),
    (f"/try/xul.pdb/{D}/xul.sym/", f"/try/xul.pdb/{D}/xul.sym/"),
    (f"/try//xul.pdb/{D}/xul.sym", f"/try//xul.pdb/{D}/xul.sym"),
    (f"/./{D}/xul.sym", f"/./{D}/xul.sym"),
    (f"/xul.pdb/{D}/.", f"/xul.pdb/{D}/."),
    (f"/xul.pdb/{D}/..", f"/xul.pdb/{D}/.."),
    (f"/../{D}/xul.sym", f"/../{D}/xul.sym"),
    (f"/xul.pdb/../{D}/xul.sym", f"/xul.pdb/../{D}/xul.sym"),
    (f"/try/../xul.pdb/{D}/xul.sym", f"/try/../xul.pdb/{D}/xul.sym"),
    (f"/xul.pdb/%2E%2E/{D}/xul.sym", f"/xul.pdb/../{D}/xul.sym"),
    (f"/%2E/{D}/xul.sym", f"/./{D}/xul.sym"),
    (f"/@@view/{D}/xul.sym", f"/@@view/{D}/xul.sym"),
    (f"/xul.pdb/{D}/@@xul.sym", f"/xul.pdb/{D}/@@xul.sym"),
    (f"/try/@@x/{D}/xul.sym", f"/try/@@x/{D}/xul.sym"),
    (f"/TRY/xul.pdb/{D}/xul.sym", f"/TRY/xul.pdb/{D}/xul.sym"),
    (f"/Try/xul.pdb/{D}/xul.sym", f"/Try/xul.pdb/{D}/xul.sym"),
    (f"/try/{D}/xul.sym", f"/try/{D}/xul.sym"),
    (f"/xul.pdb/{D}", f"/xul.pdb/{D}"),
    ("/xul.pdb", "/xul.pdb"),
    (f"/a/b/{D}/xul.sym", f"/a/b/{D}/xul.sym"),
    (f"/xul.pdb/{D}/xul.sym/extra", f"/xul.pdb/{D}/xul.sym/extra"),
    (f"/try/a/xul.pdb/{D}/xul.sym", f"/try/a/xul.pdb/{D}/xul.sym"),
    (f"/try/try/try/{D}/xul.sym", f"/try/try/try/{D}/xul.sym"),
    (f"/firefox/xul.pdb/{D}/xul.sym", f"/firefox/xul.pdb/{D}/xul.sym"),
    (f"/thunderbird/xul.pdb/{D}/xul.sym", f"/thunderbird/xul.pdb/{D}/xul.sym"),
    ("/xul.pdb/XYZ/xul.sym", "/xul.pdb/XYZ/xul.sym"),
    (f"/xul.pdb/{D}-1/xul.sym", f"/xul.pdb/{D}-1/xul.sym"),
    ("/xul.pdb/0x1A/xul.sym", "/xul.pdb/0x1A/xul.sym"),
    ("/xul.pdb/%20ABC/xul.sym", "/xul.pdb/ ABC/xul.sym"),
    ("/xul.pdb/try/xul.sym", "/xul.pdb/try/xul.sym"),
    ("/try/xul.pdb/G1/xul.sym", "/try/xul.pdb/G1/xul.sym"),
    (f"/xul.pdb%2Fx/{D}/xul.sym", f"/xul.pdb/x/{D}/xul.sym"),
    (f"/xul.pdb/{D}/a%2Fb.sym", f"/xul.pdb/{D}/a/b.sym"),
    (f"/{q('汉')}/{q('⚡️')}/x.sym", "/汉/⚡️/x.sym"),
    ("/favicon.ico", "/favicon.ico"),
    ("/robots.txt", "/robots.txt"),
]


@pytest.mark.parametrize("url,path", BAD_SHAPES, ids=[p for _u, p in BAD_SHAPES])
def test_bad_shape_json_404_any_method(local, url, path):
    # Even when a file that normalisation could reach exists.
    put_file(local.dir, f"v1/xul.pdb/{D}/xul.sym")
    for method in ALL_METHODS:
        r = local.request(url, method=method, expect_errors=True, headers={"Debug": "1"})
        assert_json_404(r, path, head=method == "HEAD")


RESERVED = [
    "__heartbeat__",
    "__lbheartbeat__",
    "__version__",
    "__files__",
    "metrics",
    "missingsymbols",
    "missingsymbols.csv",
    "upload",
]


@pytest.mark.parametrize("name", RESERVED)
def test_reserved_first_segment_is_never_a_download(make_app, symbols_dir, name):
    # The key exists in the local directory; a second location refuses connections,
    # so reaching storage would answer found or 503: neither may happen.
    put_file(symbols_dir, f"v1/{name}/ABC/x.sym")
    refused = f"http://127.0.0.1:{closed_port()}/tecken-private"
    for urls in (str(symbols_dir), refused):
        app = make_app(symbol_urls=urls)
        for method in ALL_METHODS:
            r = app.request(f"/{name}/ABC/x.sym", method=method, expect_errors=True)
            assert_json_404(r, f"/{name}/ABC/x.sym", head=method == "HEAD")
        r = app.get(f"/{name}/ABC/x.sym?try", expect_errors=True)
        assert_json_404(r, f"/{name}/ABC/x.sym")


def test_admin_is_an_html_404_never_a_download(make_app, symbols_dir):
    put_file(symbols_dir, "v1/admin/ABC/x.sym")
    app = make_app(symbol_urls=str(symbols_dir))
    for method in ("GET", "HEAD"):
        r = app.request("/admin/ABC/x.sym", method=method, expect_errors=True)
        assert r.status_int == 404
        assert r.headers["Content-Type"].startswith("text/html")
        assert "X-Symbol-Lookup" not in r.headers
        assert "Access-Control-Allow-Origin" not in r.headers
        assert "Location" not in r.headers
    refused = make_app(symbol_urls=f"http://127.0.0.1:{closed_port()}/tecken-private")
    assert refused.get("/admin/ABC/x.sym", expect_errors=True).status_int == 404


def test_files_without_local_location_is_json_404(make_app, s3):
    app = make_app(symbol_urls=s3.url(PRIVATE_BUCKET))
    path = "/__files__/0/v1/x.pdb/ABC/x.sym"
    assert_json_404(app.get(path, expect_errors=True), path)


def test_reserved_names_are_symbols_under_try(local):
    # Only the first segment is reserved: /try/metrics/... is symbol "metrics".
    put_file(local.dir, "v1/metrics/ABC/x.sym")
    r = local.get("/try/metrics/ABC/x.sym", status=302)
    assert_download(r, 302, "found")
    assert r.headers["Location"] == f"{HOST}/__files__/0/v1/metrics/ABC/x.sym"


def test_symbol_named_try(local):
    put_file(local.dir, f"v1/try/{D}/f.sym", b"try symbol")
    r = local.get(f"/try/try/{D}/f.sym", status=302)
    assert_download(r, 302, "found")
    assert r.headers["Location"] == f"{HOST}/__files__/0/v1/try/{D}/f.sym"
    assert local.get(files_path(r.headers["Location"])).body == b"try symbol"
    # ...also found in the try location (DIR/try) when only there.
    put_file(local.dir / "try", f"v1/try/{D}/g.sym", b"in try")
    r = local.get(f"/try/try/{D}/g.sym", status=302)
    assert r.headers["Location"] == f"{HOST}/__files__/try/v1/try/{D}/g.sym"
    assert_json_404(local.get(f"/try/{D}/f.sym", status=404), f"/try/{D}/f.sym")


# =====================================================================================
# Methods: 405 on download paths, without the download headers
# =====================================================================================
@pytest.mark.parametrize(
    "url,path",
    [
        (f"/xul.pdb/{D}/xul.sym", f"/xul.pdb/{D}/xul.sym"),
        (f"/try/xul.pdb/{D}/xul.sym", f"/try/xul.pdb/{D}/xul.sym"),
        (f"/xul.pdb/{D}/file.ptr", f"/xul.pdb/{D}/file.ptr"),
        (f"/xul.pdb/{D}/xul.exe", f"/xul.pdb/{D}/xul.exe"),
        (f"/x%7B.pdb/{D}/xul.sym", f"/x{{.pdb/{D}/xul.sym"),
        (f"/{q('汉 +')}.pdb/{D.lower()}/xul.sym?code_file=%00", f"/汉 +.pdb/{D.lower()}/xul.sym"),
        (f"/try/try/{D}/xul.sym", f"/try/try/{D}/xul.sym"),
    ],
)
@pytest.mark.parametrize("method", [*OTHER_METHODS, "PROPFIND", "TRACE", "FOO"])
@pytest.mark.filterwarnings("ignore:Unknown REQUEST_METHOD")
def test_405(local, url, path, method):
    put_file(local.dir, f"v1/xul.pdb/{D}/xul.sym")
    headers = {"Debug": "true", "Origin": "https://x"}
    r = local.request(url, method=method, expect_errors=True, headers=headers)
    assert_405(r, method, path)


def test_405_with_body(local):
    r = local.post(f"/xul.pdb/{D}/xul.sym", params=b"x" * 1000, content_type="application/octet-stream",
                   expect_errors=True)
    assert_405(r, "POST", f"/xul.pdb/{D}/xul.sym")


# =====================================================================================
# Try: the try location is consulted last, for /try/ and ?try
# =====================================================================================
def test_try_ordering_s3_explicit_try_location(make_app, s3):
    app = make_app(symbol_urls=s3.url(PRIVATE_BUCKET), try_symbol_url=s3.url(TRY_BUCKET))
    key = f"v1/xul.pdb/{D}/xul.sym"
    s3.put(TRY_BUCKET, key, b"from try")
    # Not in the regular locations: a plain request does not look at try.
    assert_download(app.get(f"/xul.pdb/{D}/xul.sym", status=404), 404, "not-found", body=NOT_FOUND_BODY)
    assert_download(app.head(f"/xul.pdb/{D}/xul.sym", status=404), 404, "not-found")
    for url in (
        f"/try/xul.pdb/{D}/xul.sym",
        f"/xul.pdb/{D}/xul.sym?try",
        f"/xul.pdb/{D}/xul.sym?try=",
        f"/xul.pdb/{D}/xul.sym?try=0",
        f"/xul.pdb/{D}/xul.sym?try=false",
        f"/xul.pdb/{D}/xul.sym?code_file=x&try=%FF",
        f"/try/xul.pdb/{D.lower()}/xul.sym?try",
    ):
        r = app.get(url, status=302)
        assert_download(r, 302, "found", cache="no-store")
        assert r.headers["Location"].startswith(f"{s3.endpoint}/{TRY_BUCKET}/{key}?")
        assert requests.get(r.headers["Location"], timeout=10).content == b"from try"
        assert_download(app.head(url, status=200), 200, "found", body="", cache="max-age=0")
    # The regular location wins when both have the key.
    s3.put(PRIVATE_BUCKET, key, b"regular")
    r = app.get(f"/try/xul.pdb/{D}/xul.sym?_refresh", status=302)
    assert r.headers["Location"].startswith(f"{s3.endpoint}/{PRIVATE_BUCKET}/{key}?")
    assert requests.get(r.headers["Location"], timeout=10).content == b"regular"


def test_try_default_derived_private_with_prefix(make_app, s3):
    app = make_app(symbol_urls=s3.url(PRIVATE_BUCKET, "pfx"))
    s3.put(PRIVATE_BUCKET, f"try/pfx/v1/xul.pdb/{D}/xul.sym", b"derived try")
    assert_download(app.get(f"/xul.pdb/{D}/xul.sym", status=404), 404, "not-found")
    r = app.get(f"/try/xul.pdb/{D}/xul.sym", status=302)
    assert r.headers["Location"].startswith(f"{s3.endpoint}/{PRIVATE_BUCKET}/try/pfx/v1/xul.pdb/{D}/xul.sym?")
    assert requests.get(r.headers["Location"], timeout=10).content == b"derived try"
    s3.put(PRIVATE_BUCKET, f"pfx/v1/xul.pdb/{D}/xul.sym", b"regular")
    r = app.get(f"/xul.pdb/{D}/xul.sym?try&_refresh", status=302)
    assert r.headers["Location"].startswith(f"{s3.endpoint}/{PRIVATE_BUCKET}/pfx/v1/xul.pdb/{D}/xul.sym?")


def test_try_default_derived_public(make_app, s3):
    app = make_app(symbol_urls=s3.url(PUBLIC_BUCKET, public=True))
    put_public(s3, f"try/v1/xul.pdb/{D}/xul.sym", b"public try")
    assert_download(app.get(f"/xul.pdb/{D}/xul.sym", status=404), 404, "not-found")
    r = app.get(f"/try/xul.pdb/{D}/xul.sym", status=302)
    assert_download(r, 302, "found", cache="max-age=0")
    assert r.headers["Location"] == f"{s3.endpoint}/{PUBLIC_BUCKET}/try/v1/xul.pdb/{D}/xul.sym"
    assert requests.get(r.headers["Location"], timeout=10).content == b"public try"


def test_try_local_directory(local):
    put_file(local.dir / "try", f"v1/xul.pdb/{D}/xul.sym", b"local try")
    assert_download(local.get(f"/xul.pdb/{D}/xul.sym", status=404), 404, "not-found")
    for url in (f"/try/xul.pdb/{D}/xul.sym", f"/xul.pdb/{D}/xul.sym?try"):
        r = local.get(url, status=302)
        assert_download(r, 302, "found", cache="max-age=0")
        assert r.headers["Location"] == f"{HOST}/__files__/try/v1/xul.pdb/{D}/xul.sym"
        f = local.get(files_path(r.headers["Location"]), status=200)
        assert f.body == b"local try"
    put_file(local.dir, f"v1/xul.pdb/{D}/xul.sym", b"regular")
    r = local.get(f"/try/xul.pdb/{D}/xul.sym", status=302)
    assert r.headers["Location"] == f"{HOST}/__files__/0/v1/xul.pdb/{D}/xul.sym"


def test_locations_in_order(make_app, tmp_path, s3):
    a, b = tmp_path / "a", tmp_path / "b"
    app = make_app(symbol_urls=f"{a},{b},{s3.url(PUBLIC_BUCKET, public=True)}")
    put_public(s3, f"v1/xul.pdb/{D}/xul.sym", b"public")
    r = app.get(f"/xul.pdb/{D}/xul.sym", status=302)
    assert r.headers["Location"] == f"{s3.endpoint}/{PUBLIC_BUCKET}/v1/xul.pdb/{D}/xul.sym"
    put_file(b, f"v1/xul.pdb/{D}/xul.sym", b"b")
    r = app.get(f"/xul.pdb/{D}/xul.sym", status=302)  # local directories are not cached
    assert r.headers["Location"] == f"{HOST}/__files__/1/v1/xul.pdb/{D}/xul.sym"
    assert app.get(files_path(r.headers["Location"])).body == b"b"
    put_file(a, f"v1/xul.pdb/{D}/xul.sym", b"a")
    r = app.get(f"/xul.pdb/{D}/xul.sym", status=302)
    assert r.headers["Location"] == f"{HOST}/__files__/0/v1/xul.pdb/{D}/xul.sym"
    assert app.get(files_path(r.headers["Location"])).body == b"a"
    # The derived try location of a local first location is a/try.
    put_file(a / "try", f"v1/xul.pdb/{D}/t.sym", b"t")
    r = app.get(f"/xul.pdb/{D}/t.sym?try", status=302)
    assert r.headers["Location"] == f"{HOST}/__files__/try/v1/xul.pdb/{D}/t.sym"


# =====================================================================================
# Keys and Location headers
# =====================================================================================
def test_lower_case_debug_id_looks_up_upper_cased_key(make_app, s3):
    s3.put(PRIVATE_BUCKET, f"v1/xul.pdb/{D}/xul.sym", b"upper")
    app = make_app(symbol_urls=s3.url(PRIVATE_BUCKET))
    for debugid in (D.lower(), D, D[:10].lower() + D[10:]):
        r = app.get(f"/xul.pdb/{debugid}/xul.sym?_refresh", status=302)
        assert r.headers["Location"].startswith(f"{s3.endpoint}/{PRIVATE_BUCKET}/v1/xul.pdb/{D}/xul.sym?")
        assert_download(app.head(f"/xul.pdb/{debugid}/xul.sym", status=200), 200, "found")
    # Symbol and filename are case-sensitive.
    assert_download(app.get(f"/XUL.PDB/{D}/xul.sym", status=404), 404, "not-found")
    assert_download(app.get(f"/xul.pdb/{D}/Xul.sym", status=404), 404, "not-found")


def test_private_presigned_location(make_app, s3):
    s3.put(PRIVATE_BUCKET, f"pfx/v1/xul.pdb/{D}/xul.sym", b"MODULE private\n")
    app = make_app(symbol_urls=s3.url(PRIVATE_BUCKET, "pfx"), presigned_url_expires="120")
    r = app.get(f"/xul.pdb/{D.lower()}/xul.sym", status=302)
    assert_download(r, 302, "found", body="", cache="no-store")
    location = r.headers["Location"]
    assert location.startswith(f"{s3.endpoint}/{PRIVATE_BUCKET}/pfx/v1/xul.pdb/{D}/xul.sym?")
    assert "X-Amz-Signature=" in location
    assert "X-Amz-Expires=120" in location
    assert requests.get(location, timeout=10).content == b"MODULE private\n"
    with urllib.request.urlopen(location, timeout=10) as f:
        assert f.read() == b"MODULE private\n"
    # HEAD: 200, not a redirect, so max-age=0.
    assert_download(app.head(f"/xul.pdb/{D}/xul.sym", status=200), 200, "found", body="", cache="max-age=0")
    # Unsigned, the object is not readable: the signature is what grants access.
    assert requests.get(location.split("?")[0], timeout=10).status_code == 403


@pytest.mark.parametrize(
    "filename,encoded",
    [
        ("x +汉.sym", "x%20%2B%E6%B1%89.sym"),
        ("a+b.sym", "a%2Bb.sym"),
        ("with space.sym", "with%20space.sym"),
        ("ā⚡️.sym", "%C4%81%E2%9A%A1%EF%B8%8F.sym"),
        ("x&y=z;,$@!().sym", None),
        ("del\x7f.sym", "del%7F.sym"),
    ],
)
def test_public_location_percent_encoded(make_app, s3, filename, encoded):
    body = b"public " + filename.encode("utf-8")
    put_public(s3, f"v1/xul.pdb/{D}/{filename}", body)
    app = make_app(symbol_urls=s3.url(PUBLIC_BUCKET, public=True))
    r = app.get(f"/xul.pdb/{D.lower()}/{q(filename)}", status=302)
    assert_download(r, 302, "found", body="", cache="max-age=0")
    location = r.headers["Location"]
    assert location.isascii()
    assert "+" not in location and " " not in location
    if encoded is not None:
        assert location == f"{s3.endpoint}/{PUBLIC_BUCKET}/v1/xul.pdb/{D}/{encoded}"
    got = requests.get(location, timeout=10)
    assert got.status_code == 200
    assert got.content == body
    assert_download(app.head(f"/xul.pdb/{D}/{q(filename)}", status=200), 200, "found", body="")


def test_400_character_filename_public_through_memcached(make_app, s3, memcached_clean):
    filename = "a" * 200 + "汉" * 10 + "b" * 186 + ".sym"
    assert len(filename) == 400
    body = b"long name"
    put_public(s3, f"v1/xul.pdb/{D}/{filename}", body)
    app = make_app(symbol_urls=s3.url(PUBLIC_BUCKET, public=True), memcached_servers=memcached_clean.address)
    r = app.get(f"/xul.pdb/{D}/{q(filename)}", status=302)
    assert_download(r, 302, "found", cache="max-age=0")
    location = r.headers["Location"]
    assert location == f"{s3.endpoint}/{PUBLIC_BUCKET}/v1/xul.pdb/{D}/{q(filename)}"
    assert location.isascii()
    assert requests.get(location, timeout=10).content == body
    # Served from memcached now: the object can go away.
    s3.delete(PUBLIC_BUCKET, f"v1/xul.pdb/{D}/{filename}")
    r = app.get(f"/xul.pdb/{D}/{q(filename)}", status=302)
    assert r.headers["Location"] == location
    assert_download(app.head(f"/xul.pdb/{D}/{q(filename)}", status=200), 200, "found")
    # Not-found for long names is cached as well.
    missing = "m" * 396 + ".sym"
    assert app.get(f"/xul.pdb/{D}/{missing}", status=404)
    put_public(s3, f"v1/xul.pdb/{D}/{missing}")
    assert app.get(f"/xul.pdb/{D}/{missing}", status=404)
    assert app.get(f"/xul.pdb/{D}/{missing}?_refresh", status=302)


def test_400_character_filename_private_and_local(make_app, s3, symbols_dir, memcached_clean):
    filename = "p" * 396 + ".sym"
    s3.put(PRIVATE_BUCKET, f"v1/xul.pdb/{D}/{filename}", b"private long")
    app = make_app(symbol_urls=s3.url(PRIVATE_BUCKET), memcached_servers=memcached_clean.address)
    r = app.get(f"/xul.pdb/{D}/{filename}", status=302)
    assert requests.get(r.headers["Location"], timeout=10).content == b"private long"
    s3.delete(PRIVATE_BUCKET, f"v1/xul.pdb/{D}/{filename}")
    assert app.get(f"/xul.pdb/{D}/{filename}", status=302)
    # A local file system limits a name to 255 bytes: simply not found, never a 5xx.
    local = make_app(symbol_urls=str(symbols_dir))
    assert_download(local.get(f"/xul.pdb/{D}/{filename}", status=404), 404, "not-found")


def test_location_ascii_with_non_ascii_host(make_app, symbols_dir, serve):
    # A Host that is not a valid host[:port] cannot shape a local-directory redirect:
    # 400, no Location (issue 6 item 10; urls.py). A valid Host gives an ASCII Location.
    put_file(symbols_dir, f"v1/{'汉'}.pdb/{D}/x.sym")
    app = make_app(symbol_urls=str(symbols_dir))
    served = serve(app)
    for host in ("sym\xe9.example".encode("latin-1"), "symé.example".encode("utf-8")):
        r = raw_request(served.port, "GET", f"/{q('汉')}.pdb/{D}/x.sym", host=host)
        assert r.status_int == 400
        assert "Location" not in r.headers
    r = raw_request(served.port, "GET", f"/{q('汉')}.pdb/{D}/x.sym", host=b"symbols.example.com")
    assert r.status_int == 302
    assert r.headers["Location"] == f"http://symbols.example.com/__files__/0/v1/%E6%B1%89.pdb/{D}/x.sym"


# =====================================================================================
# The existence cache: memcached, ?_refresh, invalidate, in-process
# =====================================================================================
@pytest.fixture
def cached_private(make_app, s3, memcached_clean):
    app = make_app(symbol_urls=s3.url(PRIVATE_BUCKET, "pfx"), memcached_servers=memcached_clean.address)
    app.key = f"pfx/v1/xul.pdb/{D}/xul.sym"
    app.env = {
        "TECKEN_SYMBOL_URLS": s3.url(PRIVATE_BUCKET, "pfx"),
        "TECKEN_MEMCACHED_SERVERS": memcached_clean.address,
    }
    return app


def test_found_served_from_memcached(cached_private, s3, make_app, memcached_clean):
    app = cached_private
    s3.put(PRIVATE_BUCKET, app.key)
    assert app.get(f"/xul.pdb/{D}/xul.sym", status=302)
    s3.delete(PRIVATE_BUCKET, app.key)
    r = app.get(f"/xul.pdb/{D}/xul.sym", status=302)
    assert_download(r, 302, "found", cache="no-store")
    assert_download(app.head(f"/xul.pdb/{D.lower()}/xul.sym", status=200), 200, "found")
    # Shared: another app process with the same memcached sees the entry.
    other = make_app(symbol_urls=s3.url(PRIVATE_BUCKET, "pfx"), memcached_servers=memcached_clean.address)
    assert other.get(f"/xul.pdb/{D}/xul.sym", status=302)


@pytest.mark.parametrize(
    "refresh", ["_refresh", "_refresh=", "_refresh=0", "_refresh=1", "_refresh=%FF", "x=1&_refresh"]
)
def test_refresh_skips_cache_and_writes_fresh_result(cached_private, s3, refresh):
    app = cached_private
    s3.put(PRIVATE_BUCKET, app.key)
    assert app.get(f"/xul.pdb/{D}/xul.sym", status=302)
    s3.delete(PRIVATE_BUCKET, app.key)
    assert app.get(f"/xul.pdb/{D}/xul.sym", status=302)  # cached
    r = app.get(f"/xul.pdb/{D}/xul.sym?{refresh}", status=404)
    assert_download(r, 404, "not-found", body=NOT_FOUND_BODY)
    # The fresh not-found was written: a plain request now says 404 without storage.
    s3.put(PRIVATE_BUCKET, app.key)
    assert_download(app.get(f"/xul.pdb/{D}/xul.sym", status=404), 404, "not-found")
    assert_download(app.head(f"/xul.pdb/{D}/xul.sym", status=404), 404, "not-found")
    # And a refresh finds it and writes the found.
    assert app.head(f"/xul.pdb/{D}/xul.sym?{refresh}", status=200)
    s3.delete(PRIVATE_BUCKET, app.key)
    assert app.get(f"/xul.pdb/{D}/xul.sym", status=302)


def test_negative_cache_until_invalidate(cached_private, s3, db):
    app = cached_private
    assert app.get(f"/xul.pdb/{D}/xul.sym", status=404)
    s3.put(PRIVATE_BUCKET, app.key)
    assert_download(app.get(f"/xul.pdb/{D}/xul.sym", status=404), 404, "not-found")
    assert_download(app.head(f"/xul.pdb/{D}/xul.sym", status=404), 404, "not-found")
    result = run_cli(
        "invalidate", DEVELOPMENT_INI, f"xul.pdb/{D.lower()}/xul.sym",
        env_overrides={**app.env, "TECKEN_DATABASE_URL": db.url},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "invalidated 1 keys in 2 locations\n"
    r = app.get(f"/xul.pdb/{D}/xul.sym", status=302)
    assert_download(r, 302, "found", cache="no-store")


def test_invalidate_drops_try_entries(cached_private, s3, db):
    app = cached_private
    assert app.get(f"/try/xul.pdb/{D}/xul.sym", status=404)  # both locations cached as not found
    s3.put(PRIVATE_BUCKET, f"try/{app.key}", b"try")
    assert app.get(f"/try/xul.pdb/{D}/xul.sym", status=404)
    assert app.get(f"/xul.pdb/{D}/xul.sym?try", status=404)
    result = run_cli(
        "invalidate", DEVELOPMENT_INI, f"xul.pdb/{D}/xul.sym",
        env_overrides={**app.env, "TECKEN_DATABASE_URL": db.url},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "invalidated 1 keys in 2 locations\n"
    r = app.get(f"/try/xul.pdb/{D}/xul.sym", status=302)
    assert r.headers["Location"].startswith(f"{s3.endpoint}/{PRIVATE_BUCKET}/try/pfx/v1/xul.pdb/{D}/xul.sym?")
    assert requests.get(r.headers["Location"], timeout=10).content == b"try"


def test_invalidate_several_keys_and_locations(make_app, s3, memcached_clean, db):
    urls = f"{s3.url(PRIVATE_BUCKET)},{s3.url(PUBLIC_BUCKET, public=True)}"
    app = make_app(
        symbol_urls=urls, try_symbol_url=s3.url(TRY_BUCKET), memcached_servers=memcached_clean.address
    )
    k1, k2 = f"xul.pdb/{D}/xul.sym", f"ntdll.pdb/{D}/ntdll.sym"
    for k in (k1, k2):
        assert app.get(f"/try/{k}", status=404)
    s3.put(TRY_BUCKET, f"v1/{k1}")
    put_public(s3, f"v1/{k2}")
    assert app.get(f"/try/{k1}", status=404)
    assert app.get(f"/{k2}", status=404)
    env = {
        "TECKEN_SYMBOL_URLS": urls,
        "TECKEN_TRY_SYMBOL_URL": s3.url(TRY_BUCKET),
        "TECKEN_MEMCACHED_SERVERS": memcached_clean.address,
        "TECKEN_DATABASE_URL": db.url,
    }
    result = run_cli("invalidate", DEVELOPMENT_INI, k1, k1.replace(D, D.lower()), k2, env_overrides=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "invalidated 2 keys in 3 locations\n"
    assert app.get(f"/try/{k1}", status=302).headers["Location"].startswith(f"{s3.endpoint}/{TRY_BUCKET}/")
    assert app.get(f"/{k2}", status=302).headers["Location"] == f"{s3.endpoint}/{PUBLIC_BUCKET}/v1/{k2}"


def test_invalidate_usage_errors_and_in_process(db, memcached_clean, s3):
    env = {
        "TECKEN_SYMBOL_URLS": s3.url(PRIVATE_BUCKET),
        "TECKEN_MEMCACHED_SERVERS": memcached_clean.address,
        "TECKEN_DATABASE_URL": db.url,
    }
    for bad in ("xul.pdb/xul.sym", "xul.pdb/XYZ/xul.sym", "a/b/c/d"):
        result = run_cli("invalidate", DEVELOPMENT_INI, bad, env_overrides=env)
        assert result.returncode == 2, (bad, result.stderr)
        assert "usage:" in result.stderr
        assert "Traceback" not in result.stderr
    result = run_cli(
        "invalidate",
        DEVELOPMENT_INI,
        f"xul.pdb/{D}/xul.sym",
        env_overrides={**env, "TECKEN_MEMCACHED_SERVERS": ""},
    )
    assert result.returncode == 3
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1


def test_local_directories_are_never_cached(make_app, symbols_dir, memcached_clean):
    app = make_app(symbol_urls=str(symbols_dir), memcached_servers=memcached_clean.address)
    for url in (f"/xul.pdb/{D}/xul.sym", f"/try/xul.pdb/{D}/xul.sym"):
        assert_download(app.get(url, status=404), 404, "not-found")
    path = put_file(symbols_dir, f"v1/xul.pdb/{D}/xul.sym")
    assert_download(app.get(f"/xul.pdb/{D}/xul.sym", status=302), 302, "found", cache="max-age=0")
    os.remove(path)
    assert_download(app.get(f"/xul.pdb/{D}/xul.sym", status=404), 404, "not-found")
    assert_download(app.head(f"/xul.pdb/{D}/xul.sym", status=404), 404, "not-found")
    put_file(symbols_dir / "try", f"v1/xul.pdb/{D}/xul.sym")
    assert app.get(f"/try/xul.pdb/{D}/xul.sym", status=302)


def test_in_process_cache_mode(make_app, s3):
    app = make_app(symbol_urls=s3.url(PRIVATE_BUCKET))
    key = f"v1/xul.pdb/{D}/xul.sym"
    assert not app.registry.cache.shared
    s3.put(PRIVATE_BUCKET, key)
    assert app.get(f"/xul.pdb/{D}/xul.sym", status=302)
    s3.delete(PRIVATE_BUCKET, key)
    assert_download(app.get(f"/xul.pdb/{D}/xul.sym", status=302), 302, "found", cache="no-store")
    assert_download(app.get(f"/xul.pdb/{D}/xul.sym?_refresh", status=404), 404, "not-found")
    s3.put(PRIVATE_BUCKET, key)
    assert_download(app.get(f"/xul.pdb/{D}/xul.sym", status=404), 404, "not-found")  # negative cached
    assert app.get(f"/xul.pdb/{D}/xul.sym?_refresh", status=302)
    # Another process has its own cache.
    other = make_app(symbol_urls=s3.url(PRIVATE_BUCKET))
    s3.delete(PRIVATE_BUCKET, key)
    assert other.get(f"/xul.pdb/{D}/xul.sym", status=404)
    assert app.get(f"/xul.pdb/{D}/xul.sym", status=302)


# =====================================================================================
# Local storage security and /__files__/
# =====================================================================================
def test_dot_segments_cannot_escape(make_app, tmp_path):
    symbols = tmp_path / "symbols"
    put_file(tmp_path, "secret.sym", b"SECRET")
    put_file(tmp_path, f"v1/xul.pdb/{D}/xul.sym", b"SECRET")
    app = make_app(symbol_urls=str(symbols))
    for url, path in [
        (f"/../{D}/secret.sym", f"/../{D}/secret.sym"),
        (f"/%2E%2E/{D}/secret.sym", f"/../{D}/secret.sym"),
        (f"/xul.pdb/{D}/..%2F..%2F..%2Fsecret.sym", f"/xul.pdb/{D}/../../../secret.sym"),
        (f"/xul.pdb/%2e%2e/{D}/xul.sym", f"/xul.pdb/../{D}/xul.sym"),
        (f"/try/../../{D}/x.sym", f"/try/../../{D}/x.sym"),
    ]:
        r = app.get(url, expect_errors=True)
        assert_json_404(r, path)
        assert b"SECRET" not in r.body


def test_symlink_outside_directory_is_not_found(make_app, tmp_path):
    symbols = tmp_path / "symbols"
    outside = put_file(tmp_path / "outside", "secret.sym", b"SECRET")
    inside_target = put_file(symbols, "real/xul.sym", b"INSIDE")
    link_dir = symbols / "v1" / "xul.pdb" / D
    link_dir.mkdir(parents=True)
    os.symlink(outside, link_dir / "evil.sym")
    os.symlink(inside_target, link_dir / "good.sym")
    os.symlink(tmp_path / "outside", symbols / "v1" / "evil.pdb")  # a directory link leaving DIR
    app = make_app(symbol_urls=str(symbols))
    assert_download(app.get(f"/xul.pdb/{D}/evil.sym", status=404), 404, "not-found")
    assert_download(app.head(f"/xul.pdb/{D}/evil.sym", status=404), 404, "not-found")
    r = app.get(f"/__files__/0/v1/xul.pdb/{D}/evil.sym", expect_errors=True)
    assert r.status_int == 404
    assert b"SECRET" not in r.body
    r = app.get("/__files__/0/v1/evil.pdb/secret.sym", expect_errors=True)
    assert r.status_int == 404
    assert b"SECRET" not in r.body
    # A link that stays inside DIR is a regular file inside DIR.
    r = app.get(f"/xul.pdb/{D}/good.sym", status=302)
    assert app.get(files_path(r.headers["Location"]), status=200).body == b"INSIDE"


def test_directory_is_not_a_file(local):
    (local.dir / "v1" / "xul.pdb" / D / "dir.sym").mkdir(parents=True)
    assert_download(local.get(f"/xul.pdb/{D}/dir.sym", status=404), 404, "not-found")
    assert local.get(f"/__files__/0/v1/xul.pdb/{D}/dir.sym", expect_errors=True).status_int == 404


def test_files_head_range_and_missing(local):
    body = b"0123456789abcdef"
    put_file(local.dir, f"v1/xul.pdb/{D}/xul.sym", body)
    url = f"/__files__/0/v1/xul.pdb/{D}/xul.sym"
    r = local.get(url, status=200)
    assert r.body == body
    assert r.headers["Content-Type"] == "application/octet-stream"
    assert r.headers["Content-Length"] == str(len(body))
    r = local.head(url, status=200)
    assert r.body == b""
    assert r.headers["Content-Length"] == str(len(body))
    assert r.headers["Content-Type"] == "application/octet-stream"
    r = local.get(url, headers={"Range": "bytes=2-5"}, status=206)
    assert r.body == b"2345"
    assert r.headers["Content-Range"] == f"bytes 2-5/{len(body)}"
    assert r.headers["Content-Length"] == "4"
    r = local.get(url, headers={"Range": "bytes=-3"}, status=206)
    assert r.body == b"def"
    assert r.headers["Content-Range"] == f"bytes 13-15/{len(body)}"
    r = local.get(url, headers={"Range": "bytes=10-"}, status=206)
    assert r.body == body[10:]
    for missing in (
        f"/__files__/0/v1/xul.pdb/{D}/nope.sym",
        f"/__files__/7/v1/xul.pdb/{D}/xul.sym",
        f"/__files__/x/v1/xul.pdb/{D}/xul.sym",
        "/__files__/0/",
        "/__files__/0",
    ):
        for method in ("GET", "POST", "DELETE"):
            r = local.request(missing, method=method, expect_errors=True)
            assert r.status_int == 404, (method, missing)
            assert r.headers["Content-Type"] == "application/json"
    # Other methods on a file that is served: 405.
    r = local.request(url, method="PUT", expect_errors=True)
    assert r.status_int == 405
    assert r.headers["Allow"] == "GET, HEAD"
    assert_no_cookie(local.get(url))


def test_files_serves_only_inside_directory(make_app, tmp_path, serve):
    symbols = tmp_path / "symbols"
    put_file(symbols, "v1/inside.sym", b"inside")
    put_file(tmp_path, "secret.txt", b"SECRET")
    app = make_app(symbol_urls=str(symbols))
    for url in (
        "/__files__/0/../secret.txt",
        "/__files__/0/..%2Fsecret.txt",
        "/__files__/0/%2E%2E/secret.txt",
        "/__files__/0/v1/../../secret.txt",
        "/__files__/0//etc/passwd",
        "/__files__/0/%2Fetc%2Fpasswd",
        "/__files__/try/../secret.txt",
    ):
        r = app.get(url, expect_errors=True)
        assert r.status_int == 404, url
        assert b"SECRET" not in r.body and b"root:" not in r.body
    served = serve(app)
    for target in (
        b"/__files__/0/../secret.txt",
        b"/__files__/0/../../../../etc/passwd",
        b"/__files__/0/%2e%2e/secret.txt",
    ):
        r = raw_request(served.port, "GET", target)
        assert r.status_int == 404, target
        assert b"SECRET" not in r.body and b"root:" not in r.body
    assert raw_request(served.port, "GET", "/__files__/0/v1/inside.sym").body == b"inside"


# =====================================================================================
# Rules from the database, seen by a running app within 10 s
# =====================================================================================
def _lookup(app, path):
    return app.get(path, expect_errors=True).headers.get("X-Symbol-Lookup")


def test_new_ignore_pattern_applies_without_restart(local, db):
    path = f"/xul.pdb/{D}/blocked.sym"
    assert _lookup(local, path) == "not-found"
    engine = db.engine()
    try:
        with engine.begin() as c:
            c.execute(
                text(
                    "INSERT INTO ignore_pattern (pattern, enabled, note, created_by, created_at) "
                    "VALUES (:p, :e, :n, :by, CURRENT_TIMESTAMP)"
                ),
                {"p": "*/*/blocked.sym", "e": True, "n": "test", "by": "test"},
            )
        start = time.monotonic()
        assert poll(lambda: _lookup(local, path) == "ignored", timeout=10)
        assert time.monotonic() - start < 10
        r = local.get(path, status=404)
        assert_download(r, 404, "ignored", body=IGNORED_BODY)
        assert _lookup(local, f"/try/xul.pdb/{D}/blocked.sym") == "ignored"
        # Disabled patterns are skipped.
        with engine.begin() as c:
            c.execute(text("UPDATE ignore_pattern SET enabled = :f WHERE pattern = :p"),
                      {"f": False, "p": "*/*/blocked.sym"})
        assert poll(lambda: _lookup(local, path) == "not-found", timeout=10)
    finally:
        engine.dispose()


def test_ignore_pattern_matches_debug_id_as_requested(local, db):
    engine = db.engine()
    try:
        with engine.begin() as c:
            c.execute(
                text(
                    "INSERT INTO ignore_pattern (pattern, enabled, note, created_by, created_at) "
                    "VALUES (:p, :e, '', 'test', CURRENT_TIMESTAMP)"
                ),
                {"p": "*/abc*", "e": True},  # '*' also matches '/'
            )
        assert poll(lambda: _lookup(local, "/xul.pdb/abcdef/xul.sym") == "ignored")
        assert _lookup(local, "/xul.pdb/ABCDEF/xul.sym") == "not-found"  # fnmatchcase
        assert _lookup(local, "/x.pdb/abc/z.sym") == "ignored"
    finally:
        engine.dispose()


def test_allowed_extension_removed_and_added_without_restart(local, db):
    put_file(local.dir, f"v1/xul.pdb/{D}/xul.dl_")
    assert _lookup(local, f"/xul.pdb/{D}/xul.dl_") == "found"
    assert _lookup(local, f"/xul.pdb/{D}/xul.foo") == "extension-not-allowed"
    engine = db.engine()
    try:
        with engine.begin() as c:
            c.execute(text("DELETE FROM allowed_extension WHERE extension = '.dl_'"))
            c.execute(
                text("INSERT INTO allowed_extension (extension, created_by, created_at) "
                     "VALUES ('.foo', 'test', CURRENT_TIMESTAMP)")
            )
        assert poll(lambda: _lookup(local, f"/xul.pdb/{D}/xul.dl_") == "extension-not-allowed")
        assert _lookup(local, f"/xul.pdb/{D}/xul.foo") == "not-found"
        assert _lookup(local, f"/xul.pdb/{D}/xul.FOO") == "extension-not-allowed"
    finally:
        with engine.begin() as c:
            c.execute(text("DELETE FROM allowed_extension WHERE extension IN ('.dl_', '.foo')"))
            c.execute(
                text("INSERT INTO allowed_extension (extension, created_by, created_at) "
                     "VALUES ('.dl_', 'migration', CURRENT_TIMESTAMP)")
            )
        engine.dispose()
    assert poll(lambda: _lookup(local, f"/xul.pdb/{D}/xul.dl_") == "found")


def test_empty_allow_list_allows_nothing(local, db):
    engine = db.engine()
    try:
        with engine.begin() as c:
            saved = c.execute(text("SELECT extension FROM allowed_extension")).scalars().all()
            c.execute(text("DELETE FROM allowed_extension"))
        assert poll(lambda: _lookup(local, f"/xul.pdb/{D}/xul.sym") == "extension-not-allowed")
        # The ignore patterns still come first.
        assert _lookup(local, f"/xul.pdb/{D}/file.ptr") == "ignored"
    finally:
        with engine.begin() as c:
            for ext in saved:
                c.execute(
                    text("INSERT INTO allowed_extension (extension, created_by, created_at) "
                         "VALUES (:e, 'migration', CURRENT_TIMESTAMP)"),
                    {"e": ext},
                )
        engine.dispose()
    assert poll(lambda: _lookup(local, f"/xul.pdb/{D}/xul.sym") == "not-found")


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
        "/汉.pdb/{}/x.sym".format(D).encode("utf-8"),
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
    for target in (f"/xul.pdb/{D}/x%C3%28.sym", f"/%E6%B1.pdb/{D}/x.sym", f"/%C0%AF.pdb/{D}/x.sym",
                   f"/%ED%A0%80.pdb/{D}/x.sym"):
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
    r = local.get("/", extra_environ={"PATH_INFO": "/汉.pdb/{}/x.sym".format(D).encode().decode("latin-1")},
                  expect_errors=True)
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
    for query in ("%FF=%FF", "%FF=%FE&x", "try&_refresh=%FF", "a=%", "%%%", "=&&=", "code_file=%E6%B1%89",
                  "&&&"):
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
    for target in (f"/xul%00.pdb/{D}/xul.sym", f"/xul.pdb/{D}/x%00.sym", f"/x%01.pdb/{D}/x.sym",
                   f"/x%0A.pdb/{D}/x.sym", f"/x%0D%0A.pdb/{D}/x.sym", f"/x%1B.pdb/{D}/x.sym"):
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
    r = raw_request(port, "OPTIONS", f"/xul.pdb/{D}/xul.sym", headers=[("Origin", "https://profiler.firefox.com")])
    assert_405(r, "OPTIONS", f"/xul.pdb/{D}/xul.sym")
    assert_download(raw_request(port, "GET", f"/xul.pdb/{D}/xul.sym"), 302, "found")
    assert_download(raw_request(port, "HEAD", f"/xul.pdb/{D}/xul.sym"), 200, "found")
