"""POST /upload/ (SPEC §9): methods, tokens and their 403s, archive checks and their 400s.

Real components: the app over a local directory (and SQLite or PostgreSQL) through
WebTest; the storage writes themselves are covered in test_upload_storage.py."""

import datetime
import io
import os
import zipfile

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from tecken_pyramid.models import ApiToken, Upload, UploadFile
from tests.support.uploads import make_token, make_zip, post_upload, rows, sym_member

DEBUG_ID = "44E4EC8C2F41492B9369D6B9A059577C2"


@pytest.fixture
def app(local):
    return local


def stored_files(directory):
    found = []
    for root, _dirs, files in os.walk(directory):
        found += [os.path.relpath(os.path.join(root, f), directory) for f in files]
    return sorted(found)


# -- methods -----------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/upload/", "/upload"])
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_other_methods_are_the_json_405_allowing_post(app, path, method):
    response = app.request(path, method=method, status=405)
    assert response.headers["Allow"] == "POST"
    assert response.json == {"error": f"Method Not Allowed ({method}): {path}"}


def test_upload_without_a_slash_is_answered_never_redirected(app, db):
    token = make_token(db)
    archive = make_zip([sym_member("xul.pdb", DEBUG_ID)])
    response = app.post(
        "/upload",
        upload_files=[("symbols.zip", "symbols.zip", archive)],
        headers={"Auth-Token": token},
        status=201,
    )
    assert response.json["upload"]["status"] == "complete"


# -- tokens ------------------------------------------------------------------------------------
def test_no_token_is_403(app):
    response = post_upload(app, make_zip([sym_member("xul.pdb", DEBUG_ID)]), None, status=403)
    assert response.json == {"error": "This requires an Auth-Token to authenticate the request"}
    assert response.headers["Vary"] == "Auth-Token"


@pytest.mark.parametrize("token", ["invalidtoken", "0" * 32, "0" * 32 + "-label", " "])
def test_unknown_token_is_403_not_matched(app, token):
    response = post_upload(app, b"x", token, status=403)
    expected = (
        "This requires an Auth-Token to authenticate the request"
        if not token.strip()
        else ("API Token not matched")
    )
    assert response.json == {"error": expected}


def test_a_token_with_a_label_suffix_is_accepted(app, db):
    token = make_token(db)
    archive = make_zip([sym_member("xul.pdb", DEBUG_ID)])
    response = post_upload(app, archive, f"{token}-uploadtry-20230913", status=201)
    assert response.headers["Vary"] == "Auth-Token"
    tokens = rows(db, ApiToken)
    assert tokens[0].last_used_at is not None
    assert token not in repr([t.__dict__ for t in tokens])  # only a hash is stored


def test_expired_revoked_inactive_and_powerless_tokens(app, db):
    archive = make_zip([sym_member("xul.pdb", DEBUG_ID)])
    expired = make_token(db, "a@example.com", expires_days=1)
    revoked = make_token(db, "b@example.com")
    inactive = make_token(db, "c@example.com", active=False)
    powerless = make_token(db, "d@example.com")
    engine = db.engine()
    with Session(engine) as session, session.begin():
        past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=1)
        by_hint = {t.hint: t for t in session.query(ApiToken)}
        by_hint[expired[:4]].expires_at = past
        by_hint[revoked[:4]].revoked_at = past
        by_hint[powerless[:4]].can_upload = False
    engine.dispose()
    cases = [
        (expired, "API Token found but expired"),
        (revoked, "API Token not matched"),
        (inactive, "API Token matched but user not active"),
        (powerless, "Forbidden"),
    ]
    for token, message in cases:
        assert post_upload(app, archive, token, status=403).json == {"error": message}
    assert rows(db, Upload) == []


def test_a_regular_only_token_asking_for_try_is_forbidden(app, db):
    token = make_token(db, permissions=("upload",))
    archive = make_zip([sym_member("xul.pdb", DEBUG_ID)])
    response = post_upload(app, archive, token, fields=[("try", "1")], status=403)
    assert response.json == {"error": "Forbidden"}
    assert stored_files(app.dir) == []


@pytest.mark.parametrize("value", ["", "0", "false", "No", "off"])
def test_try_field_values_that_mean_regular(app, db, value):
    token = make_token(db, permissions=("upload", "upload_try"))
    archive = make_zip([sym_member("xul.pdb", DEBUG_ID)])
    response = post_upload(app, archive, token, fields=[("try", value)], status=201)
    assert response.json["upload"]["try_symbols"] is False
    assert stored_files(app.dir) == [f"v1/xul.pdb/{DEBUG_ID}/xul.sym"]


def test_a_try_only_token_always_uploads_to_try(app, db):
    token = make_token(db, permissions=("upload_try",))
    archive = make_zip([sym_member("xul.pdb", DEBUG_ID)])
    response = post_upload(app, archive, token, fields=[("try", "")], status=201)
    assert response.json["upload"]["try_symbols"] is True
    assert stored_files(app.dir) == [f"try/v1/xul.pdb/{DEBUG_ID}/xul.sym"]
    # Never shadowing regular files: a regular download does not find it; try does.
    app.get(f"/xul.pdb/{DEBUG_ID}/xul.sym", status=404)
    app.get(f"/try/xul.pdb/{DEBUG_ID}/xul.sym", status=302)
    app.get(f"/xul.pdb/{DEBUG_ID}/xul.sym?try", status=302)


# -- the archive -------------------------------------------------------------------------------
def test_no_file_part_is_400(app, db):
    token = make_token(db)
    response = app.post("/upload/", params={"something": "else"}, headers={"Auth-Token": token}, status=400)
    assert response.json == {"error": "Must be multipart form data with at least one file"}


def test_an_archive_name_not_ending_in_zip_is_400(app, db):
    token = make_token(db)
    archive = make_zip([sym_member("xul.pdb", DEBUG_ID)])
    response = post_upload(app, archive, token, name="myfile.rar", status=400)
    assert response.json == {"error": 'Unrecognized archive file extension ".rar"'}


def test_the_field_name_or_the_file_name_may_carry_the_zip_extension(app, db):
    token = make_token(db)
    archive = make_zip([sym_member("xul.pdb", DEBUG_ID)])
    app.post(
        "/upload/", upload_files=[("file", "Symbols.ZIP", archive)], headers={"Auth-Token": token}, status=201
    )


def bad_archives():
    good = sym_member("xul.pdb", DEBUG_ID)
    encrypted = bytearray(make_zip([good], zipfile.ZIP_STORED))
    encrypted[6] |= 0x1  # the local header's flag bits
    cd = encrypted.rfind(b"PK\x01\x02")
    encrypted[cd + 8] |= 0x1  # and the central directory's
    link = io.BytesIO()
    with zipfile.ZipFile(link, "w") as zf:
        info = zipfile.ZipInfo(f"xul.pdb/{DEBUG_ID}/xul.sym")
        info.external_attr = 0o120777 << 16
        zf.writestr(info, "/etc/passwd")
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"xul.pdb/{DEBUG_ID}/xul.sym", good[1] + b"\0" * (20 * 1024 * 1024))
    return {
        "empty body": (b"", "File is not a zip file"),
        "not a zip": (b"this is not a zip file at all" * 4, "File is not a zip file"),
        "empty zip": (make_zip([]), "holds no file to store"),
        "only ignored": (
            make_zip([("build-symbols.txt", b"x"), (f"a.pdb/{DEBUG_ID}/a.pdb", b"x")]),
            "holds no file to store",
        ),
        "top-level file": (make_zip([good, ("xul.sym", b"MODULE")]), "'xul.sym'"),
        "dot-dot": (make_zip([good, (f"../{DEBUG_ID}/x.sym", b"x")]), "'..'"),
        "absolute": (make_zip([good, (f"/xul.pdb/{DEBUG_ID}/xul.sym", b"x")]), "absolute"),
        "backslash": (make_zip([good, (f"xul.pdb\\{DEBUG_ID}\\xul.sym", b"x")]), "backslash"),
        "invalid character": (make_zip([good, (f"xpcfoo.dbg/{DEBUG_ID}/p%eter.sym", b"x")]), "p%eter.sym"),
        "not hex": (make_zip([good, ("xul.pdb/NOTHEX/xul.sym", b"x")]), "hexadecimal"),
        "module mismatch": (
            make_zip([(f"xul.pdb/{DEBUG_ID}/xul.sym", b"MODULE windows x86 ABC xul.pdb\n")]),
            "debug id",
        ),
        "module file mismatch": (
            make_zip(
                [(f"xul.pdb/{DEBUG_ID}/xul.sym", f"MODULE windows x86 {DEBUG_ID} other.pdb\n".encode())]
            ),
            "debug file",
        ),
        "no module line": (make_zip([(f"xul.pdb/{DEBUG_ID}/xul.sym", b"garbage\n")]), "MODULE"),
        "duplicates": (make_zip([good, (good[0], good[1] + b"different")]), "different contents"),
        "encrypted": (bytes(encrypted), "encrypted"),
        "symlink": (link.getvalue(), "symbolic link"),
        "zip bomb": (bomb.getvalue(), "200:1"),
        "snippet": (make_zip([good, (f"qcom/proprietary/{DEBUG_ID}/x.sym", b"x")]), "qcom/proprietary"),
    }


@pytest.mark.parametrize("case", sorted(bad_archives()))
def test_a_bad_archive_is_a_400_naming_the_problem_and_nothing_is_stored(app, db, case):
    archive, expected = bad_archives()[case]
    token = make_token(db)
    response = post_upload(app, archive, token, status=400)
    assert expected in response.json["error"], response.json
    assert set(response.json) == {"error"}
    assert stored_files(app.dir) == []
    assert rows(db, Upload) == [] and rows(db, UploadFile) == []


def test_many_tiny_members_over_the_limit_are_refused_from_the_directory(make_app, symbols_dir, db):
    app = make_app(symbol_urls=str(symbols_dir), upload_max_files="100")
    token = make_token(db)
    archive = make_zip([(f"m{i}.pdb/{DEBUG_ID}/m{i}.sym", b"") for i in range(10_000)], zipfile.ZIP_STORED)
    response = post_upload(app, archive, token, status=400)
    assert "10000 members, more than the limit of 100" in response.json["error"]


def test_a_content_length_over_the_limit_is_413_before_reading(make_app, symbols_dir, db):
    app = make_app(symbol_urls=str(symbols_dir), upload_max_bytes="1000")
    token = make_token(db)

    class Unreadable(io.RawIOBase):
        def read(self, *_a):
            raise AssertionError("the body was read")

        readline = readinto = read

    from webob import Request

    request = Request.blank(
        "/upload/",
        method="POST",
        headers={"Auth-Token": token, "Content-Type": "multipart/form-data; boundary=x"},
    )
    request.environ.update(CONTENT_LENGTH="5000", REMOTE_ADDR="127.0.0.1")
    request.environ["wsgi.input"] = Unreadable()
    response = request.get_response(app.app)
    assert response.status_int == 413
    assert response.json == {"error": "The upload is larger than the limit of 1000 bytes"}


def test_a_lower_case_debug_id_is_stored_upper_cased_and_found(app, db):
    token = make_token(db)
    archive = make_zip([(f"xul.pdb/{DEBUG_ID.lower()}/xul.sym", sym_member("xul.pdb", DEBUG_ID)[1])])
    response = post_upload(app, archive, token, status=201)
    assert [f["key"] for f in response.json["upload"]["files"]] == [f"xul.pdb/{DEBUG_ID}/xul.sym"]
    app.get(f"/xul.pdb/{DEBUG_ID}/xul.sym", status=302)


def test_database_unreachable_is_503_before_anything_is_stored(make_app, symbols_dir, db, tmp_path):
    app = make_app(symbol_urls=str(symbols_dir))
    token = make_token(db)
    engine = app.registry.dbengine
    engine.dispose()
    # Point the app's engine at a database that cannot be opened.
    from tecken_pyramid.db import make_engine

    broken = make_engine(f"sqlite:///{tmp_path}/missing-dir/x/y.sqlite3")
    app.registry.dbsession_factory.configure(bind=broken)
    archive = make_zip([sym_member("xul.pdb", DEBUG_ID)])
    response = post_upload(app, archive, token, status=503)
    assert response.headers["Retry-After"] == "30"
    assert "database" in response.json["error"].lower()
    assert stored_files(symbols_dir) == []


def test_rows_record_the_upload_and_its_members(app, db):
    token = make_token(db)
    archive = make_zip(
        [
            sym_member("xul.pdb", DEBUG_ID, code_id="5F3A1B2C9000", code_file="xul.dll"),
            (f"flag/{DEBUG_ID}/flag.jpeg", b"\xff\xd8 not allowed for download"),
            ("build-symbols.txt", b"ignored silently"),
        ]
    )
    body = post_upload(app, archive, token, status=201).json["upload"]
    assert body["user"] == "uploader@example.com"
    assert body["status"] == "complete" and body["completed_at"].endswith("Z")
    assert body["ignored_keys"] == [f"flag/{DEBUG_ID}/flag.jpeg"]
    assert body["skipped_keys"] == []
    assert {f["key"]: f["status"] for f in body["files"]} == {
        f"xul.pdb/{DEBUG_ID}/xul.sym": "stored",
        f"flag/{DEBUG_ID}/flag.jpeg": "ignored",
    }
    (upload,) = rows(db, Upload)
    assert (upload.files_stored, upload.files_ignored, upload.status) == (1, 1, "complete")
    from tecken_pyramid.models import SymbolFile

    (symbol_file,) = rows(db, SymbolFile)
    assert (symbol_file.code_file, symbol_file.code_id, symbol_file.os) == (
        "xul.dll",
        "5F3A1B2C9000",
        "windows",
    )
    assert symbol_file.upload_id == upload.id and symbol_file.key == f"v1/xul.pdb/{DEBUG_ID}/xul.sym"


def test_a_completed_archive_sent_again_answers_the_same_upload_without_storage_calls(app, db):
    token = make_token(db)
    archive = make_zip([sym_member("xul.pdb", DEBUG_ID)])
    first = post_upload(app, archive, token, status=201).json["upload"]
    # Remove the stored file behind the service's back: a second storage call would rewrite it.
    os.unlink(os.path.join(app.dir, f"v1/xul.pdb/{DEBUG_ID}/xul.sym"))
    again = post_upload(app, archive, token, status=201).json["upload"]
    assert again["id"] == first["id"] and again["files"] == first["files"]
    assert stored_files(app.dir) == []
    assert len(rows(db, Upload)) == 1


def test_a_failed_upload_row_is_resumed_by_the_retry(app, db):
    token = make_token(db)
    archive = make_zip([sym_member("xul.pdb", DEBUG_ID)])
    first = post_upload(app, archive, token, status=201).json["upload"]
    engine = db.engine()
    with engine.begin() as connection:
        connection.execute(update(Upload).values(status="failed", completed_at=None))
        connection.execute(UploadFile.__table__.delete())
    engine.dispose()
    again = post_upload(app, archive, token, status=201).json["upload"]
    assert again["id"] == first["id"]
    assert [f["status"] for f in again["files"]] == ["skipped"]  # already stored: not written again


def test_uploads_beyond_the_per_process_concurrency_are_503_with_retry_after(make_app, symbols_dir, db):
    app = make_app(symbol_urls=str(symbols_dir), upload_concurrency="1")
    token = make_token(db)
    archive = make_zip([sym_member("xul.pdb", DEBUG_ID)])
    with app.registry.uploads.slot() as taken:  # another upload holds the only slot
        assert taken
        response = post_upload(app, archive, token, status=503)
    assert response.headers["Retry-After"] == "30"
    assert response.json == {"error": "Too many uploads in progress on this server; retry later"}
    post_upload(app, archive, token, status=201)  # the slot is free again


def test_a_truncated_body_is_a_400_and_nothing_is_stored(app, db):
    from webob import Request

    token = make_token(db)
    archive = make_zip([sym_member("xul.pdb", DEBUG_ID)])
    boundary = "cut"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="symbols.zip"; filename="symbols.zip"\r\n\r\n'
    ).encode() + archive
    request = Request.blank(
        "/upload/",
        method="POST",
        headers={"Auth-Token": token, "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    request.environ.update(CONTENT_LENGTH=str(len(body) + 500), REMOTE_ADDR="127.0.0.1")
    request.environ["wsgi.input"] = io.BytesIO(body[: len(body) // 2])
    response = request.get_response(app.app)
    assert response.status_int == 400
    assert "ended after" in response.json["error"]
    assert stored_files(app.dir) == [] and rows(db, Upload) == []
