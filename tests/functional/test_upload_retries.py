"""Uploads that fail part-way, retries, and identical uploads at once (SPEC §9
"Idempotent retries", "Records"), against a real local directory and a real waitress."""

import os
import threading

import requests

from tecken_pyramid.models import SymbolFile, Upload, UploadFile
from tests.support.uploads import make_token, make_zip, post_upload, rows, sym_member

DEBUG_ID = "44E4EC8C2F41492B9369D6B9A059577C2"


def members(n):
    return [sym_member(f"lib{i}.pdb", DEBUG_ID) for i in range(n)]


def test_a_retry_after_a_storage_failure_part_way_completes_the_records_without_rewriting(local, db):
    token = make_token(db)
    archive = make_zip(members(6))
    # lib3.pdb exists as a regular file: its member's directory cannot be made (a real
    # storage failure, whoever runs the test; chmod would not stop root).
    blocker = local.dir / "v1" / "lib3.pdb"
    blocker.parent.mkdir(parents=True)
    blocker.write_bytes(b"in the way")
    failed = post_upload(local, archive, token, status=503)
    assert failed.headers["Retry-After"] == "30"
    assert "lib3.pdb" in failed.json["error"]
    (upload,) = rows(db, Upload)
    assert upload.status == "failed" and "lib3.pdb" in upload.error
    stored_first = {f.key for f in rows(db, UploadFile) if f.status == "stored"}
    assert stored_first and f"lib3.pdb/{DEBUG_ID}/lib3.sym" not in stored_first
    # Every member that reached storage has its record (nothing stored is unrecorded).
    on_disk = {
        f"{name}/{DEBUG_ID}/{name[:-4]}.sym"
        for name in os.listdir(local.dir / "v1")
        if (local.dir / "v1" / name).is_dir()
    }
    assert on_disk == stored_first
    inodes = {k: os.stat(local.dir / "v1" / k).st_mtime_ns for k in stored_first}

    blocker.unlink()
    done = post_upload(local, archive, token, status=201).json["upload"]
    assert done["id"] == upload.id and done["status"] == "complete"
    assert len(done["files"]) == 6 and {f["status"] for f in done["files"]} == {"stored"}
    assert {k: os.stat(local.dir / "v1" / k).st_mtime_ns for k in stored_first} == inodes  # not rewritten
    assert len(rows(db, SymbolFile)) == 6
    (upload,) = rows(db, Upload)
    assert (upload.status, upload.files_stored, upload.error) == ("complete", 6, None)


def test_two_identical_uploads_at_once_make_one_set_of_writes(local, db, serve):
    token = make_token(db)
    archive = make_zip(members(40))
    served = serve(local)
    answers = []

    def send():
        answers.append(
            requests.post(
                f"{served.url}/upload/",
                files={"symbols.zip": ("symbols.zip", archive)},
                headers={"Auth-Token": token},
                timeout=60,
            )
        )

    threads = [threading.Thread(target=send) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [a.status_code for a in answers] == [201, 201], [a.text for a in answers]
    first, second = (a.json()["upload"] for a in answers)
    assert first["id"] == second["id"]
    assert {f["status"] for f in first["files"]} == {"stored"} == {f["status"] for f in second["files"]}
    assert len(rows(db, Upload)) == 1 and len(rows(db, UploadFile)) == 40


def test_a_retry_while_the_first_is_still_running_answers_409_after_the_wait(make_app, symbols_dir, db):
    app = make_app(symbol_urls=str(symbols_dir), upload_wait_seconds="0.3")
    token = make_token(db)
    archive = make_zip(members(1))
    post_upload(app, archive, token, status=201)
    engine = db.engine()
    from sqlalchemy import update

    from tecken_pyramid.models import utcnow

    with engine.begin() as connection:  # as if another request were storing it right now
        connection.execute(update(Upload).values(status="pending", completed_at=None, updated_at=utcnow()))
    engine.dispose()
    response = post_upload(app, archive, token, status=409)
    assert response.headers["Retry-After"] == "30"


def test_an_abandoned_pending_upload_is_taken_over(make_app, symbols_dir, db):
    app = make_app(symbol_urls=str(symbols_dir), upload_stale_seconds="1")
    token = make_token(db)
    archive = make_zip(members(2))
    post_upload(app, archive, token, status=201)
    import datetime

    from sqlalchemy import update

    engine = db.engine()
    old = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=5)
    with engine.begin() as connection:  # its process died part-way
        connection.execute(update(Upload).values(status="pending", completed_at=None, updated_at=old))
    engine.dispose()
    again = post_upload(app, archive, token, status=201).json["upload"]
    assert again["status"] == "complete"
