"""The write side of S3 locations, private and public alike (SPEC §9): both write
through boto3 with the endpoint's shared client, whatever the location's read
access.

- ``.sym`` keys are stored gzipped (deterministically: no file name, mtime 0),
  ``Content-Encoding: gzip``, ``Content-Type: text/plain; charset=utf-8``; other
  keys as they are, ``application/octet-stream``. Every object carries the
  metadata ``sha256``, ``original_size`` and ``original_md5_hash`` (the last two
  as Tecken writes them, so a bucket shared with Tecken skips both ways).
- The member is spooled to a temporary file, then sent by boto3's transfer
  manager: a single PUT below 64 MiB, a multipart upload from there (aborted by
  boto3 on failure, so a failed write leaves no partial object).
"""

import logging
import os
import zlib

import boto3.exceptions
import boto3.s3.transfer
import botocore.exceptions

from .writes import (
    StorageWriteError,
    StoredObject,
    error_code,
    is_gzipped_key,
    is_not_found,
    metadata,
    spool,
    storage_error,
    tempdir,
)

log = logging.getLogger(__name__)

MIB = 1024 * 1024
MULTIPART_THRESHOLD = 64 * MIB
# boto3 reads each part of a file object into memory: 8 MiB a write at a time
# (one part after the other, use_threads=False), and 10,000 parts allow 80 GB.
MULTIPART_CHUNKSIZE = 8 * MIB
TRANSFER = boto3.s3.transfer.TransferConfig(
    multipart_threshold=MULTIPART_THRESHOLD,
    multipart_chunksize=MULTIPART_CHUNKSIZE,
    use_threads=False,  # the caller's thread; members may go in parallel above us
)
# Error codes that mean "this bucket takes no object ACLs" (AWS's buckets with
# Object Ownership "bucket owner enforced"; some S3-compatible stores).
_ACL_REFUSED = {"AccessControlListNotSupported", "NotImplemented", "AccessDenied", "InvalidRequest"}
_BOTO_ERRORS = (
    botocore.exceptions.BotoCoreError,
    botocore.exceptions.ClientError,
    boto3.exceptions.Boto3Error,
)


def list_prefix(location, prefix):
    """The S3 (or directory) prefix of ``list_keys``: the location's own prefix as a
    directory (``v1/``, so that ``v1-old/...`` is not under it), plus ``prefix``."""
    prefix = prefix.lstrip("/")
    if location.prefix and prefix:
        return f"{location.prefix}/{prefix}"
    if location.prefix:
        return location.prefix + "/"
    return prefix


class S3WriteSide:
    """Mixed into :class:`~.private_s3.PrivateS3` and :class:`~.public_http.PublicHttp`;
    needs ``self.location``, ``self.settings`` and ``self._clients`` (S3Clients)."""

    # A public location's objects are written with ACL public-read so that the
    # anonymous HEAD/GET of downloads can read them (moto and buckets with ACLs
    # enabled honour it). A bucket that refuses ACLs (AWS "bucket owner enforced",
    # the default for new buckets, where a bucket policy grants public reads) or a
    # role without s3:PutObjectAcl must not fail uploads: the write is repeated
    # without the ACL and, once that works, this location writes without it.
    public_acl = False
    list_page_size = 1000  # S3's most keys a page

    def _client(self):
        return self._clients.client_for(self.location)

    def stat(self, key):
        try:
            head = self._client().head_object(Bucket=self.location.bucket, Key=key)
        except _BOTO_ERRORS as exc:
            if is_not_found(exc):
                return None
            raise storage_error(exc, f"HEAD {key}") from None
        meta = {str(k).lower(): v for k, v in (head.get("Metadata") or {}).items()}
        size = head.get("ContentLength")
        gzipped = str(head.get("ContentEncoding") or "").lower() == "gzip"
        original_size = _int(meta.get("original_size"))
        if original_size is None and not gzipped:
            original_size = size
        return StoredObject(
            size=size,
            sha256=_hex(meta.get("sha256")),
            original_size=original_size,
            original_md5=_hex(meta.get("original_md5_hash")),
        )

    def write(self, key, open_chunks, *, size, sha256, md5):
        gzipped = is_gzipped_key(key)
        extra = {"Metadata": metadata(size, sha256, md5)}
        if gzipped:
            extra["ContentEncoding"] = "gzip"
            extra["ContentType"] = "text/plain; charset=utf-8"
        else:
            extra["ContentType"] = "application/octet-stream"
        client = self._client()
        with spool(open_chunks, size=size, gzipped=gzipped, directory=tempdir(self.settings)) as spooled:
            if self.public_acl and not getattr(self, "_acl_refused", False):
                try:
                    self._upload(client, spooled, key, {**extra, "ACL": "public-read"})
                    return
                except _BOTO_ERRORS as exc:
                    refused = error_code(exc)
                    if refused not in _ACL_REFUSED:
                        raise storage_error(exc, f"PUT {key}") from None
                self._upload_or_raise(client, spooled, key, extra)
                if not getattr(self, "_acl_refused", False):
                    log.warning(
                        "%s refuses ACLs (%s): objects are written without public-read from now on;"
                        " a bucket policy must make them public",
                        self.location.url,
                        refused,
                    )
                self._acl_refused = True
                return
            self._upload_or_raise(client, spooled, key, extra)

    def _upload_or_raise(self, client, spooled, key, extra):
        try:
            self._upload(client, spooled, key, extra)
        except _BOTO_ERRORS as exc:
            raise storage_error(exc, f"PUT {key}") from None

    def _upload(self, client, spooled, key, extra):
        # boto3 closes the file object it is given, even when the upload fails: give
        # it a duplicate of the descriptor, so that the spooled file can be sent again
        # (without its ACL) and is closed, and so removed, by its owner only.
        with os.fdopen(os.dup(spooled.fileno()), "rb") as body:
            body.seek(0)
            client.upload_fileobj(body, self.location.bucket, key, ExtraArgs=extra, Config=TRANSFER)

    def read_head(self, key, nbytes):
        """The first ``nbytes`` of the original content: ranged GETs of the stored
        bytes, decompressed when the object is gzip-encoded."""
        if nbytes <= 0:
            return None if self.stat(key) is None else b""
        client = self._client()
        start, length = 0, nbytes
        inflate, out = None, bytearray()
        while True:
            try:
                response = client.get_object(
                    Bucket=self.location.bucket, Key=key, Range=f"bytes={start}-{start + length - 1}"
                )
                body = response["Body"].read()
            except _BOTO_ERRORS as exc:
                if is_not_found(exc):
                    return None
                if error_code(exc) == "InvalidRange":
                    return bytes(out)  # an empty object, or nothing past what we read
                raise storage_error(exc, f"GET {key}") from None
            if inflate is None:
                if str(response.get("ContentEncoding") or "").lower() != "gzip":
                    return body[:nbytes]
                inflate = zlib.decompressobj(wbits=31)
            try:
                out += inflate.decompress(body, nbytes - len(out))
            except zlib.error as exc:
                raise StorageWriteError(
                    f"GET {key}: the gzip-encoded object does not inflate: {exc}"
                ) from None
            start += len(body)
            total = _total(response.get("ContentRange"))
            if len(out) >= nbytes or inflate.eof or not body or (total is not None and start >= total):
                return bytes(out[:nbytes])
            length = min(length * 2, 64 * MIB)

    def list_keys(self, prefix="", start_after=""):
        kwargs = {"Bucket": self.location.bucket, "Prefix": list_prefix(self.location, prefix)}
        if start_after:
            kwargs["StartAfter"] = start_after
        try:
            pages = (
                self._client()
                .get_paginator("list_objects_v2")
                .paginate(**kwargs, PaginationConfig={"PageSize": self.list_page_size})
            )
            for page in pages:
                for obj in page.get("Contents", ()):
                    yield obj["Key"], obj.get("Size")
        except _BOTO_ERRORS as exc:
            raise storage_error(exc, f"LIST {kwargs['Prefix'] or '/'}") from None


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _hex(value):
    return str(value).strip().lower() if value else None


def _total(content_range):
    # "bytes 0-99/1234"
    if content_range and "/" in content_range:
        return _int(content_range.rsplit("/", 1)[1])
    return None
