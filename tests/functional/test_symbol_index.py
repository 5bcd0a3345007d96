"""symbol_index (SPEC §9 "Records"): the one symbol_file row per (location, key), on the
migrated database of the run (SQLite or PostgreSQL)."""

import datetime
import threading

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tecken_pyramid import symbol_index
from tecken_pyramid.locations import Location
from tecken_pyramid.models import SymbolFile, Upload, User

REGULAR = Location(kind="private", index="0", url="http://s3.example/bucket/pfx", prefix="pfx/v1")
TRY = Location(kind="private", index="try", url="http://s3.example/bucket/try/pfx", prefix="try/pfx/v1")
KEY = "pfx/v1/xul.pdb/44E4EC8C2F41492B9369D6B9A059577C2/xul.sym"
HEADER = {
    "os": "windows",
    "arch": "x86_64",
    "debug_id": "44E4EC8C2F41492B9369D6B9A059577C2",
    "debug_file": "xul.pdb",
    "code_id": "5f2e0b3c1a000",
    "code_file": "xul.dll",
    "generator": "dump_syms 2.3.4",
}


@pytest.fixture
def engine(db):
    engine = db.engine()
    yield engine
    engine.dispose()


def record(session, location=REGULAR, key=KEY, **overrides):
    values = dict(
        symbol="xul.pdb",
        debug_id="44e4ec8c2f41492b9369d6b9a059577c2",
        filename="xul.sym",
        size=100,
        sha256="a" * 64,
        header=HEADER,
    )
    values.update(overrides)
    symbol_index.record_file(session, location=location, key=key, **values)


def rows(engine):
    with Session(engine) as session:
        return session.scalars(select(SymbolFile).order_by(SymbolFile.id)).all()


def make_upload(engine):
    with Session(engine) as session, session.begin():
        user = User(username="uploader", password_hash="x")
        session.add(user)
        session.flush()
        upload = Upload(user_id=user.id, filename="a.zip", size=1, sha256="b" * 64, target=REGULAR.url)
        session.add(upload)
        session.flush()
        return upload.id


def test_record_inserts_every_field(engine):
    with Session(engine) as session, session.begin():
        record(session)
    [row] = rows(engine)
    assert (row.location, row.key, row.symbol, row.debug_id, row.filename) == (
        REGULAR.url,
        KEY,
        "xul.pdb",
        "44E4EC8C2F41492B9369D6B9A059577C2",
        "xul.sym",
    )
    assert (row.size, row.sha256, row.os, row.arch) == (100, "a" * 64, "windows", "x86_64")
    assert (row.code_id, row.code_file, row.generator) == ("5F2E0B3C1A000", "xul.dll", "dump_syms 2.3.4")
    assert row.try_symbols is False and row.upload_id is None
    assert row.created_at is not None and row.updated_at is not None


def test_two_records_of_one_key_leave_one_row_with_the_later_values(engine):
    upload_id = make_upload(engine)
    with Session(engine) as session, session.begin():
        record(session, upload_id=upload_id)
    [first] = rows(engine)
    with Session(engine) as session, session.begin():
        record(session, size=200, sha256="c" * 64, header=None)  # index: upload_id None keeps it
    [row] = rows(engine)
    assert row.id == first.id and row.created_at == first.created_at
    assert row.updated_at >= first.updated_at
    assert (row.size, row.sha256, row.os, row.code_id, row.code_file) == (200, "c" * 64, None, None, None)
    assert row.upload_id == upload_id
    other = make_upload_again(engine)
    with Session(engine) as session, session.begin():
        record(session, upload_id=other)  # an upload's id replaces
    [row] = rows(engine)
    assert row.upload_id == other and row.code_file == "xul.dll"


def make_upload_again(engine):
    with Session(engine) as session, session.begin():
        user = session.scalars(select(User)).first()
        upload = Upload(user_id=user.id, filename="b.zip", size=1, sha256="d" * 64, target=REGULAR.url)
        session.add(upload)
        session.flush()
        return upload.id


def test_same_key_in_two_locations_is_two_rows_and_try_is_marked(engine):
    with Session(engine) as session, session.begin():
        record(session)
        record(session, location=TRY, key="try/" + KEY)
    regular, tried = rows(engine)
    assert (regular.try_symbols, tried.try_symbols) == (False, True)


def test_long_fields_are_truncated_not_refused(engine):
    long_header = dict(HEADER, os="o" * 80, arch="a" * 80, code_id="c" * 300, code_file="f" * 300)
    long_header["generator"] = "g\x00" * 300
    with Session(engine) as session, session.begin():
        record(session, symbol="s" * 400, filename="n" * 400 + ".sym", debug_id="d" * 200, header=long_header)
    [row] = rows(engine)
    assert (len(row.symbol), len(row.filename), len(row.debug_id)) == (255, 255, 150)
    assert (row.os, row.arch) == ("o" * 50, "a" * 50)
    assert (row.code_id, row.code_file) == ("C" * 150, "f" * 255)
    assert row.generator == "g" * 255  # NULs dropped (PostgreSQL refuses them)


def test_a_key_the_column_cannot_hold_is_refused(engine):
    with Session(engine) as session, session.begin():
        with pytest.raises(ValueError):
            record(session, key="k" * 1025)
        with pytest.raises(ValueError):
            record(session, key="bad\udcffkey")
    assert rows(engine) == []


def test_concurrent_records_of_one_key(engine):
    errors = []
    barrier = threading.Barrier(4)

    def worker(size):
        try:
            barrier.wait()
            with Session(engine) as session, session.begin():
                record(session, size=size)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    [row] = rows(engine)
    assert row.size in range(4)


def test_find_by_code_id_takes_the_newest_row_in_the_given_locations(engine):
    older = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
    with Session(engine) as session, session.begin():
        record(session, key="a", symbol="old.pdb", debug_id="AA")
        record(session, key="b", symbol="new.pdb", debug_id="BB")
        record(session, location=TRY, key="c", symbol="try.pdb", debug_id="CC")
        session.flush()
        session.execute(SymbolFile.__table__.update().where(SymbolFile.key == "a").values(updated_at=older))
    with Session(engine) as session:
        find = symbol_index.find_by_code_id
        assert find(session, "xul.dll", "5f2e0b3c1a000", [REGULAR.url]) == ("new.pdb", "BB", "xul.sym")
        assert find(session, "xul.dll", "5F2E0B3C1A000", [REGULAR.url, TRY.url])[0] in ("new.pdb", "try.pdb")
        assert find(session, "xul.dll", "5F2E0B3C1A000", [TRY.url]) == ("try.pdb", "CC", "xul.sym")
        assert find(session, "XUL.DLL", "5F2E0B3C1A000", [REGULAR.url]) is None  # the file is case-sensitive
        assert find(session, "xul.dll", "5F2E0B3C1A001", [REGULAR.url]) is None
        assert find(session, "xul.dll", "5F2E0B3C1A000", []) is None
