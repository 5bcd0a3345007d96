"""Real-browser fixtures: Debian's Chromium driven by Playwright's Python API,
against a real waitress server around the app.

Playwright's own browser downloads are never used (no ``playwright install``):
the tests launch /usr/bin/chromium, which ``make test`` installs when missing.
"""

import os

import pytest

from tests.conftest import create_user, missing_service
from tests.functional.download_support import Served

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT_MS = 10_000

ADMIN = ("admin", "correct-horse")


@pytest.fixture(scope="session")
def browser():
    if not os.access(CHROMIUM, os.X_OK):
        missing_service(f"{CHROMIUM} is missing (make test installs the chromium package)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing_service("the playwright Python package is not installed (make test installs it)")
    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    except Exception:
        playwright.stop()
        raise
    yield browser
    browser.close()
    playwright.stop()


class ConsoleLog:
    """Everything the page reported as an error: console errors (CSP violations
    among them) and uncaught exceptions."""

    def __init__(self):
        self.errors = []

    def on_console(self, message):
        if message.type == "error":
            url = (message.location or {}).get("url", "")
            self.errors.append(f"console: {message.text}" + (f" ({url})" if url else ""))

    def on_page_error(self, error):
        self.errors.append(f"page error: {error}")


@pytest.fixture
def page(browser):
    """A fresh browser context (no cookies) and page; ``page.console_log.errors``."""
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    log = ConsoleLog()
    page.on("console", log.on_console)
    page.on("pageerror", log.on_page_error)
    page.console_log = log
    yield page
    context.close()


@pytest.fixture
def site(make_app, db, symbols_dir):
    """The console app (superuser admin / correct-horse) served by a real waitress."""
    create_user(db, *ADMIN)
    app = make_app(symbol_urls=str(symbols_dir))
    served = Served(app.app)
    yield served
    served.close()


def sign_in(page, site, username=ADMIN[0], password=ADMIN[1], path="/admin/login"):
    page.goto(site.url + path)
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    with page.expect_navigation():
        page.click("form.stacked button[type=submit]")
