"""Fixtures of the functional suite beyond tests/conftest.py's real services."""

import pytest


@pytest.fixture
def local(make_app, symbols_dir):
    """An app over one local directory (in-process cache)."""
    app = make_app(symbol_urls=str(symbols_dir))
    app.dir = symbols_dir
    return app


# A real waitress around an app (download_support.serve), for every functional module.
from tests.functional.download_support import serve  # noqa: E402, F401
