"""SPEC §9 "Indexing what others stored": ``tecken-pyramid index``, the real entry point as
a subprocess, over objects put straight into moto's S3 (gzipped with Content-Encoding:
gzip, and raw) and files dropped into a local directory; then the code-id lookup finds
what it indexed."""

import gzip
import re

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tecken_pyramid import cli_index, symbol_index
from tecken_pyramid.breakpad import HEADER_BYTES
from tecken_pyramid.locations import Location
from tecken_pyramid.models import SymbolFile
from tecken_pyramid.storage import StorageChecker, StorageWriteError
from tests.conftest import PRIVATE_BUCKET, put_file
from tests.functional.download_support import assert_download, closed_port
from tests.functional.test_cli import UNREACHABLE_DB, base_env, one_line, run

ID1 = "44E4EC8C2F41492B9369D6B9A059577C2"
ID2 = "B1E1C1D1E1F1A1B1C1D1E1F1A1B1C1D10"
ID3 = "0123456789ABCDEF0123456789ABCDEF0"


def sym(debug_id, debug_file, code_id=None, code_file=None, os="windows", body=b""):
    lines = [f"MODULE {os} x86_64 {debug_id} {debug_file}"]
    if code_id:
        lines.append(f"INFO CODE_ID {code_id}" + (f" {code_file}" if code_file else ""))
    lines.append("INFO GENERATOR mozilla/dump_syms 2.3.4")
    lines.append("FILE 0 hg:hg.mozilla.org/mozilla-central:xpcom/base/nsDebug.cpp:abc")
    return ("\n".join(lines) + "\n").encode() + body


def put(s3, key, data, gzipped=False, **extra):
    if gzipped:
        extra["ContentEncoding"] = "gzip"
        data = gzip.compress(data, mtime=0)
    s3.client().put_object(Bucket=PRIVATE_BUCKET, Key=key, Body=data, **extra)


@pytest.fixture
def store(s3, symbols_dir, db):
    """A local directory (location 0) and a private bucket under pfx/ (location 1)."""
    s3_url = s3.url(PRIVATE_BUCKET, "pfx")
    # Big enough that only the first HEADER_BYTES are read and inflated.
    big = sym(ID1, "xul.pdb", "5F2E0B3C1A000", "xul.dll", body=b"x" * HEADER_BYTES * 3)
    put(s3, f"pfx/v1/xul.pdb/{ID1}/xul.sym", big, gzipped=True)
    put(s3, f"pfx/v1/libxul.so/{ID2}/libxul.so.sym", sym(ID2, "libxul.so", "C1D1E1F1A1B1", os="Linux"))
    put(s3, f"pfx/v1/bad.pdb/{ID3}/bad.sym", b"not a breakpad file\n", gzipped=True)
    put(s3, f"pfx/v1/xul.pdb/{ID1}/xul.pd_", b"not a .sym")
    put(s3, f"pfx/v1/deeper/a/{ID1}/x.sym", sym(ID1, "x"))  # not symbol/debugid/filename
    put(s3, f"other/v1/xul.pdb/{ID1}/xul.sym", sym(ID1, "xul.pdb"))  # outside the location
    firefox = sym(ID3, "firefox.pdb", "6A1B2C3D4000", "firefox.exe")
    put_file(symbols_dir, f"v1/firefox.pdb/{ID3}/firefox.sym", firefox)
    env = base_env(TECKEN_DATABASE_URL=db.url, TECKEN_SYMBOL_URLS=f"{symbols_dir},{s3_url}")
    return {"env": env, "s3_url": s3_url, "dir": symbols_dir}


def index(env, *args):
    return run("index", "development.ini", *args, env=env)


def summary(result, url):
    """(indexed, skipped, unreadable, listed) of the last line for ``url``."""
    pattern = re.compile(
        rf"indexed (\d+), skipped (\d+), unreadable (\d+) in {re.escape(url)} \((\d+) keys listed\)"
    )
    found = [m.groups() for m in map(pattern.fullmatch, result.stderr.splitlines()) if m]
    assert found, result.stderr
    return tuple(int(n) for n in found[-1])


def rows(db):
    engine = db.engine()
    with Session(engine) as session:
        out = {row.key: row for row in session.scalars(select(SymbolFile))}
    engine.dispose()
    return out


def test_index_fills_rows_from_the_headers_and_a_rerun_is_cheap(store, db, s3):
    result = index(store["env"])
    assert result.returncode == 0, result.stderr
    assert summary(result, store["s3_url"]) == (2, 0, 1, 5)
    local_url = "file://" + str(store["dir"])
    assert summary(result, local_url) == (1, 0, 0, 1)
    found = rows(db)
    assert set(found) == {
        f"pfx/v1/xul.pdb/{ID1}/xul.sym",
        f"pfx/v1/libxul.so/{ID2}/libxul.so.sym",
        f"v1/firefox.pdb/{ID3}/firefox.sym",
    }
    xul = found[f"pfx/v1/xul.pdb/{ID1}/xul.sym"]
    assert (xul.location, xul.symbol, xul.debug_id, xul.filename) == (
        store["s3_url"],
        "xul.pdb",
        ID1,
        "xul.sym",
    )
    assert (xul.os, xul.arch, xul.code_id, xul.code_file) == ("windows", "x86_64", "5F2E0B3C1A000", "xul.dll")
    assert xul.generator == "mozilla/dump_syms 2.3.4" and xul.sha256 is None and xul.upload_id is None
    head = s3.client().head_object(Bucket=PRIVATE_BUCKET, Key=xul.key)
    assert xul.size == head["ContentLength"]  # the size as listed (gzipped)
    linux = found[f"pfx/v1/libxul.so/{ID2}/libxul.so.sym"]
    assert (linux.os, linux.code_id, linux.code_file) == ("Linux", "C1D1E1F1A1B1", None)
    assert found[f"v1/firefox.pdb/{ID3}/firefox.sym"].location == local_url
    # The try location (the first location's try/) holds nothing.
    assert summary(result, local_url + "/try") == (0, 0, 0, 0)

    # Rerun: every row has its size, so nothing is read. An object replaced by one of the
    # same size is not looked at (the row keeps the first header).
    key = f"pfx/v1/libxul.so/{ID2}/libxul.so.sym"
    put(s3, key, sym(ID2, "libxul.so", "C1D1E1F1A1B2", os="Linux"))
    again = index(store["env"])
    assert again.returncode == 0, again.stderr
    assert summary(again, store["s3_url"]) == (0, 2, 1, 5)
    assert summary(again, local_url) == (0, 1, 0, 1)
    assert rows(db)[key].code_id == "C1D1E1F1A1B1"
    # One that changed size is read again.
    put(s3, key, sym(ID2, "libxul.so", "C1D1E1F1A1B2FF", os="Linux"))
    third = index(store["env"], "--location", "1")
    assert summary(third, store["s3_url"]) == (1, 1, 1, 5)
    assert rows(db)[key].code_id == "C1D1E1F1A1B2FF"
    assert "file://" not in third.stderr  # only location 1


def test_location_and_prefix(store, db, s3):
    result = index(store["env"], "--location", "1", "--prefix", "libxul.so/")
    assert result.returncode == 0, result.stderr
    assert summary(result, store["s3_url"]) == (1, 0, 0, 1)
    assert list(rows(db)) == [f"pfx/v1/libxul.so/{ID2}/libxul.so.sym"]
    result = index(store["env"], "--location", "0")
    assert summary(result, "file://" + str(store["dir"])) == (1, 0, 0, 1)
    put_file(
        store["dir"] / "try", f"v1/xul.pdb/{ID1}/xul.sym", sym(ID1, "xul.pdb", "5F2E0B3C1A000", "xul.dll")
    )
    result = index(store["env"], "--location", "try")
    assert result.returncode == 0, result.stderr
    assert summary(result, "file://" + str(store["dir"] / "try")) == (1, 0, 0, 1)
    [row] = [row for row in rows(db).values() if row.try_symbols]
    assert (row.key, row.code_file) == (f"v1/xul.pdb/{ID1}/xul.sym", "xul.dll")


def test_an_uploaded_row_with_the_same_sha256_is_left_alone(store, db, s3):
    key = f"pfx/v1/xul.pdb/{ID1}/xul.sym"
    content = sym(ID1, "xul.pdb", "5F2E0B3C1A000", "xul.dll")
    put(s3, key, content, gzipped=True, Metadata={"sha256": "f" * 64, "original_size": str(len(content))})
    location = Location(kind="private", index="1", url=store["s3_url"], prefix="pfx/v1")
    engine = db.engine()
    with Session(engine) as session, session.begin():
        symbol_index.record_file(
            session,
            location=location,
            key=key,
            symbol="xul.pdb",
            debug_id=ID1,
            filename="xul.sym",
            size=len(content),  # an upload records the original size
            sha256="f" * 64,
            header={"code_id": "5F2E0B3C1A000", "code_file": "xul.dll"},
        )
    engine.dispose()
    result = index(store["env"], "--location", "1", "--prefix", "xul.pdb/")
    assert summary(result, store["s3_url"]) == (0, 1, 0, 2)
    row = rows(db)[key]
    assert (row.size, row.sha256, row.os) == (len(content), "f" * 64, None)


def test_failures_are_one_line_and_exit_1(store, db):
    result = index(dict(store["env"], TECKEN_DATABASE_URL=UNREACHABLE_DB))
    assert result.returncode == 1
    assert one_line(result.stderr).startswith("tecken-pyramid: database unavailable (TECKEN_DATABASE_URL)")
    dead = f"http://127.0.0.1:{closed_port()}/{PRIVATE_BUCKET}"
    result = index(dict(store["env"], TECKEN_SYMBOL_URLS=dead))
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("tecken-pyramid: storage failed (") and "committed: indexed 0" in last
    assert "Traceback" not in result.stderr
    result = index(store["env"], "--location", "7")
    assert result.returncode == 1
    assert one_line(result.stderr) == "tecken-pyramid: no location '7' (the locations are 0, 1, try)"


class CountingStorage:
    """The real StorageChecker, counting its calls; read_head fails after ``fail_after``
    reads (a storage outage part-way)."""

    def __init__(self, checker, fail_after=None):
        self.checker, self.fail_after = checker, fail_after
        self.calls = []

    def list_keys(self, location, **kwargs):
        self.calls.append("list")
        return self.checker.list_keys(location, **kwargs)

    def stat(self, location, key):
        self.calls.append("stat")
        return self.checker.stat(location, key)

    def read_head(self, location, key, nbytes):
        if self.fail_after is not None and self.calls.count("read") >= self.fail_after:
            raise StorageWriteError("GET failed: simulated outage")
        self.calls.append("read")
        return self.checker.read_head(location, key, nbytes)


def test_a_rerun_makes_no_storage_call_but_the_listing(make_app, s3, db):
    for n in range(3):
        put(s3, f"pfx/v1/m{n}.pdb/{ID1}/m{n}.sym", sym(ID1, f"m{n}.pdb", f"AB{n}", f"m{n}.dll"), gzipped=True)
    app = make_app(symbol_urls=s3.url(PRIVATE_BUCKET, "pfx"))
    settings = app.registry.tecken
    checker = StorageChecker(settings)
    engine = db.engine()
    try:
        for expected_calls, expected_counts in ((["list"] + ["read"] * 3, (3, 0)), (["list"], (0, 3))):
            storage = CountingStorage(checker)
            with Session(engine) as session:
                counts = cli_index.Indexer(session, storage, settings.locations[0]).run()
            assert storage.calls == expected_calls
            assert (counts.indexed, counts.skipped) == expected_counts
    finally:
        checker.close()
        engine.dispose()


def test_a_storage_failure_part_way_keeps_what_was_indexed(make_app, s3, db, monkeypatch):
    for n in range(5):
        put(s3, f"pfx/v1/m{n}.pdb/{ID1}/m{n}.sym", sym(ID1, f"m{n}.pdb", f"AB{n}", f"m{n}.dll"))
    app = make_app(symbol_urls=s3.url(PRIVATE_BUCKET, "pfx"))
    settings = app.registry.tecken
    checker = StorageChecker(settings)
    monkeypatch.setattr(cli_index, "BATCH", 2)
    engine = db.engine()
    try:
        with Session(engine) as session:
            indexer = cli_index.Indexer(session, CountingStorage(checker, 3), settings.locations[0])
            with pytest.raises(StorageWriteError):
                indexer.run()
            assert indexer.counts.indexed == 3
        assert len(rows(db)) == 3  # committed: the batch of two, and the one read before the failure
        with Session(engine) as session:
            counts = cli_index.Indexer(session, checker, settings.locations[0]).run()
        assert (counts.indexed, counts.skipped) == (2, 3)
    finally:
        checker.close()
        engine.dispose()


def test_the_code_id_lookup_finds_what_was_indexed(store, db, make_app, s3, memcached_clean):
    urls = f"{store['dir']},{store['s3_url']}"
    app = make_app(symbol_urls=urls, memcached_servers=memcached_clean.address)
    code_path = "/xul.dll/5f2e0b3c1a000/xul.sym"
    assert_download(app.get(code_path, status=404), 404, "not-found")  # cached: not found
    result = index(dict(store["env"], TECKEN_MEMCACHED_SERVERS=memcached_clean.address))
    assert result.returncode == 0, result.stderr
    # The index dropped the cached answer: no ?_refresh needed.
    r = app.get(code_path, status=302)
    assert_download(r, 302, "code-id", body="")
    assert r.headers["Location"] == f"http://symbols.example.com/xul.pdb/{ID1}/xul.sym"
    assert_download(app.get(f"/xul.pdb/{ID1}/xul.sym", status=302), 302, "found", cache="no-store")
    r = app.get("/firefox.exe/6A1B2C3D4000/firefox.sym?code_file=firefox.exe", status=302)
    assert (
        r.headers["Location"]
        == f"http://symbols.example.com/firefox.pdb/{ID3}/firefox.sym?code_file=firefox.exe"
    )
