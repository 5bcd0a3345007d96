"""The storage write side's shared helpers (tecken_pyramid/storage/writes.py)."""

import gzip
import os

import boto3.exceptions
import botocore.exceptions
import pytest

from tecken_pyramid import locations
from tecken_pyramid.storage.s3_writes import list_prefix
from tecken_pyramid.storage.writes import (
    StorageWriteError,
    is_gzipped_key,
    metadata,
    one_line,
    spool,
    storage_error,
)


def chunked(content, size):
    return lambda: (content[i : i + size] for i in range(0, len(content), size))


@pytest.mark.parametrize(
    ("key", "gzipped"),
    [
        ("v1/a.pdb/ABC/a.sym", True),
        ("v1/a.pdb/ABC/A.SYM", True),
        ("a.sym/ABC/a.pdb", False),
        ("x.sym.gz", False),
    ],
)
def test_only_sym_filenames_are_gzipped(key, gzipped):
    assert is_gzipped_key(key) is gzipped


def test_spooled_gzip_is_the_same_bytes_however_the_content_is_chunked(tmp_path):
    content = b"".join(b"FUNC %x 10 0 f%d\n" % (i, i) for i in range(200_000)) + os.urandom(100_000)
    outputs = []
    for size in (7, 4096, 1024 * 1024, len(content)):
        with spool(chunked(content, size), size=len(content), gzipped=True, directory=str(tmp_path)) as f:
            outputs.append(f.read())
    assert len(set(outputs)) == 1
    assert gzip.decompress(outputs[0]) == content
    assert outputs[0][:8] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00"  # no file name (flags 0), mtime 0
    assert os.listdir(tmp_path) == []  # anonymous: nothing to clean up, even after a crash


def test_spool_checks_the_announced_size():
    with pytest.raises(StorageWriteError, match="is 3 bytes, not the 4 announced"):
        spool(chunked(b"abc", 1), size=4, gzipped=False)
    with spool(chunked(b"abc", 2), size=3, gzipped=False) as f:
        assert f.read() == b"abc"


def test_metadata_uses_tecken_names():
    assert metadata(12, "aa", "bb") == {"sha256": "aa", "original_size": "12", "original_md5_hash": "bb"}


def test_list_prefix_is_under_the_location_prefix():
    loc = locations.parse("http://h/bucket", here="/", file_prefix="v1", index="0")
    assert list_prefix(loc, "") == "v1/"
    assert list_prefix(loc, "xul.pdb") == "v1/xul.pdb"
    assert list_prefix(loc, "/xul.pdb/") == "v1/xul.pdb/"
    bare = locations.parse("http://h/bucket", here="/", file_prefix="", index="0")
    assert list_prefix(bare, "") == "" and list_prefix(bare, "a") == "a"


def test_errors_are_one_line_and_say_whether_to_retry():
    assert one_line("a\nb\r\n  c") == "a b c"
    assert len(one_line("x" * 2000)) == 500
    throttled = botocore.exceptions.ClientError(
        {
            "Error": {"Code": "SlowDown", "Message": "Please\nreduce"},
            "ResponseMetadata": {"HTTPStatusCode": 503},
        },
        "PutObject",
    )
    error = storage_error(throttled, "PUT k")
    assert str(error) == "PUT k: HTTP 503 SlowDown Please reduce" and error.retryable
    denied = botocore.exceptions.ClientError(
        {"Error": {"Code": "AccessDenied", "Message": "no"}, "ResponseMetadata": {"HTTPStatusCode": 403}},
        "PutObject",
    )
    assert not storage_error(denied, "PUT k").retryable
    try:
        try:
            raise throttled
        except botocore.exceptions.ClientError as exc:
            # What boto3's transfer manager does: the ClientError is only the context.
            raise boto3.exceptions.S3UploadFailedError(f"Failed to upload: {exc}")  # noqa: B904
    except boto3.exceptions.S3UploadFailedError as wrapped:
        assert storage_error(wrapped, "PUT k").retryable
        assert "SlowDown" in str(storage_error(wrapped, "PUT k"))
