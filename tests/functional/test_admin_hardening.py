"""Console faults found by attacking the running server (issue 6, items 5, 7, 9, 10, 11).

Crashes are HTML 500s under /admin/; undecodable input is a 400, never a 500; every
Location is ASCII and built from TECKEN_PUBLIC_URL or a validated Host; sessions
carry nothing of the password hash and end for good on logout, reset and
deactivation.
"""

import base64
import logging
import zlib

import pytest
from pyramid.config import Configurator
from sqlalchemy import select
from sqlalchemy.orm import Session

from tecken_pyramid.models import User
from tecken_pyramid.security import ADMIN, AdminRoot
from tests.conftest import create_user, login, put_file

HTML_HEADERS = ("Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy")
SECRET_TEXT = "kaboom-secret-detail-4711"
BAD_HOSTS = ["evil.com/x?", "a b", "h\r\nX: y", "h:port", "evil.com@other", "[::1", "h:99999", "é.example"]


@pytest.fixture
def app(make_app, db, symbols_dir):
    create_user(db, "admin", "correct-horse")
    return make_app(symbol_urls=str(symbols_dir))


def session_cookie(testapp):
    return testapp.cookies["tecken_session"]


def replay(testapp, cookie):
    testapp.set_cookie("tecken_session", cookie)


def csrf(testapp):
    return testapp.get("/admin/").html.find("input", {"name": "csrf_token"})["value"]


def db_user(db, username):
    engine = db.engine()
    with Session(engine) as session:
        user = session.scalars(select(User).where(User.username == username)).one()
    engine.dispose()
    return user


# -- item 5: crashes ------------------------------------------------------------------------------
def add_crashing_routes(testapp):
    """A console page and a non-console route that raise, added to the running app."""

    def crash(request):
        raise RuntimeError(SECRET_TEXT)

    config = Configurator(registry=testapp.registry)
    config.add_route("test.admin.crash", "/admin/__crash__", factory=AdminRoot)
    config.add_view(crash, route_name="test.admin.crash", permission=ADMIN)
    # /__version__/… is a reserved first segment: the path tween lets it reach routing.
    config.add_route("test.public.crash", "/__version__/__crash__")
    config.add_view(crash, route_name="test.public.crash")
    config.commit()


def test_console_crash_is_an_html_500_logged_with_traceback(app, caplog):
    add_crashing_routes(app)
    login(app, "admin", "correct-horse")
    with caplog.at_level(logging.ERROR):
        r = app.get("/admin/__crash__", status=500)
    assert r.headers["Content-Type"].startswith("text/html")
    for name in HTML_HEADERS:
        assert name in r.headers
    assert SECRET_TEXT not in r.text and "Traceback" not in r.text and "RuntimeError" not in r.text
    assert r.html.find("h1").text == "Internal Server Error"
    records = [rec for rec in caplog.records if rec.exc_info and SECRET_TEXT in str(rec.exc_info[1])]
    assert records, "the crash must be logged with its traceback"
    assert "/admin/__crash__" in records[0].getMessage()


def test_crash_outside_the_console_stays_json(app):
    add_crashing_routes(app)
    r = app.get("/__version__/__crash__", status=500)
    assert r.headers["Content-Type"] == "application/json"
    assert r.json == {"error": "Internal Server Error"}
    assert SECRET_TEXT not in r.text


# -- item 7: nothing of the password hash in the cookie --------------------------------------------
def cookie_payload(cookie):
    raw = base64.urlsafe_b64decode(cookie.strip('"') + "=" * (-len(cookie.strip('"')) % 4))
    # Pyramid's signed cookie: signature, then the serialised session (maybe compressed).
    for start in range(len(raw)):
        try:
            return zlib.decompress(raw[start:]).decode("latin-1")
        except zlib.error:
            continue
    return raw.decode("latin-1")


def test_session_cookie_carries_nothing_of_the_password_hash(app, db):
    login(app, "admin", "correct-horse")
    payload = cookie_payload(session_cookie(app))
    assert '"user_id"' in payload  # the decoding above really reads the session
    digest_and_salt = db_user(db, "admin").password_hash.rsplit("$", 2)[-2:]
    for part in digest_and_salt:
        for i in range(len(part) - 6):
            assert part[i : i + 6] not in payload, f"hash characters {part[i : i + 6]!r} in the cookie"


# -- item 11: sessions end for good -----------------------------------------------------------------
def test_cookie_captured_before_logout_is_useless_after_it(app):
    login(app, "admin", "correct-horse")
    app.get("/admin/", status=200)
    captured = session_cookie(app)
    app.post("/admin/logout", {"csrf_token": csrf(app)}, status=303)
    replay(app, captured)
    r = app.get("/admin/", status=303)
    assert "/admin/login" in r.headers["Location"]
    # Signing in again works, and the new session is not ended by the old logout.
    login(app, "admin", "correct-horse")
    app.get("/admin/", status=200)


def test_logout_ends_the_users_other_sessions_too(app, make_app, symbols_dir):
    elsewhere = make_app(symbol_urls=str(symbols_dir))
    login(elsewhere, "admin", "correct-horse")
    login(app, "admin", "correct-horse")
    app.post("/admin/logout", {"csrf_token": csrf(app)}, status=303)
    elsewhere.get("/admin/", status=303)


def test_deactivation_ends_sessions_even_after_reactivation(app, db, make_app, symbols_dir):
    create_user(db, "second", "second-password")
    other = make_app(symbol_urls=str(symbols_dir))
    login(other, "second", "second-password")
    other.get("/admin/", status=200)
    captured = session_cookie(other)
    login(app, "admin", "correct-horse")
    uid = db_user(db, "second").id
    page = app.get("/admin/users")
    page = page.forms[f"active-{uid}"].submit(status=303).follow()  # deactivate
    page.forms[f"active-{uid}"].submit(status=303)  # reactivate
    assert db_user(db, "second").is_active
    replay(other, captured)
    other.get("/admin/", status=303)


def test_password_reset_ends_earlier_cookies(app, db, make_app, symbols_dir):
    create_user(db, "second", "second-password")
    other = make_app(symbol_urls=str(symbols_dir))
    login(other, "second", "second-password")
    captured = session_cookie(other)
    login(app, "admin", "correct-horse")
    uid = db_user(db, "second").id
    form = app.get(f"/admin/users/{uid}").forms["reset-password"]
    form["password"] = "brand-new-password"
    form.submit(status=303)
    replay(other, captured)
    other.get("/admin/", status=303)


# -- item 9: undecodable and non-ASCII input ---------------------------------------------------------
CONSOLE_PAGES = [
    "/admin/",
    "/admin/audit",
    "/admin/users",
    "/admin/missing-symbols",
    "/admin/extensions",
    "/admin/patterns",
    "/admin/cache",
    "/admin/login",
]


@pytest.mark.parametrize("path", CONSOLE_PAGES)
@pytest.mark.parametrize("query", ["page=%FF", "next=%FF", "x=%C3", "%FF=1"])
def test_undecodable_query_is_a_400_page_never_a_500(app, path, query):
    login(app, "admin", "correct-horse")
    r = app.get(f"{path}?{query}", expect_errors=True)
    assert r.status_int in (200, 400), (r.status, r.text[:300])
    if r.status_int == 400:
        assert r.headers["Content-Type"].startswith("text/html")
        for name in HTML_HEADERS:
            assert name in r.headers


def test_undecodable_query_anonymous_still_no_500(app):
    app.get("/admin/users?page=%FF", status=(303, 400))
    app.get("/admin/login?next=%FF", status=(200, 400))


@pytest.mark.parametrize(
    "body",
    [
        b"username=admin&password=%FF&csrf_token=x",
        b"username=\xff\xfe&password=x",
        b"next=%E2%82&csrf_token=%FF",
    ],
)
def test_undecodable_login_body_is_a_400(app, body):
    app.get("/admin/login")
    r = app.post("/admin/login", body, content_type="application/x-www-form-urlencoded", expect_errors=True)
    assert r.status_int == 400, (r.status, r.text[:300])
    assert r.headers["Content-Type"].startswith("text/html")


@pytest.mark.parametrize(
    "content_type, body",
    [
        ("application/x-www-form-urlencoded", b"username=adm%FFin&password=correct-horse"),
        ("application/x-www-form-urlencoded", b"username=adm\xffin&password=correct-horse"),
        ("application/x-www-form-urlencoded; charset=latin-1", b"username=admin&password=correct-horse"),
    ],
)
def test_undecodable_login_body_with_a_valid_token_is_a_400(app, content_type, body):
    token = app.get("/admin/login").forms[0]["csrf_token"].value
    body = f"csrf_token={token}&".encode() + body
    r = app.post("/admin/login", body, content_type=content_type, expect_errors=True)
    assert r.status_int == 400, (r.status, r.text[:300])
    assert r.headers["Content-Type"].startswith("text/html")
    for name in HTML_HEADERS:
        assert name in r.headers
    app.get("/admin/", status=303)  # nobody signed in


def test_undecodable_console_post_is_a_400(app):
    login(app, "admin", "correct-horse")
    token = csrf(app)
    body = f"csrf_token={token}&username=%FF&password=long-enough".encode()
    r = app.post(
        "/admin/users/create", body, content_type="application/x-www-form-urlencoded", expect_errors=True
    )
    assert r.status_int == 400, (r.status, r.text[:300])


def submit_login(testapp, next_value):
    form = testapp.get("/admin/login").forms[0]
    form["username"], form["password"] = "admin", "correct-horse"
    form["next"].force_value(next_value)
    return form.submit(status=303)


@pytest.mark.parametrize(
    "next_value, expected",
    [
        ("/é", "/%C3%A9"),
        ("/€", "/%E2%82%AC"),
        ("/admin/missing-symbols?code_file=é&x=1", "/admin/missing-symbols?code_file=%C3%A9&x=1"),
        ("/admin/\u2028", "/admin/"),
        ("/admin/\u2029x", "/admin/"),
        ("/admin/\x85", "/admin/"),
        ("/admin/\u202e", "/admin/"),
    ],
)
def test_login_next_is_ascii_and_rejects_unicode_separators(app, next_value, expected):
    r = submit_login(app, next_value)
    location = r.headers["Location"]
    assert location.isascii()
    assert location == "http://symbols.example.com" + expected


@pytest.mark.parametrize("next_value", ["/€", "/admin/\u2028", "/é"])
def test_login_page_with_non_ascii_next_in_the_query(app, next_value):
    import urllib.parse

    page = app.get("/admin/login?next=" + urllib.parse.quote(next_value), status=200)
    assert page.forms[0]["next"].value.isascii()


def test_anonymous_redirect_location_is_ascii_for_non_ascii_paths(app):
    r = app.get("/admin/missing-symbols?code_file=%C3%A9", status=303)
    assert r.headers["Location"].isascii()


# -- item 10: the Host header does not shape redirects -------------------------------------------
@pytest.mark.parametrize("host", BAD_HOSTS)
def test_bad_host_on_console_redirect_is_a_400(app, host):
    r = app.get("/admin/", extra_environ={"HTTP_HOST": host}, expect_errors=True)
    assert r.status_int == 400, (r.status, r.headers.get("Location"))
    assert "Location" not in r.headers
    assert r.headers["Content-Type"].startswith("text/html")


@pytest.mark.parametrize(
    "host, base",
    [
        ("[::1]:80", "http://[::1]:80"),
        ("127.0.0.1:6543", "http://127.0.0.1:6543"),
        ("Symbols.Example.COM.", "http://Symbols.Example.COM."),
        ("my_host-1", "http://my_host-1"),
    ],
)
def test_valid_host_shapes_console_redirects(app, host, base):
    r = app.get("/admin/", extra_environ={"HTTP_HOST": host}, status=303)
    assert r.headers["Location"] == base + "/admin/login?next=%2Fadmin%2F"


@pytest.mark.parametrize("host", ["evil.com/x?", "h\r\nX: y", "symbols.example.com"])
def test_public_url_wins_over_any_host(make_app, db, symbols_dir, host):
    create_user(db, "admin", "correct-horse")
    app = make_app(symbol_urls=str(symbols_dir), public_url="https://symbols.example.org")
    app.extra_environ["HTTP_HOST"] = host
    r = app.get("/admin/users", status=303)
    assert r.headers["Location"] == "https://symbols.example.org/admin/login?next=%2Fadmin%2Fusers"
    r = login(app, "admin", "correct-horse")
    assert r.headers["Location"] == "https://symbols.example.org/admin/"
    r = app.post("/admin/logout", {"csrf_token": csrf(app)}, status=303)
    assert r.headers["Location"] == "https://symbols.example.org/admin/login"
    home = app.get("/", status=200)
    assert "https://symbols.example.org/" in home.text
    assert "evil.com" not in home.text


@pytest.mark.parametrize("host", BAD_HOSTS)
def test_bad_host_on_home_is_a_400(app, host):
    r = app.get("/", extra_environ={"HTTP_HOST": host}, expect_errors=True)
    assert r.status_int == 400
    assert "evil" not in r.text
    for name in HTML_HEADERS:
        assert name in r.headers


def test_home_base_url_from_a_valid_host(app):
    r = app.get("/", extra_environ={"HTTP_HOST": "[::1]:8080"}, status=200)
    assert "http://[::1]:8080/" in r.text


KEY = "v1/xul.pdb/44E4EC8C2F41492B9369D6B9A059577C2/xul.sym"
DOWNLOAD = "/xul.pdb/44E4EC8C2F41492B9369D6B9A059577C2/xul.sym"


@pytest.mark.parametrize("host", BAD_HOSTS)
def test_bad_host_on_local_download_redirect_is_a_plain_400(app, symbols_dir, host):
    put_file(symbols_dir, KEY)
    r = app.get(DOWNLOAD, extra_environ={"HTTP_HOST": host}, expect_errors=True)
    assert r.status_int == 400, (r.status, r.headers.get("Location"))
    assert "Location" not in r.headers
    assert r.headers["Content-Type"].startswith("text/plain")
    assert r.headers["Cache-Control"] == "no-store"
    # HEAD needs no URL: still the found answer.
    app.head(DOWNLOAD, extra_environ={"HTTP_HOST": host}, status=200)


def test_local_download_redirect_from_public_url_or_valid_host(make_app, symbols_dir):
    put_file(symbols_dir, KEY)
    app = make_app(symbol_urls=str(symbols_dir))
    r = app.get(DOWNLOAD, extra_environ={"HTTP_HOST": "[::1]:80"}, status=302)
    assert r.headers["Location"] == f"http://[::1]:80/__files__/0/{KEY}"
    app = make_app(symbol_urls=str(symbols_dir), public_url="https://symbols.example.org/base")
    r = app.get(DOWNLOAD, extra_environ={"HTTP_HOST": "evil.com/x?"}, status=302)
    assert r.headers["Location"] == f"https://symbols.example.org/base/__files__/0/{KEY}"


def test_s3_redirects_never_look_at_the_host(make_app, s3):
    # With no local-directory location the Host is not needed, so even a bad one
    # still gets the S3 redirect (the view asks for a base only for a local directory).
    from tests.conftest import PUBLIC_BUCKET, put_public

    put_public(s3, KEY)
    app = make_app(symbol_urls=s3.url(PUBLIC_BUCKET, public=True))
    for host in ("evil.com/x?", "h\r\nX: y"):
        r = app.get(DOWNLOAD, extra_environ={"HTTP_HOST": host}, status=302)
        assert r.headers["Location"].startswith(s3.endpoint)


def test_s3_redirects_ignore_the_host_beside_a_local_directory(make_app, s3, symbols_dir):
    # Mixed locations: a key found in S3 redirects there whatever the Host; only a
    # key found in the local directory needs (and validates) the Host.
    from tests.conftest import PUBLIC_BUCKET, put_public

    put_public(s3, KEY)
    put_file(symbols_dir, "v1/local.pdb/ABC/local.sym")
    app = make_app(symbol_urls=f"{symbols_dir},{s3.url(PUBLIC_BUCKET, public=True)}")
    r = app.get(DOWNLOAD, extra_environ={"HTTP_HOST": "evil.com/x?"}, status=302)
    assert r.headers["Location"].startswith(s3.endpoint)
    app.get("/local.pdb/ABC/local.sym", extra_environ={"HTTP_HOST": "evil.com/x?"}, status=400)


def test_every_route_of_the_app_is_declared_in_the_routes_module(admin_app):
    # routes.py declares every URL-dispatch route: a route added elsewhere would
    # escape the reserved first segments (SPEC §2) derived from it.
    from pyramid.interfaces import IRoutesMapper

    from tecken_pyramid import routes

    mapper = admin_app.registry.queryUtility(IRoutesMapper)
    added = {route.name: route.pattern for route in mapper.get_routes()}
    static = added.pop(f"__{routes.STATIC}/")
    assert static == f"{routes.STATIC}/*subpath"
    assert added == {**routes.PUBLIC, **routes.CONSOLE}
