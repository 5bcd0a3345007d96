"""Storage locations (SPEC §3): parsing ``TECKEN_SYMBOL_URLS`` entries.

A :class:`Location` is pure configuration: what it is, where, and how its keys are
built. Talking to storage is :mod:`tecken_pyramid.storage`'s job.
"""

import dataclasses
import os
import re
import urllib.parse

PRIVATE = "private"
PUBLIC = "public"
LOCAL = "local"

_AWS_REGION = re.compile(r"^s3[.-]([a-z0-9-]+)\.amazonaws\.com$")


@dataclasses.dataclass(frozen=True)
class Location:
    kind: str  # PRIVATE, PUBLIC or LOCAL
    index: str  # "0", "1", ... or "try": the position used in /__files__/{n}/
    url: str  # the normalised URL: identity in the cache and name in the heartbeat
    prefix: str  # key prefix inside the bucket or directory, file prefix included
    endpoint: str = ""  # scheme://host[:port] for S3
    bucket: str = ""
    region: str | None = None
    directory: str = ""  # absolute, for LOCAL
    location_prefix: str = ""  # the URL's own prefix, without the file prefix
    file_prefix: str = ""

    @property
    def cached(self):
        # Local directories are never cached: files dropped in are seen at once.
        return self.kind != LOCAL

    def key(self, symbol, debugid, filename):
        return (
            f"{self.prefix}/{symbol}/{debugid.upper()}/{filename}"
            if self.prefix
            else (f"{symbol}/{debugid.upper()}/{filename}")
        )

    def same_storage(self, other):
        """True when both name the same objects (whatever the access kind)."""
        if LOCAL in (self.kind, other.kind):
            return self.kind == other.kind and self.directory == other.directory
        return (self.endpoint, self.bucket, self.prefix) == (other.endpoint, other.bucket, other.prefix)

    def public_url(self, key):
        """The plain object URL of a public bucket, key percent-encoded (ASCII)."""
        return f"{self.endpoint}/{self.bucket}/{quote_key(key)}"

    def heartbeat_key(self):
        return f"{self.prefix}/__heartbeat__" if self.prefix else "__heartbeat__"


def quote_key(key):
    # '+' and ' ' must survive S3 (which reads a raw '+' as a space); non-ASCII
    # goes as UTF-8 %XX, so every Location header is ASCII.
    return urllib.parse.quote(key, safe="/")


def _join(*parts):
    return "/".join(p for p in parts if p)


def parse(url, *, here, file_prefix, index):
    """Parse one location URL; raises ValueError with a one-line reason."""
    if url.startswith(("http://", "https://")):
        return _parse_s3(url, file_prefix, index)
    if url.startswith("file://"):
        parsed = urllib.parse.urlsplit(url)
        if parsed.netloc not in ("", "localhost"):
            raise ValueError(f"a file:// URL needs an absolute path (file:///DIR), got {url!r}")
        path = urllib.parse.unquote(parsed.path)
        if not os.path.isabs(path):
            raise ValueError(f"a file:// URL needs an absolute path, got {url!r}")
        return _local(path, file_prefix, index)
    if "://" in url or url.startswith("s3:"):
        raise ValueError(f"unsupported storage URL {url!r} (http(s)://, file:// or a directory)")
    return _local(os.path.join(here, url), file_prefix, index)


def _local(path, file_prefix, index):
    directory = os.path.normpath(os.path.abspath(path))
    return Location(
        kind=LOCAL,
        index=index,
        url="file://" + urllib.parse.quote(directory),
        prefix=file_prefix,
        directory=directory,
        file_prefix=file_prefix,
    )


def _parse_s3(url, file_prefix, index):
    parsed = urllib.parse.urlsplit(url)
    if parsed.username or parsed.password:
        raise ValueError("storage URLs carry no credentials (use AWS_* variables)")
    if not parsed.hostname:
        raise ValueError(f"no host in {url!r}")
    try:
        port = parsed.port
    except ValueError:
        raise ValueError(f"bad port in {url!r}") from None
    query = urllib.parse.parse_qs(parsed.query, keep_blank_values=True)
    unknown = set(query) - {"access"}
    if unknown:
        raise ValueError(f"unknown query parameter {sorted(unknown)[0]!r} in {url!r}")
    access = query.get("access", ["private"])[-1]
    if access not in ("public", "private"):
        raise ValueError(f"access must be public or private in {url!r}")
    segments = [s for s in urllib.parse.unquote(parsed.path).split("/") if s]
    if not segments:
        raise ValueError(f"no bucket in {url!r}")
    bucket, location_prefix = segments[0], "/".join(segments[1:])
    if not re.fullmatch(r"[a-z0-9][a-z0-9.\-_]{1,254}", bucket, re.IGNORECASE):
        raise ValueError(f"invalid bucket name {bucket!r}")
    host = parsed.hostname.lower()
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    endpoint = f"{parsed.scheme}://{netloc}"
    region = None
    m = _AWS_REGION.match(host)
    if m:
        region = m.group(1)
    elif host.endswith(".amazonaws.com"):
        region = "us-east-1"
    return _s3(
        PUBLIC if access == "public" else PRIVATE,
        index,
        endpoint,
        bucket,
        location_prefix,
        region,
        file_prefix,
    )


def _s3(kind, index, endpoint, bucket, location_prefix, region, file_prefix):
    path = _join(bucket, location_prefix)
    url = f"{endpoint}/{path}" + ("?access=public" if kind == PUBLIC else "")
    return Location(
        kind=kind,
        index=index,
        url=url,
        prefix=_join(location_prefix, file_prefix),
        endpoint=endpoint,
        bucket=bucket,
        region=region,
        location_prefix=location_prefix,
        file_prefix=file_prefix,
    )


def derive_try(first):
    """The default try location: ``try`` right after the bucket (or ``DIR/try``)."""
    if first.kind == LOCAL:
        return _local(os.path.join(first.directory, "try"), first.file_prefix, "try")
    return _s3(
        first.kind,
        "try",
        first.endpoint,
        first.bucket,
        _join("try", first.location_prefix),
        first.region,
        first.file_prefix,
    )
