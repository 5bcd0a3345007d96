"""Console sign-in (SPEC §7): sessions, CSRF, throttle, next, 403, security headers."""

import re

import pytest

from tests.conftest import create_user, login

HTML_HEADERS = ("Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy")


@pytest.fixture
def app(make_app, db, symbols_dir):
    create_user(db, "admin", "correct-horse")
    create_user(db, "viewer", "correct-horse", superuser=False)
    create_user(db, "gone", "correct-horse", active=False)
    return make_app(symbol_urls=str(symbols_dir))


def test_anonymous_is_redirected_to_login_with_next(app):
    r = app.get("/admin/?x=1", status=303)
    assert r.headers["Location"].endswith("/admin/login?next=%2Fadmin%2F%3Fx%3D1")
    page = app.get(r.headers["Location"])
    for name in HTML_HEADERS:
        assert name in page.headers
    assert page.forms[0]["next"].value == "/admin/?x=1"


def test_login_sets_a_fresh_httponly_lax_session_and_honours_next(app):
    app.get("/admin/login")
    before = app.cookies.get("tecken_session")
    r = login(app, "admin", "correct-horse", next_url="/admin/")
    assert r.headers["Location"].endswith("/admin/")
    cookie = [v for k, v in r.headerlist if k == "Set-Cookie" and v.startswith("tecken_session=")][-1]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "secure" not in cookie.lower().split(";")[1:].__str__()  # development: secure_cookies=false
    assert app.cookies.get("tecken_session") != before
    assert app.get("/admin/", status=200).html.find("h1").text == "Dashboard"


def test_secure_cookie_when_configured(make_app, db, symbols_dir):
    create_user(db, "admin", "correct-horse")
    app = make_app(symbol_urls=str(symbols_dir), secure_cookies="true")
    app.extra_environ["wsgi.url_scheme"] = "https"  # a Secure cookie only travels over HTTPS
    r = login(app, "admin", "correct-horse")
    cookie = [v for k, v in r.headerlist if k == "Set-Cookie" and v.startswith("tecken_session=")][-1]
    assert re.search(r";\s*secure", cookie, re.I)


@pytest.mark.parametrize(
    "next_url",
    ["//evil.example/x", "/\\evil.example", "https://evil.example/", "/admin/%0d", "/x\\y", "admin/"],
)
def test_unsafe_next_goes_to_admin(app, next_url):
    form = app.get("/admin/login").forms[0]
    form["username"], form["password"] = "admin", "correct-horse"
    form["next"].force_value(next_url.replace("%0d", "\r"))
    r = form.submit(status=303)
    assert r.headers["Location"].endswith("/admin/")


def test_login_post_without_csrf_token_is_400_and_signs_nobody_in(app):
    app.get("/admin/login")
    r = app.post("/admin/login", {"username": "admin", "password": "correct-horse"}, status=400)
    assert "security token" in r.text
    app.get("/admin/", status=303)


def test_wrong_password_400_then_throttled_429_even_with_right_password(app):
    for _ in range(5):
        login(app, "admin", "wrong-password", status=400)
    r = login(app, "admin", "correct-horse", status=429)
    assert "Too many" in r.text
    # Another username from the same address is not throttled.
    login(app, "viewer", "correct-horse", status=303)


def test_signed_in_non_superuser_gets_403_and_inactive_cannot_sign_in(app):
    login(app, "viewer", "correct-horse")
    r = app.get("/admin/", status=403)
    assert "Content-Security-Policy" in r.headers
    login(app, "gone", "correct-horse", status=400)


def test_logout_needs_csrf_and_ends_the_session(app):
    login(app, "admin", "correct-horse")
    app.post("/admin/logout", status=400)
    app.get("/admin/", status=200)
    token = app.get("/admin/").html.find("input", {"name": "csrf_token"})["value"]
    app.post("/admin/logout", {"csrf_token": token}, status=303)
    app.get("/admin/", status=303)


def test_password_reset_signs_out_other_sessions(app, db):
    login(app, "admin", "correct-horse")
    app.get("/admin/", status=200)
    create_user(db, "admin", "another-horse")
    app.get("/admin/", status=303)


def test_download_post_is_still_405_not_a_csrf_400(app):
    r = app.post("/xul.pdb/ABC/xul.sym", status=405)
    assert r.headers["Allow"] == "GET, HEAD"


def test_downloads_and_home_set_no_cookie(app):
    assert "Set-Cookie" not in app.get("/", status=200).headers
    assert "Set-Cookie" not in app.get("/xul.pdb/ABC/xul.sym", status=404).headers


def test_throttle_still_locks_while_memcached_is_down(make_app, db, symbols_dir, memcached_clean):
    # Failures counted in the in-process fallback must lock too.
    create_user(db, "admin", "correct-horse")
    app = make_app(symbol_urls=str(symbols_dir), memcached_servers=memcached_clean.address)
    memcached_clean.stop()
    for _ in range(5):
        login(app, "admin", "wrong-password", status=400)
    login(app, "admin", "correct-horse", status=429)
