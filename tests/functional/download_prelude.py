"""What the download test modules share: names and small helpers (the ``local``
app is a fixture in conftest.py)."""

from sqlalchemy import text

from tests.conftest import DEBUG_ID

D = DEBUG_ID
ZERO_ID = "0" * 33
HOST = "http://symbols.example.com"
OTHER_METHODS = ("POST", "PUT", "DELETE", "OPTIONS", "PATCH")
ALL_METHODS = ("GET", "HEAD", *OTHER_METHODS)
ALLOWED_EXTENSIONS = (".sym", ".dl_", ".ex_", ".pd_", ".dbg.gz", ".tar.bz2")


def files_path(location):
    assert location.startswith(HOST + "/__files__/"), location
    return location[len(HOST) :]


def count_missing(db):
    engine = db.engine()
    try:
        with engine.connect() as connection:
            return connection.execute(text("SELECT count(*) FROM missing_symbol")).scalar_one()
    finally:
        engine.dispose()
