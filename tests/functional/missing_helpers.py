"""Helpers shared by the missing-symbol tests: direct SQL on the table, metrics, waiting."""

import datetime
import re
import time

from sqlalchemy import insert, select

from tecken_pyramid.missing import record_hash
from tecken_pyramid.models import MissingSymbol

T = MissingSymbol.__table__
UTC = datetime.UTC
COLUMNS = (
    "id",
    "symbol",
    "debugid",
    "filename",
    "code_file",
    "code_id",
    "count",
    "created_at",
    "modified_at",
)


def utcnow():
    return datetime.datetime.now(UTC)


def aware(value):
    """Timestamps as read back: SQLite gives naive UTC, PostgreSQL aware ones."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class MissingTable:
    """Direct access to ``missing_symbol`` (never through the app)."""

    def __init__(self, db):
        self.db = db
        self.engine = db.engine()

    def db_time(self, when):
        when = when.astimezone(UTC)
        return when.replace(tzinfo=None) if self.db.kind == "sqlite" else when

    def row_values(
        self,
        symbol,
        debugid="ABCDEF0123",
        filename=None,
        code_file=None,
        code_id=None,
        count=1,
        created_at=None,
        modified_at=None,
    ):
        filename = filename if filename is not None else "xul.sym"
        modified_at = modified_at or utcnow()
        created_at = created_at or modified_at
        return {
            "hash": record_hash(symbol, debugid, filename, code_file, code_id),
            "symbol": symbol,
            "debugid": debugid,
            "filename": filename,
            "code_file": code_file,
            "code_id": code_id,
            "count": count,
            "created_at": self.db_time(created_at),
            "modified_at": self.db_time(modified_at),
        }

    def insert(self, symbol, **kwargs):
        """Insert one row; returns its id."""
        with self.engine.begin() as conn:
            result = conn.execute(insert(T).values(**self.row_values(symbol, **kwargs)))
            return result.inserted_primary_key[0]

    def insert_many(self, rows):
        with self.engine.begin() as conn:
            conn.execute(insert(T), [self.row_values(**row) for row in rows])

    def rows(self):
        with self.engine.connect() as conn:
            result = conn.execute(select(*(T.c[name] for name in COLUMNS)).order_by(T.c.id))
            out = []
            for row in result.mappings():
                item = dict(row)
                item["created_at"] = aware(item["created_at"])
                item["modified_at"] = aware(item["modified_at"])
                out.append(item)
            return out

    def summary(self):
        """{(symbol, debugid, filename, code_file, code_id): count}"""
        return {
            (r["symbol"], r["debugid"], r["filename"], r["code_file"], r["code_id"]): r["count"]
            for r in self.rows()
        }

    def wait_for(self, predicate, timeout=10.0):
        """Poll the table until ``predicate(rows)`` holds; returns the rows."""
        end = time.monotonic() + timeout
        while True:
            rows = self.rows()
            if predicate(rows) or time.monotonic() > end:
                return rows
            time.sleep(0.02)

    def close(self):
        self.engine.dispose()


def metric(testapp, name):
    """The value of an unlabelled sample in /metrics (0.0 when absent)."""
    text = testapp.get("/metrics", status=200).text
    m = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def wait_until(predicate, timeout=10.0, interval=0.01):
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            return False
        time.sleep(interval)
    return True


def wait_idle(*testapps):
    for testapp in testapps:
        assert testapp.registry.missing.wait_idle(10), "missing-symbol writer did not drain its queue"
