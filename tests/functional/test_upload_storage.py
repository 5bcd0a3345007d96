"""Uploads into real storage (SPEC §9 "Keys and writes", "Right at once"): moto's S3
server over HTTP (private, public and try buckets), local directories, real memcached
shared by two app instances."""

import gzip
import hashlib

import pytest

from tests.conftest import PRIVATE_BUCKET, PUBLIC_BUCKET, TRY_BUCKET
from tests.support.uploads import make_token, make_zip, post_upload, sym_member

# The database kind changes nothing here: run once, in the SQLite pass (.ci/test).
pytestmark = pytest.mark.database_independent

DEBUG_ID = "44E4EC8C2F41492B9369D6B9A059577C2"
SYM_PATH = f"xul.pdb/{DEBUG_ID}/xul.sym"


def s3_app(make_app, s3, memcached=None, **overrides):
    settings = dict(
        symbol_urls=f"{s3.url(PRIVATE_BUCKET)},{s3.url(PUBLIC_BUCKET, public=True)}",
        try_symbol_url=s3.url(TRY_BUCKET),
    )
    if memcached is not None:
        settings["memcached_servers"] = memcached.address
    settings.update(overrides)
    return make_app(**settings)


def head(s3, bucket, key):
    return s3.client().head_object(Bucket=bucket, Key=key)


def body(s3, bucket, key):
    return s3.client().get_object(Bucket=bucket, Key=key)["Body"].read()


def test_a_sym_is_stored_gzipped_with_metadata_and_found_by_download(make_app, s3, db):
    app = s3_app(make_app, s3)
    token = make_token(db)
    name, content = sym_member("xul.pdb", DEBUG_ID)
    jpeg = (f"flag/{DEBUG_ID}/flag.dl_", b"\x89 binary content")
    response = post_upload(app, make_zip([(name, content), jpeg]), token, status=201)
    assert sorted(f["status"] for f in response.json["upload"]["files"]) == ["stored", "stored"]
    meta = head(s3, PRIVATE_BUCKET, f"v1/{SYM_PATH}")
    assert meta["ContentEncoding"] == "gzip"
    assert meta["ContentType"] == "text/plain; charset=utf-8"
    assert meta["Metadata"] == {
        "sha256": hashlib.sha256(content).hexdigest(),
        "original_size": str(len(content)),
        "original_md5_hash": hashlib.md5(content).hexdigest(),
    }
    assert gzip.decompress(body(s3, PRIVATE_BUCKET, f"v1/{SYM_PATH}")) == content
    raw = head(s3, PRIVATE_BUCKET, f"v1/flag/{DEBUG_ID}/flag.dl_")
    assert raw["ContentType"] == "application/octet-stream" and "ContentEncoding" not in raw
    assert body(s3, PRIVATE_BUCKET, f"v1/flag/{DEBUG_ID}/flag.dl_") == jpeg[1]
    found = app.get(f"/{SYM_PATH}", status=302)
    assert found.headers["Location"].startswith(f"{s3.endpoint}/{PRIVATE_BUCKET}/v1/{SYM_PATH}?")


def test_a_cached_not_found_turns_into_302_at_once_in_every_process(make_app, s3, db, memcached_clean):
    uploader = s3_app(make_app, s3, memcached_clean)
    other = s3_app(make_app, s3, memcached_clean)
    for app in (uploader, other):
        miss = app.get(f"/{SYM_PATH}", status=404)
        assert miss.headers["X-Symbol-Lookup"] == "not-found"
        app.get(f"/try/{SYM_PATH}", status=404)
    # Both processes now hold a cached "not found" (memcached); the upload corrects it.
    post_upload(uploader, make_zip([sym_member("xul.pdb", DEBUG_ID)]), make_token(db), status=201)
    for app in (uploader, other):
        assert app.get(f"/{SYM_PATH}", status=302).headers["X-Symbol-Lookup"] == "found"
        assert app.get(f"/try/{SYM_PATH}", status=302).headers["X-Symbol-Lookup"] == "found"


def test_the_in_process_cache_is_corrected_in_the_uploading_process(make_app, s3, db):
    app = s3_app(make_app, s3)
    app.get(f"/{SYM_PATH}", status=404)
    post_upload(app, make_zip([sym_member("xul.pdb", DEBUG_ID)]), make_token(db), status=201)
    app.get(f"/{SYM_PATH}", status=302)


def test_identical_bytes_are_skipped_and_a_different_file_is_overwritten(make_app, s3, db):
    app = s3_app(make_app, s3)
    token = make_token(db)
    name, content = sym_member("xul.pdb", DEBUG_ID)
    dl = f"flag/{DEBUG_ID}/flag.dl_"
    post_upload(app, make_zip([(name, content), (dl, b"first")]), token, status=201)
    before = head(s3, PRIVATE_BUCKET, f"v1/{SYM_PATH}")["LastModified"]
    second = post_upload(app, make_zip([(name, content), (dl, b"other")]), token, status=201).json["upload"]
    statuses = {f["key"]: f["status"] for f in second["files"]}
    assert statuses == {SYM_PATH: "skipped", dl: "stored"}
    assert second["skipped_keys"] == [SYM_PATH]
    assert body(s3, PRIVATE_BUCKET, f"v1/{dl}") == b"other"
    assert head(s3, PRIVATE_BUCKET, f"v1/{SYM_PATH}")["LastModified"] == before


def test_a_bucket_written_by_tecken_is_skipped_by_original_size_and_md5(make_app, s3, db):
    app = s3_app(make_app, s3)
    name, content = sym_member("xul.pdb", DEBUG_ID)
    # As Tecken writes: gzip with a name and mtime, only original_size and original_md5_hash.
    s3.client().put_object(
        Bucket=PRIVATE_BUCKET,
        Key=f"v1/{SYM_PATH}",
        Body=gzip.compress(content, mtime=12345),
        ContentEncoding="gzip",
        Metadata={"original_size": str(len(content)), "original_md5_hash": hashlib.md5(content).hexdigest()},
    )
    upload = post_upload(app, make_zip([(name, content)]), make_token(db), status=201).json["upload"]
    assert upload["skipped_keys"] == [SYM_PATH]


def test_a_try_upload_goes_to_the_try_bucket_and_skips_what_regular_holds(make_app, s3, db):
    app = s3_app(make_app, s3)
    token = make_token(db, permissions=("upload", "upload_try"))
    name, content = sym_member("xul.pdb", DEBUG_ID)
    other = sym_member("js.pdb", DEBUG_ID)
    post_upload(app, make_zip([(name, content)]), token, status=201)
    upload = post_upload(app, make_zip([(name, content), other]), token, fields=[("try", "1")], status=201)
    statuses = {f["key"]: f["status"] for f in upload.json["upload"]["files"]}
    assert statuses == {SYM_PATH: "skipped", other[0]: "stored"}
    keys = [o["Key"] for o in s3.client().list_objects_v2(Bucket=TRY_BUCKET).get("Contents", [])]
    assert keys == [f"v1/{other[0]}"]
    app.get(f"/{other[0]}", status=404)  # a try upload never shadows (or fills) regular
    app.get(f"/try/{other[0]}", status=302)


def test_upload_url_names_the_public_bucket_written_through_boto3(make_app, s3, db):
    app = s3_app(make_app, s3, upload_url=s3.url(PUBLIC_BUCKET))
    post_upload(app, make_zip([sym_member("xul.pdb", DEBUG_ID)]), make_token(db), status=201)
    head(s3, PUBLIC_BUCKET, f"v1/{SYM_PATH}")
    assert (
        app.get(f"/{SYM_PATH}", status=302)
        .headers["Location"]
        .startswith(f"{s3.endpoint}/{PUBLIC_BUCKET}/v1/{SYM_PATH}")
    )


def test_a_storage_failure_is_503_and_the_upload_row_says_why(make_app, s3, db):
    from tecken_pyramid.models import Upload
    from tests.support.uploads import rows

    app = s3_app(make_app, s3, upload_url=s3.url("no-such-bucket"), symbol_urls=s3.url("no-such-bucket"))
    response = post_upload(app, make_zip([sym_member("xul.pdb", DEBUG_ID)]), make_token(db), status=503)
    assert response.headers["Retry-After"] == "30"
    assert "retry resumes" in response.json["error"]
    (upload,) = rows(db, Upload)
    assert upload.status == "failed" and "xul.sym" in upload.error


@pytest.mark.parametrize("files", [2])
def test_local_directory_writes_are_plain_files(local, db, files):
    name, content = sym_member("xul.pdb", DEBUG_ID)
    post_upload(local, make_zip([(name, content)]), make_token(db), status=201)
    assert (local.dir / "v1" / SYM_PATH).read_bytes() == content
    assert local.get(f"/{SYM_PATH}", status=302).follow().body == content


def test_code_id_lookup_finds_an_upload_at_once_even_after_a_cached_miss(make_app, s3, db, memcached_clean):
    uploader = s3_app(make_app, s3, memcached_clean)
    other = s3_app(make_app, s3, memcached_clean)
    code_path = "/xul.dll/5F3A1B2C9000/xul.sym"
    for app in (uploader, other):  # cached: not found, and no code-id row either
        assert app.get(code_path, status=404).headers["X-Symbol-Lookup"] == "not-found"
    member = sym_member("xul.pdb", DEBUG_ID, code_id="5f3a1b2c9000", code_file="xul.dll")
    post_upload(uploader, make_zip([member]), make_token(db), status=201)
    for app in (uploader, other):
        found = app.get(code_path + "?code_file=xul.dll", status=302)
        assert found.headers["X-Symbol-Lookup"] == "code-id"
        assert found.headers["Location"] == f"http://symbols.example.com/{SYM_PATH}?code_file=xul.dll"
