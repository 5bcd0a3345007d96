"""Database engine and sessions.

The download path never touches the database: rules are held in memory
(:mod:`.rules`) and misses are written by a background thread (:mod:`.missing`).
Request-bound sessions (``request.dbsession``) are for the console and reports.
"""

import os

from pyramid.decorator import reify
from pyramid.request import Request
from sqlalchemy import create_engine, event
from sqlalchemy.orm import sessionmaker

SQLITE_BUSY_TIMEOUT_SECONDS = 5


def make_engine(url, **kwargs):
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
            **kwargs,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            # WAL lets readers (reports, the rules reloader) run beside the writer.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=5,
        pool_timeout=5,
        connect_args={"connect_timeout": 5},
        **kwargs,
    )


def ensure_sqlite_directory(url):
    """Create the directory of a SQLite file (``make run`` on a fresh clone)."""
    if url.startswith("sqlite:///") and url not in ("sqlite://", "sqlite:///:memory:"):
        path = url[len("sqlite:///") :].split("?", 1)[0]
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)


class TeckenRequest(Request):
    """The request class. ``dbsession`` is a plain reified attribute here rather than
    ``config.add_request_method``, which would build a request subclass for every
    request (about 15 µs on each download, which never uses it)."""

    @reify
    def dbsession(self):
        session = self.registry.dbsession_factory()
        self.add_finished_callback(lambda _r: session.close())
        return session


def includeme(config):
    registry = config.registry
    registry.dbengine = make_engine(registry.tecken.database_url)
    registry.dbsession_factory = sessionmaker(bind=registry.dbengine, expire_on_commit=False)
    config.set_request_factory(TeckenRequest)
