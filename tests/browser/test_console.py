"""The console in a real browser (Chromium): sign in, navigate, create a user,
sign out; the anonymous redirect; no console errors or CSP violations."""

import urllib.parse

from sqlalchemy import select
from sqlalchemy.orm import Session

from tecken_pyramid.models import User
from tests.browser.conftest import sign_in

PAGES = [
    ("Dashboard", "/admin/"),
    ("Extensions", "/admin/extensions"),
    ("Ignore patterns", "/admin/patterns"),
    ("Missing symbols", "/admin/missing-symbols"),
    ("Cache", "/admin/cache"),
    ("Users", "/admin/users"),
    ("Audit log", "/admin/audit"),
]


def path_of(page):
    parts = urllib.parse.urlsplit(page.url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def test_anonymous_is_sent_to_the_login_form(page, site):
    response = page.goto(site.url + "/admin/users")
    assert response.status == 200
    assert path_of(page) == "/admin/login?next=%2Fadmin%2Fusers"
    assert page.inner_text("h1") == "Sign in"
    assert page.is_visible("input[name=password]")
    sign_in(page, site, path=path_of(page))
    assert path_of(page) == "/admin/users"
    assert page.console_log.errors == []


def test_sign_in_create_a_user_and_sign_out(page, site, db, tmp_path):
    sign_in(page, site)
    assert path_of(page) == "/admin/"
    assert page.inner_text("h1") == "Dashboard"
    assert page.inner_text("nav .who") == "admin"

    with page.expect_navigation():
        page.click("nav >> text=Users")
    assert path_of(page) == "/admin/users"
    page.fill("#create-user input[name=username]", "newbie")
    page.fill("#create-user input[name=password]", "newbie-password")
    with page.expect_navigation():
        page.click("#create-user button[type=submit]")
    assert path_of(page) == "/admin/users"
    assert "Created superuser newbie." in page.inner_text("p.flash.info")
    assert page.is_visible("table.users-table >> text=newbie")
    engine = db.engine()
    with Session(engine) as session:
        newbie = session.scalars(select(User).where(User.username == "newbie")).one()
        assert newbie.is_superuser and newbie.is_active
    engine.dispose()

    shot = tmp_path / "users.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.is_file() and shot.stat().st_size > 0
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    with page.expect_navigation():
        page.click("nav button:has-text('Sign out')")
    assert path_of(page) == "/admin/login"
    page.goto(site.url + "/admin/")
    assert path_of(page).startswith("/admin/login?next=")

    # The new superuser signs in through the same form.
    sign_in(page, site, "newbie", "newbie-password")
    assert page.inner_text("nav .who") == "newbie"
    assert page.console_log.errors == []


def test_every_console_page_loads_without_console_errors(page, site):
    sign_in(page, site)
    for label, path in PAGES:
        response = page.goto(site.url + path)
        assert response.status == 200, (path, response.status)
        assert response.headers["content-security-policy"].startswith("default-src 'self'")
        assert page.title().endswith("tecken-pyramid"), path
        # The stylesheet applied (served by the app, allowed by the CSP).
        assert page.eval_on_selector("nav.admin-nav", "e => getComputedStyle(e).display") == "flex", label
    assert page.console_log.errors == []


def test_the_content_security_policy_is_enforced_and_reported(page, site):
    # Proves the console-error check above can see a violation: an image from
    # another origin is refused by the CSP and reported as a console error.
    sign_in(page, site)
    with page.expect_console_message(lambda m: m.type == "error" and "Content Security Policy" in m.text):
        page.evaluate(
            """() => { const img = document.createElement('img');
                       img.src = 'http://example.invalid/x.png'; document.body.append(img); }"""
        )
    assert any("Content Security Policy" in e for e in page.console_log.errors), page.console_log.errors
