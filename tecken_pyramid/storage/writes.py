"""What every backend's write side shares (SPEC §9 "Keys and writes", "Indexing
what others stored"): the error, what ``stat`` answers, the gzip rule and the
spooling of a member to a temporary file.

A member is never held in memory: ``spool`` streams the chunks ``open_chunks()``
yields into an anonymous temporary file (gzipped for a ``.sym`` on S3), which
boto3 then sends, by multipart upload when it is large.
"""

import dataclasses
import gzip
import hashlib
import os
import tempfile

import botocore.exceptions

from .answers import classify_boto_error

# Temporary files this package creates start with this, so that listings skip them.
TEMP_PREFIX = ".tecken-upload-"
CHUNK = 1024 * 1024
# zlib level 6: within a few percent of level 9 on Breakpad text and about twice
# as fast on a 500 MB .sym; the same level every time, so the bytes are the same.
GZIP_LEVEL = 6


class StorageWriteError(Exception):
    """A storage call failed or timed out; str(exc) is a one-line reason (for logs and the upload row).

    ``retryable``: a connection error, a timeout, 429 or 5xx (SPEC §3), which
    :class:`~tecken_pyramid.storage.StorageChecker` retries at most
    ``storage_retries`` times."""

    def __init__(self, message, retryable=False):
        super().__init__(one_line(message))
        self.retryable = retryable


@dataclasses.dataclass(frozen=True)
class StoredObject:
    size: int | None  # bytes as stored (compressed size for a gzipped .sym on S3)
    sha256: str | None  # hex of the original, uncompressed bytes
    original_size: int | None
    original_md5: str | None  # lower-case hex


def one_line(text):
    text = " ".join(str(text).split())
    return text[:500] if len(text) > 500 else text


def is_gzipped_key(key):
    """A ``.sym`` (any case) is stored gzipped on S3."""
    return key.rsplit("/", 1)[-1].lower().endswith(".sym")


def metadata(size, sha256, md5):
    """The user metadata of every object written (Tecken's names for the last two)."""
    return {"sha256": sha256, "original_size": str(int(size)), "original_md5_hash": md5}


def tempdir(settings):
    # Read with getattr: the setting may be absent from an older Settings.
    return getattr(settings, "upload_tempdir", None) or None


def iter_chunks(open_chunks):
    """The chunks of one call of ``open_chunks``, empty ones dropped."""
    for chunk in open_chunks():
        if chunk:
            yield bytes(chunk) if not isinstance(chunk, bytes) else chunk


def spool(open_chunks, *, size, gzipped, directory=None):
    """An anonymous temporary file (at offset 0) holding the content, gzipped
    deterministically (no file name, mtime 0) when ``gzipped``; raises
    StorageWriteError when the content is not ``size`` bytes long."""
    try:
        spooled = tempfile.TemporaryFile(prefix=TEMP_PREFIX, dir=directory)
    except OSError as exc:
        raise StorageWriteError(f"cannot create a temporary file: {os_reason(exc)}") from None
    try:
        written = 0
        if gzipped:
            with gzip.GzipFile(
                filename="", mode="wb", compresslevel=GZIP_LEVEL, fileobj=spooled, mtime=0
            ) as gz:
                for chunk in iter_chunks(open_chunks):
                    gz.write(chunk)
                    written += len(chunk)
        else:
            for chunk in iter_chunks(open_chunks):
                spooled.write(chunk)
                written += len(chunk)
        check_size(written, size)
        spooled.flush()
        spooled.seek(0)
        return spooled
    except StorageWriteError:
        spooled.close()
        raise
    except OSError as exc:
        spooled.close()
        raise StorageWriteError(f"cannot spool the member: {os_reason(exc)}") from None
    except BaseException:
        spooled.close()
        raise


def check_size(written, size):
    if size is not None and written != int(size):
        raise StorageWriteError(f"the content is {written} bytes, not the {size} announced")


def hash_file(path):
    """(size, sha256 hex, md5 hex) of a file, read in 1 MiB chunks."""
    sha256 = hashlib.sha256()
    md5 = hashlib.md5(usedforsecurity=False)
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            sha256.update(chunk)
            md5.update(chunk)
            size += len(chunk)
    return size, sha256.hexdigest(), md5.hexdigest()


def os_reason(exc):
    if isinstance(exc, OSError) and exc.strerror:
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{type(exc).__name__}: {exc.strerror}{where}"
    return f"{type(exc).__name__}: {exc}"


def _root_cause(exc):
    """boto3's transfer manager wraps a ClientError in S3UploadFailedError (a
    string); the original is its context."""
    seen = 0
    while not isinstance(exc, botocore.exceptions.BotoCoreError | botocore.exceptions.ClientError):
        nxt = exc.__cause__ or exc.__context__
        if nxt is None or seen > 5:
            return exc
        exc, seen = nxt, seen + 1
    return exc


def error_code(exc):
    """The S3 error code of a (possibly wrapped) ClientError, else ''."""
    cause = _root_cause(exc)
    if isinstance(cause, botocore.exceptions.ClientError):
        return str(cause.response.get("Error", {}).get("Code", ""))
    return ""


def storage_error(exc, what):
    """A StorageWriteError for a boto3/botocore exception, one line, with retryable set."""
    cause = _root_cause(exc)
    answer = classify_boto_error(cause)
    if isinstance(cause, botocore.exceptions.ClientError):
        error = cause.response.get("Error", {})
        status = cause.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = error.get("Code", "")
        message = error.get("Message", "")
        detail = " ".join(str(p) for p in (f"HTTP {status}" if status else "", code, message) if p)
    else:
        detail = f"{type(cause).__name__}: {cause}"
    return StorageWriteError(f"{what}: {detail}", retryable=answer.retryable)


def is_not_found(exc):
    cause = _root_cause(exc)
    if not isinstance(cause, botocore.exceptions.ClientError):
        return False
    status = cause.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return status == 404 or error_code(cause) in ("404", "NoSuchKey", "NotFound")


def remove_quietly(path):
    try:
        os.unlink(path)
    except OSError:
        pass
