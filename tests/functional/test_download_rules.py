"""Download decision steps 1-3 (SPEC §2, §4): ignore patterns, allowed extensions,
invalid characters, and rules changed in the database seen by a running app.

Real components: a local directory, moto's S3 server over HTTP, a real memcached,
a migrated database, the real command line and, for raw bytes, a real waitress.
"""

import time

import pytest
from sqlalchemy import text

from tests.conftest import (
    put_file,
)
from tests.functional.download_prelude import ALLOWED_EXTENSIONS, HOST, ZERO_ID, D, files_path
from tests.functional.download_support import (
    IGNORED_BODY,
    INVALID_NAME_BODY,
    NOT_FOUND_BODY,
    assert_download,
    poll,
    q,
)

# Nothing here depends on the database kind: run once, in the SQLite pass (.ci/test).
pytestmark = pytest.mark.database_independent


# =====================================================================================
# Step 1: ignore patterns (the seeded */*/file.ptr and the 33-zero debug id)
# =====================================================================================
@pytest.mark.parametrize(
    "path",
    [
        f"/xul.pdb/{D}/file.ptr",
        f"/whatever.dll/{D.lower()}/file.ptr",
        f"/try/xul.pdb/{D}/file.ptr",
        f"/xul.pdb/{ZERO_ID}/xul.sym",
        f"/try/xul.pdb/{ZERO_ID}/xul.sym",
        f"/xul.pdb/{ZERO_ID}/anything.exe",
    ],
)
def test_ignored(local, path):
    # Present in storage, and still never looked up.
    segs = path.split("/")[-3:]
    put_file(local.dir, "v1/" + "/".join([segs[0], segs[1].upper(), segs[2]]))
    r = local.get(path, status=404)
    assert_download(r, 404, "ignored", body=IGNORED_BODY)
    r = local.head(path, status=404)
    assert_download(r, 404, "ignored", body="")


@pytest.mark.parametrize("debugid", ["0" * 32, "0" * 34, "0" * 33 + "1", "1" + "0" * 32])
def test_not_quite_zero_debug_id_is_looked_up(local, debugid):
    r = local.get(f"/xul.pdb/{debugid}/xul.sym", status=404)
    assert_download(r, 404, "not-found", body=NOT_FOUND_BODY)


@pytest.mark.parametrize("filename", ["File.ptr", "file.ptr.sym", "xfile.ptr.sym"])
def test_file_ptr_pattern_is_exact(local, filename):
    r = local.get(f"/xul.pdb/{D}/{filename}", expect_errors=True)
    assert r.headers["X-Symbol-Lookup"] != "ignored"


@pytest.mark.parametrize(
    "path",
    [
        f"/x%7B.pdb/{D}/file.ptr",  # invalid '{' in the symbol, but ignored first
        f"/x{q('ü')}.pdb/{ZERO_ID}/x.sym",
        f"/xul.pdb/{ZERO_ID}/x%5E.sym",
        f"/x%25.pdb/{D}/file.ptr",
    ],
)
def test_ignore_beats_invalid_characters(local, path):
    assert_download(local.get(path, status=404), 404, "ignored", body=IGNORED_BODY)
    assert_download(local.head(path, status=404), 404, "ignored", body="")


# =====================================================================================
# Step 2: allowed extensions (case-sensitive endswith)
# =====================================================================================
@pytest.mark.parametrize(
    "filename",
    ["XUL.SYM", "xul.Sym", "xul.pdb", "xul.dll", "xul.exe", "xul.xxx", "xul.sym.bak", "xul", "sym"],
)
def test_extension_not_allowed(local, filename):
    put_file(local.dir, f"v1/xul.pdb/{D}/{filename}")  # present, never looked up
    r = local.get(f"/xul.pdb/{D}/{filename}", status=404)
    assert_download(r, 404, "extension-not-allowed", body=IGNORED_BODY)
    r = local.head(f"/xul.pdb/{D}/{filename}", status=404)
    assert_download(r, 404, "extension-not-allowed", body="")


@pytest.mark.parametrize(
    "path", [f"/x%7B.pdb/{D}/x.pdb", f"/x{q('ü')}.pdb/{D}/x.exe", f"/xul.pdb/{D}/x%7C.dll"]
)
def test_extension_beats_invalid_characters(local, path):
    assert_download(local.get(path, status=404), 404, "extension-not-allowed", body=IGNORED_BODY)


@pytest.mark.parametrize("ext", ALLOWED_EXTENSIONS)
def test_every_default_extension_is_allowed(local, ext):
    put_file(local.dir, f"v1/xul.pdb/{D}/xul{ext}", b"data" + ext.encode())
    r = local.get(f"/xul.pdb/{D}/xul{ext}", status=302)
    assert_download(r, 302, "found", body="")
    f = local.get(files_path(r.headers["Location"]), status=200)
    assert f.body == b"data" + ext.encode()
    assert_download(local.get(f"/xul.pdb/{D}/other{ext}", status=404), 404, "not-found", body=NOT_FOUND_BODY)


# =====================================================================================
# Step 3: invalid characters in symbol or filename
# =====================================================================================
INVALID_CHARS = list("\\^`><{}[]#%\"'~|") + [
    "\x00",
    "\x01",
    "\x09",
    "\x0a",
    "\x0d",
    "\x1b",
    "\x1f",
    "\x80",
    "\x9f",
    "\xa0",
    "\xe9",
    "ü",
    "\xff",
]


@pytest.mark.parametrize("char", INVALID_CHARS, ids=[f"U+{ord(c):04X}" for c in INVALID_CHARS])
@pytest.mark.parametrize("where", ["symbol", "filename"])
def test_invalid_name_characters(local, char, where):
    symbol, filename = "xul.pdb", "xul.sym"
    if where == "symbol":
        symbol = f"x{char}ul.pdb"
    else:
        filename = f"x{char}ul.sym"
    for path in (f"/{q(symbol)}/{D}/{q(filename)}", f"/try/{q(symbol)}/{D}/{q(filename)}"):
        r = local.get(path, status=400)
        assert_download(r, 400, "invalid-name", body=INVALID_NAME_BODY, cache="no-store")
        r = local.head(path, status=400)
        assert_download(r, 400, "invalid-name", body="", cache="no-store")


ALLOWED_ODD = ["汉", "⚡️", " ", "+", "\x7f", "\u0100", "@", "!", "$", "(", ")", "=", ";", ",", "&", "*", ":"]


@pytest.mark.parametrize("char", ALLOWED_ODD, ids=[f"U+{ord(c[0]):04X}" for c in ALLOWED_ODD])
def test_allowed_characters_reach_storage(local, char):
    symbol, filename = f"x{char}.pdb", f"y{char}.sym"
    path = f"/{q(symbol)}/{D}/{q(filename)}"
    r = local.get(path, status=404)
    assert_download(r, 404, "not-found", body=NOT_FOUND_BODY)
    put_file(local.dir, f"v1/{symbol}/{D}/{filename}", b"odd " + char.encode())
    r = local.get(path, status=302)
    assert_download(r, 302, "found", body="")
    assert r.headers["Location"] == f"{HOST}/__files__/0/v1/{q(symbol)}/{D}/{q(filename)}"
    assert local.get(files_path(r.headers["Location"]), status=200).body == b"odd " + char.encode()
    assert_download(local.head(path, status=200), 200, "found", body="")


# =====================================================================================
# Rules from the database, seen by a running app within 10 s
# =====================================================================================
def _lookup(app, path):
    return app.get(path, expect_errors=True).headers.get("X-Symbol-Lookup")


def test_new_ignore_pattern_applies_without_restart(local, db):
    path = f"/xul.pdb/{D}/blocked.sym"
    assert _lookup(local, path) == "not-found"
    engine = db.engine()
    try:
        with engine.begin() as c:
            c.execute(
                text(
                    "INSERT INTO ignore_pattern (pattern, enabled, note, created_by, created_at) "
                    "VALUES (:p, :e, :n, :by, CURRENT_TIMESTAMP)"
                ),
                {"p": "*/*/blocked.sym", "e": True, "n": "test", "by": "test"},
            )
        start = time.monotonic()
        assert poll(lambda: _lookup(local, path) == "ignored", timeout=10)
        assert time.monotonic() - start < 10
        r = local.get(path, status=404)
        assert_download(r, 404, "ignored", body=IGNORED_BODY)
        assert _lookup(local, f"/try/xul.pdb/{D}/blocked.sym") == "ignored"
        # Disabled patterns are skipped.
        with engine.begin() as c:
            c.execute(
                text("UPDATE ignore_pattern SET enabled = :f WHERE pattern = :p"),
                {"f": False, "p": "*/*/blocked.sym"},
            )
        assert poll(lambda: _lookup(local, path) == "not-found", timeout=10)
    finally:
        engine.dispose()


def test_ignore_pattern_matches_debug_id_as_requested(local, db):
    engine = db.engine()
    try:
        with engine.begin() as c:
            c.execute(
                text(
                    "INSERT INTO ignore_pattern (pattern, enabled, note, created_by, created_at) "
                    "VALUES (:p, :e, '', 'test', CURRENT_TIMESTAMP)"
                ),
                {"p": "*/abc*", "e": True},  # '*' also matches '/'
            )
        assert poll(lambda: _lookup(local, "/xul.pdb/abcdef/xul.sym") == "ignored")
        assert _lookup(local, "/xul.pdb/ABCDEF/xul.sym") == "not-found"  # fnmatchcase
        assert _lookup(local, "/x.pdb/abc/z.sym") == "ignored"
    finally:
        engine.dispose()


def test_allowed_extension_removed_and_added_without_restart(local, db):
    put_file(local.dir, f"v1/xul.pdb/{D}/xul.dl_")
    assert _lookup(local, f"/xul.pdb/{D}/xul.dl_") == "found"
    assert _lookup(local, f"/xul.pdb/{D}/xul.foo") == "extension-not-allowed"
    engine = db.engine()
    try:
        with engine.begin() as c:
            c.execute(text("DELETE FROM allowed_extension WHERE extension = '.dl_'"))
            c.execute(
                text(
                    "INSERT INTO allowed_extension (extension, created_by, created_at) "
                    "VALUES ('.foo', 'test', CURRENT_TIMESTAMP)"
                )
            )
        assert poll(lambda: _lookup(local, f"/xul.pdb/{D}/xul.dl_") == "extension-not-allowed")
        assert _lookup(local, f"/xul.pdb/{D}/xul.foo") == "not-found"
        assert _lookup(local, f"/xul.pdb/{D}/xul.FOO") == "extension-not-allowed"
    finally:
        with engine.begin() as c:
            c.execute(text("DELETE FROM allowed_extension WHERE extension IN ('.dl_', '.foo')"))
            c.execute(
                text(
                    "INSERT INTO allowed_extension (extension, created_by, created_at) "
                    "VALUES ('.dl_', 'migration', CURRENT_TIMESTAMP)"
                )
            )
        engine.dispose()
    assert poll(lambda: _lookup(local, f"/xul.pdb/{D}/xul.dl_") == "found")


def test_empty_allow_list_allows_nothing(local, db):
    engine = db.engine()
    try:
        with engine.begin() as c:
            saved = c.execute(text("SELECT extension FROM allowed_extension")).scalars().all()
            c.execute(text("DELETE FROM allowed_extension"))
        assert poll(lambda: _lookup(local, f"/xul.pdb/{D}/xul.sym") == "extension-not-allowed")
        # The ignore patterns still come first.
        assert _lookup(local, f"/xul.pdb/{D}/file.ptr") == "ignored"
    finally:
        with engine.begin() as c:
            for ext in saved:
                c.execute(
                    text(
                        "INSERT INTO allowed_extension (extension, created_by, created_at) "
                        "VALUES (:e, 'migration', CURRENT_TIMESTAMP)"
                    ),
                    {"e": ext},
                )
        engine.dispose()
    assert poll(lambda: _lookup(local, f"/xul.pdb/{D}/xul.sym") == "not-found")
