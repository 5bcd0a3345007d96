"""Download lookups (SPEC §2 steps 4-5, §3): found, not found, query validation,
headers, the try location, keys and Location headers.

Real components: a local directory, moto's S3 server over HTTP, a real memcached,
a migrated database, the real command line and, for raw bytes, a real waitress.
"""

import urllib.request

import pytest
import requests
from sqlalchemy import text

from tests.conftest import (
    PRIVATE_BUCKET,
    PUBLIC_BUCKET,
    TRY_BUCKET,
    put_file,
    put_public,
)
from tests.functional.download_prelude import HOST, D, count_missing, files_path
from tests.functional.download_support import (
    NOT_FOUND_BODY,
    TEXT,
    assert_download,
    assert_no_cookie,
    q,
    raw_request,
)


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
    for host in ("sym\xe9.example".encode("latin-1"), "symé.example".encode()):
        r = raw_request(served.port, "GET", f"/{q('汉')}.pdb/{D}/x.sym", host=host)
        assert r.status_int == 400
        assert "Location" not in r.headers
    r = raw_request(served.port, "GET", f"/{q('汉')}.pdb/{D}/x.sym", host=b"symbols.example.com")
    assert r.status_int == 302
    assert r.headers["Location"] == f"http://symbols.example.com/__files__/0/v1/%E6%B1%89.pdb/{D}/x.sym"
