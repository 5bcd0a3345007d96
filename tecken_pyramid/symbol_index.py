"""The symbol index (SPEC §9 "Records", "Lookup by code id"): ``symbol_file`` rows.

Pure database code, on the caller's session; the caller commits. Written by the
upload pipeline (one row per stored or skipped member) and by ``tecken-pyramid
index``; read by the code-id lookup of the download path (:mod:`.code_ids`).

:func:`record_file` is one ``INSERT ... ON CONFLICT (location, key) DO UPDATE``,
which SQLite (3.24+) and PostgreSQL both run atomically: two processes recording
the same key at once leave one row, the later values in it, and neither fails.
(An insert retried as an update inside a SAVEPOINT would do the same on
PostgreSQL, but pysqlite's SAVEPOINT handling commits a savepoint opened before
the first write of a transaction when it is released.)
"""

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite

from .models import KEY_LENGTH, SymbolFile, utcnow

_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}

# The column lengths of the descriptive fields (models.SymbolFile, migration 0008).
_TEXT_FIELDS = ("symbol", "debug_id", "filename", "sha256", "os", "arch", "code_id", "code_file", "generator")
LENGTHS = {name: SymbolFile.__table__.c[name].type.length for name in _TEXT_FIELDS}


def _text(value, length):
    """Text the column can hold: no NUL (PostgreSQL refuses it), no lone surrogate
    (not encodable), at most ``length`` characters. None stays None."""
    if value is None:
        return None
    value = str(value).replace("\x00", "")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value[:length]


def _identity(name, value):
    """A location URL or storage key is the row's identity: never altered, so refused
    when the column cannot hold it as it is."""
    if len(value) > KEY_LENGTH or "\x00" in value:
        raise ValueError(f"{name} cannot be indexed (over {KEY_LENGTH} characters or a NUL): {value[:80]!r}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{name} cannot be indexed (not UTF-8): {value[:80]!r}") from None
    return value


def row_values(*, location, key, symbol, debug_id, filename, size, sha256, header, upload_id=None):
    """The column values :func:`record_file` writes (``header``: breakpad.sym_header's dict or None)."""
    header = header or {}
    code_id = header.get("code_id")
    values = {
        "location": _identity("location", location.url),
        "key": _identity("key", key),
        "symbol": symbol,
        "debug_id": debug_id.upper(),
        "filename": filename,
        "sha256": sha256,
        "os": header.get("os"),
        "arch": header.get("arch"),
        "code_id": code_id.upper() if code_id else None,
        # Tecken stores "" for a missing code file: the lookup treats both as no code file.
        "code_file": header.get("code_file") or None,
        "generator": header.get("generator"),
    }
    for name, length in LENGTHS.items():
        values[name] = _text(values[name], length)
    values.update(size=size, try_symbols=location.index == "try", upload_id=upload_id, updated_at=utcnow())
    return values


def record_file(
    session, *, location, key, symbol, debug_id, filename, size, sha256, header, upload_id=None
) -> None:
    """Upsert the one ``symbol_file`` row of (``location.url``, ``key``).

    Every field is replaced by the new values except ``created_at`` and, when
    ``upload_id`` is None (``index``), the row's upload (an upload's id replaces an
    older one). Text longer than its column is truncated; a key or location URL
    that the column cannot hold raises ValueError. The caller commits.
    """
    values = row_values(
        location=location,
        key=key,
        symbol=symbol,
        debug_id=debug_id,
        filename=filename,
        size=size,
        sha256=sha256,
        header=header,
        upload_id=upload_id,
    )
    dialect = session.get_bind().dialect.name
    insert = _INSERTS.get(dialect)
    if insert is None:
        raise NotImplementedError(f"symbol_index supports SQLite and PostgreSQL, not {dialect}")
    table = SymbolFile.__table__
    statement = insert(table).values(created_at=values["updated_at"], **values)
    updates = {name: statement.excluded[name] for name in values if name not in ("location", "key")}
    updates["upload_id"] = func.coalesce(statement.excluded.upload_id, table.c.upload_id)
    session.execute(statement.on_conflict_do_update(index_elements=["location", "key"], set_=updates))


def find_by_code_id(session, code_file, code_id, location_urls):
    """``(symbol, debug_id, filename)`` of the newest row (``updated_at``, then ``id``)
    with this code file and code id (any case) in one of ``location_urls``, or None."""
    urls = list(location_urls)
    if not code_file or not code_id or not urls:
        return None
    row = session.execute(
        select(SymbolFile.symbol, SymbolFile.debug_id, SymbolFile.filename)
        .where(
            SymbolFile.code_file == code_file,
            SymbolFile.code_id == code_id.upper(),
            SymbolFile.location.in_(urls),
        )
        .order_by(SymbolFile.updated_at.desc(), SymbolFile.id.desc())
        .limit(1)
    ).first()
    return tuple(row) if row is not None else None


def known_rows(session, location_url, keys):
    """``{key: (size, sha256)}`` of the rows ``keys`` already have in one location (``index``'s skip)."""
    keys = list(keys)
    if not keys:
        return {}
    rows = session.execute(
        select(SymbolFile.key, SymbolFile.size, SymbolFile.sha256).where(
            SymbolFile.location == location_url, SymbolFile.key.in_(keys)
        )
    )
    return {key: (size, sha256) for key, size, sha256 in rows}
