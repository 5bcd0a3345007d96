"""The storage write side (SPEC §9 "Keys and writes", "Indexing what others stored"):
stat, write, read_head and list_keys against moto's S3 server over HTTP and real
directories."""

import gzip
import hashlib
import os
import socket
import stat
import threading
import time
import urllib.request

import pytest

from tecken_pyramid import locations
from tecken_pyramid import settings as settings_mod
from tecken_pyramid.storage import StorageChecker, StorageWriteError, StoredObject
from tests.conftest import BASE_INI, DEBUG_ID, PRIVATE_BUCKET, PUBLIC_BUCKET, ROOT, TRY_BUCKET, free_port

# Nothing here depends on the database kind: run once, in the SQLite pass (.ci/test).
pytestmark = pytest.mark.database_independent

SYM = b"MODULE windows x86_64 " + DEBUG_ID.encode() + b" xul.pdb\nINFO CODE_ID 5F3A1B2C xul.dll\n"
SYM_KEY = f"v1/xul.pdb/{DEBUG_ID}/xul.sym"
PDB_KEY = f"v1/xul.pdb/{DEBUG_ID}/xul.pd_"


def digests(content):
    return len(content), hashlib.sha256(content).hexdigest(), hashlib.md5(content).hexdigest()


def chunks_of(content, size=7):
    """open_chunks for ``content``; counts how often it was opened."""

    def open_chunks():
        open_chunks.opened += 1
        return (content[i : i + size] for i in range(0, len(content), size))

    open_chunks.opened = 0
    return open_chunks


def write(storage, location, key, content, chunk=7):
    size, sha256, md5 = digests(content)
    opener = chunks_of(content, chunk)
    storage.write(location, key, opener, size=size, sha256=sha256, md5=md5)
    return opener


@pytest.fixture
def spool_dir(tmp_path):
    d = tmp_path / "spool"
    d.mkdir()
    return d


@pytest.fixture
def storage(s3, tmp_path, spool_dir):
    ini = dict(BASE_INI)
    ini["sqlalchemy.url"] = f"sqlite:///{tmp_path}/never-opened.sqlite3"
    ini["tecken.symbol_urls"] = s3.url(PRIVATE_BUCKET)
    ini["tecken.upload_tempdir"] = str(spool_dir)
    checker = StorageChecker(settings_mod.load(ini, environ={}, here=ROOT))
    yield checker
    checker.close()


def loc(url, index="0"):
    return locations.parse(url, here=ROOT, file_prefix="v1", index=index)


@pytest.fixture
def private(s3):
    return loc(s3.url(PRIVATE_BUCKET))


@pytest.fixture
def public(s3):
    return loc(s3.url(PUBLIC_BUCKET, public=True))


# -- S3 ------------------------------------------------------------------------------------------


def test_sym_is_stored_gzipped_deterministically_with_headers_and_metadata(storage, private, s3):
    assert storage.stat(private, SYM_KEY) is None
    opener = write(storage, private, SYM_KEY, SYM)
    assert opener.opened == 1
    client = s3.client()
    obj = client.get_object(Bucket=PRIVATE_BUCKET, Key=SYM_KEY)
    stored = obj["Body"].read()
    assert stored[:2] == b"\x1f\x8b"  # the stored bytes are gzip, not the text
    assert gzip.decompress(stored) == SYM
    assert obj["ContentEncoding"] == "gzip"
    assert obj["ContentType"] == "text/plain; charset=utf-8"
    size, sha256, md5 = digests(SYM)
    assert obj["Metadata"] == {"sha256": sha256, "original_size": str(size), "original_md5_hash": md5}
    assert storage.stat(private, SYM_KEY) == StoredObject(
        size=len(stored), sha256=sha256, original_size=size, original_md5=md5
    )
    # Deterministic: the same content gives the same bytes (no file name, no mtime).
    write(storage, private, SYM_KEY, SYM, chunk=3)
    again = client.get_object(Bucket=PRIVATE_BUCKET, Key=SYM_KEY)["Body"].read()
    assert again == stored
    assert stored[4:8] == b"\0\0\0\0" and not stored[3] & 0x08  # mtime 0, no FNAME


def test_upper_case_sym_extension_is_gzipped_too(storage, private, s3):
    key = f"v1/xul.pdb/{DEBUG_ID}/XUL.SYM"
    write(storage, private, key, SYM)
    obj = s3.client().get_object(Bucket=PRIVATE_BUCKET, Key=key)
    assert obj["ContentEncoding"] == "gzip"
    assert gzip.decompress(obj["Body"].read()) == SYM


def test_other_files_are_stored_as_they_are(storage, private, s3):
    content = os.urandom(5000)
    write(storage, private, PDB_KEY, content, chunk=1024)
    obj = s3.client().get_object(Bucket=PRIVATE_BUCKET, Key=PDB_KEY)
    assert obj["Body"].read() == content
    assert obj["ContentType"] == "application/octet-stream"
    assert "ContentEncoding" not in obj
    size, sha256, md5 = digests(content)
    assert obj["Metadata"] == {"sha256": sha256, "original_size": str(size), "original_md5_hash": md5}
    assert storage.stat(private, PDB_KEY) == StoredObject(5000, sha256, 5000, md5)


def test_stat_of_an_object_written_by_another_tool(storage, private, s3):
    s3.put(PRIVATE_BUCKET, "v1/a.pdb/ABC/a.pdb", b"12345")
    assert storage.stat(private, "v1/a.pdb/ABC/a.pdb") == StoredObject(5, None, 5, None)
    s3.client().put_object(
        Bucket=PRIVATE_BUCKET,
        Key="v1/a.pdb/ABC/a.sym",
        Body=gzip.compress(b"MODULE x\n"),
        ContentEncoding="gzip",
        Metadata={"original_size": "9", "original_md5_hash": "ABCDEF"},  # as Tecken writes it
    )
    found = storage.stat(private, "v1/a.pdb/ABC/a.sym")
    assert (found.sha256, found.original_size, found.original_md5) == (None, 9, "abcdef")


def test_public_location_writes_through_boto3_and_objects_are_publicly_readable(storage, public, s3):
    write(storage, public, SYM_KEY, SYM)
    with urllib.request.urlopen(public.public_url(SYM_KEY), timeout=10) as response:
        assert gzip.decompress(response.read()) == SYM
    grants = s3.client().get_object_acl(Bucket=PUBLIC_BUCKET, Key=SYM_KEY)["Grants"]
    assert any(g["Grantee"].get("URI", "").endswith("/global/AllUsers") for g in grants)
    assert storage.stat(public, SYM_KEY).original_size == len(SYM)
    assert storage.read_head(public, SYM_KEY, 6) == b"MODULE"
    assert [k for k, _ in storage.list_keys(public)] == [SYM_KEY]


def test_a_large_member_goes_by_multipart_upload(storage, private, s3, spool_dir):
    block = os.urandom(1024 * 1024)
    size = 70 * 1024 * 1024
    sha256, md5 = hashlib.sha256(), hashlib.md5()
    for _ in range(70):
        sha256.update(block)
        md5.update(block)
    key = f"v1/big.pdb/{DEBUG_ID}/big.pd_"
    storage.write(
        private,
        key,
        lambda: (block for _ in range(70)),
        size=size,
        sha256=sha256.hexdigest(),
        md5=md5.hexdigest(),
    )
    head = s3.client().head_object(Bucket=PRIVATE_BUCKET, Key=key)
    assert "-" in head["ETag"]  # a multipart upload's ETag: md5 of the parts, "-", their count
    assert head["ContentLength"] == size
    assert storage.stat(private, key) == StoredObject(size, sha256.hexdigest(), size, md5.hexdigest())
    assert storage.read_head(private, key, 100) == block[:100]
    assert os.listdir(spool_dir) == []


def test_read_head_of_gzipped_and_raw_objects(storage, private, s3):
    text = b"MODULE linux x86_64 ABC libxul.so\n" + b"FUNC 1000 10 0 something\n" * 5000
    write(storage, private, SYM_KEY, text, chunk=4096)
    assert storage.read_head(private, SYM_KEY, 20) == text[:20]
    assert storage.read_head(private, SYM_KEY, 50_000) == text[:50_000]
    assert storage.read_head(private, SYM_KEY, 10 * len(text)) == text
    # Incompressible: n compressed bytes hold fewer than n original bytes, so more is read.
    noise = os.urandom(300_000)
    write(storage, private, "v1/n.pdb/ABC/n.sym", noise, chunk=65536)
    assert storage.read_head(private, "v1/n.pdb/ABC/n.sym", 200_000) == noise[:200_000]
    raw = os.urandom(1000)
    write(storage, private, PDB_KEY, raw, chunk=100)
    assert storage.read_head(private, PDB_KEY, 10) == raw[:10]
    assert storage.read_head(private, PDB_KEY, 5000) == raw
    assert storage.read_head(private, "v1/missing.pdb/ABC/missing.sym", 10) is None
    s3.put(PRIVATE_BUCKET, "v1/e.pdb/ABC/e.pd_", b"")
    assert storage.read_head(private, "v1/e.pdb/ABC/e.pd_", 10) == b""
    write(storage, private, "v1/e.pdb/ABC/e.sym", b"")
    assert storage.read_head(private, "v1/e.pdb/ABC/e.sym", 10) == b""


LISTED = [
    "v1/a-c.pdb/ABC/a.sym",
    "v1/a.pdb/ABC/a.sym",
    "v1/a.pdb/ABC/a.pd_",
    "v1/a.pdb/ABD/a.sym",
    "v1/a/x/b",
    "v1/b.pdb/ABC/b.sym",
    "v1/xul.pdb/ABC/xul.sym",
]
NOT_LISTED = ["v1-old/a.pdb/ABC/a.sym", "other/v1/a.sym", "v1", "try/v1/a.pdb/ABC/a.sym"]


def test_list_keys_on_s3_order_prefix_and_resume(storage, private, s3):
    for key in LISTED + NOT_LISTED:
        s3.put(PRIVATE_BUCKET, key, key.encode())
    listed = list(storage.list_keys(private))
    assert listed == [(k, len(k)) for k in sorted(LISTED)]
    assert [k for k, _ in storage.list_keys(private, prefix="a.pdb/")] == sorted(
        k for k in LISTED if k.startswith("v1/a.pdb/")
    )
    assert [k for k, _ in storage.list_keys(private, prefix="a")] == sorted(
        k for k in LISTED if k.startswith("v1/a")
    )
    after = sorted(LISTED)[2]
    assert [k for k, _ in storage.list_keys(private, start_after=after)] == sorted(LISTED)[3:]
    try_location = locations.derive_try(private)
    assert [k for k, _ in storage.list_keys(try_location)] == ["try/v1/a.pdb/ABC/a.sym"]


def test_list_keys_pages_through_the_listing_and_resumes_across_pages(storage, private, s3):
    for key in LISTED:
        s3.put(PRIVATE_BUCKET, key, b"x")
    storage.backend(private).list_page_size = 2  # 4 pages of at most 2 keys, as 1,000 would be
    keys = sorted(LISTED)
    assert [k for k, _ in storage.list_keys(private)] == keys
    for n in range(len(keys)):
        assert [k for k, _ in storage.list_keys(private, start_after=keys[n])] == keys[n + 1 :]


def test_failed_s3_writes_leave_nothing(storage, private, s3, spool_dir):
    def broken():
        yield SYM
        raise RuntimeError("the archive went away")

    size, sha256, md5 = digests(SYM * 2)
    with pytest.raises(RuntimeError):
        storage.write(private, SYM_KEY, broken, size=size, sha256=sha256, md5=md5)
    with pytest.raises(StorageWriteError, match="not the 5 announced"):
        storage.write(private, PDB_KEY, chunks_of(SYM), size=5, sha256=sha256, md5=md5)
    assert storage.stat(private, SYM_KEY) is None and storage.stat(private, PDB_KEY) is None
    missing_bucket = loc(f"{s3.endpoint}/no-such-bucket")
    with pytest.raises(StorageWriteError) as info:
        write(storage, missing_bucket, SYM_KEY, SYM)
    assert "NoSuchBucket" in str(info.value) and "\n" not in str(info.value)
    assert not info.value.retryable
    assert os.listdir(spool_dir) == []


def test_unreachable_endpoint_fails_quickly_with_one_line(storage, spool_dir):
    dead = loc(f"http://127.0.0.1:{free_port()}/{PRIVATE_BUCKET}")
    for call in (
        lambda: write(storage, dead, SYM_KEY, SYM),
        lambda: storage.stat(dead, SYM_KEY),
        lambda: storage.read_head(dead, SYM_KEY, 10),
        lambda: list(storage.list_keys(dead)),
    ):
        started = time.monotonic()
        with pytest.raises(StorageWriteError) as info:
            call()
        assert time.monotonic() - started < 5
        assert "\n" not in str(info.value) and str(info.value)
        assert info.value.retryable
    assert os.listdir(spool_dir) == []


class Front:
    """A real TCP front for moto: each new connection's first request (read until the
    client pauses) goes to ``answer(request)``; a response it returns is sent and the
    connection closed, None forwards the connection to moto from then on."""

    def __init__(self, target_port, answer):
        self.target_port = target_port
        self.answer = answer
        self.answered = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        conn.settimeout(0.3)
        request = b""
        try:
            while data := conn.recv(65536):
                request += data
        except OSError:
            pass
        conn.settimeout(None)
        response = self.answer(request)
        if response is not None:
            self.answered += 1
            conn.sendall(response)
            conn.close()
            return
        upstream = socket.create_connection(("127.0.0.1", self.target_port))
        upstream.sendall(request)
        for src, dst in ((conn, upstream), (upstream, conn)):
            threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pump(src, dst):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        self.listener.close()


def s3_error(status, code, message):
    body = f"<?xml version='1.0'?><Error><Code>{code}</Code><Message>{message}</Message></Error>"
    head = f"HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {len(body)}\r\n"
    return (head + "Connection: close\r\n\r\n" + body).encode()


def test_a_write_answered_503_is_retried_from_fresh_chunks(storage, s3):
    front = Front(
        s3.port, lambda request: s3_error("503 Slow Down", "SlowDown", "wait") if not front.answered else None
    )
    try:
        flaky = loc(f"http://127.0.0.1:{front.port}/{PRIVATE_BUCKET}")
        opener = write(storage, flaky, SYM_KEY, SYM)
    finally:
        front.close()
    assert (front.answered, opener.opened) == (1, 2)
    assert storage.stat(loc(s3.url(PRIVATE_BUCKET)), SYM_KEY).original_size == len(SYM)


def test_a_public_bucket_refusing_acls_is_written_without_them(storage, s3):
    def answer(request):
        if b"\r\nx-amz-acl:" in request.lower():
            return s3_error(
                "400 Bad Request", "AccessControlListNotSupported", "The bucket does not allow ACLs"
            )
        return None

    front = Front(s3.port, answer)
    try:
        # A bucket without a bucket ACL: moto gives its objects only the ACL they are written with.
        public = loc(f"http://127.0.0.1:{front.port}/{TRY_BUCKET}?access=public")
        first = write(storage, public, SYM_KEY, SYM)
        second = write(storage, public, PDB_KEY, b"pdb")  # remembered: no ACL sent, not refused again
    finally:
        front.close()
    assert front.answered == 1
    assert (first.opened, second.opened) == (1, 1)  # the spooled file is sent again, not re-read
    client = s3.client()
    for key in (SYM_KEY, PDB_KEY):
        grants = client.get_object_acl(Bucket=TRY_BUCKET, Key=key)["Grants"]
        assert not any(g["Grantee"].get("URI", "").endswith("/global/AllUsers") for g in grants)
    assert gzip.decompress(client.get_object(Bucket=TRY_BUCKET, Key=SYM_KEY)["Body"].read()) == SYM


# -- local directories ---------------------------------------------------------------------------


@pytest.fixture
def local_dir(tmp_path):
    d = tmp_path / "symbols"
    d.mkdir()
    return d


@pytest.fixture
def local(local_dir):
    return loc(str(local_dir))


def leftovers(directory):
    return [
        name for _, _, files in os.walk(directory) for name in files if name.startswith(".tecken-upload-")
    ]


def test_local_write_is_atomic_uncompressed_and_0644(storage, local, local_dir):
    assert storage.stat(local, SYM_KEY) is None
    write(storage, local, SYM_KEY, SYM)
    path = local_dir / SYM_KEY
    assert path.read_bytes() == SYM  # never gzipped on disk
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert leftovers(local_dir) == []
    size, sha256, md5 = digests(SYM)
    assert storage.stat(local, SYM_KEY) == StoredObject(size, sha256, size, md5)
    assert storage.read_head(local, SYM_KEY, 6) == b"MODULE"
    assert storage.read_head(local, SYM_KEY, 10_000) == SYM
    assert storage.read_head(local, "v1/missing.pdb/ABC/missing.sym", 6) is None
    # Overwritten in place by a rename: a reader holding the old file keeps its bytes.
    with open(path, "rb") as reader:
        write(storage, local, SYM_KEY, b"MODULE changed\n")
        assert reader.read() == SYM
    assert path.read_bytes() == b"MODULE changed\n"
    assert leftovers(local_dir) == []


def test_local_write_creates_a_missing_location_directory(storage, tmp_path):
    location = loc(str(tmp_path / "new" / "try"))
    write(storage, location, SYM_KEY, SYM)
    assert (tmp_path / "new" / "try" / SYM_KEY).read_bytes() == SYM


def test_local_write_never_follows_a_symlink_out_of_the_directory(storage, local, local_dir, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (local_dir / "v1").mkdir()
    os.symlink(outside, local_dir / "v1" / "evil.pdb")
    with pytest.raises(StorageWriteError, match="leads out of the directory"):
        write(storage, local, f"v1/evil.pdb/{DEBUG_ID}/evil.sym", SYM)
    assert list(outside.iterdir()) == []  # not even a directory made there
    # The whole file prefix a symlink out: refused too.
    other = tmp_path / "other"
    (other / "v1").mkdir(parents=True)
    os.symlink(outside, other / "v1" / "x")
    with pytest.raises(StorageWriteError):
        write(storage, loc(str(other)), f"v1/x/{DEBUG_ID}/x.sym", SYM)
    assert list(outside.iterdir()) == []
    # A symlink inside the directory may be followed.
    (local_dir / "v1" / "real.pdb").mkdir()
    os.symlink(local_dir / "v1" / "real.pdb", local_dir / "v1" / "alias.pdb")
    write(storage, local, f"v1/alias.pdb/{DEBUG_ID}/alias.sym", SYM)
    assert (local_dir / "v1" / "real.pdb" / DEBUG_ID / "alias.sym").read_bytes() == SYM


def test_local_write_refuses_when_the_file_is_a_symlink(storage, local, local_dir, tmp_path):
    target = tmp_path / "target.txt"
    target.write_bytes(b"keep me")
    path = local_dir / SYM_KEY
    path.parent.mkdir(parents=True)
    os.symlink(target, path)
    with pytest.raises(StorageWriteError, match="symlink"):
        write(storage, local, SYM_KEY, SYM)
    assert os.path.islink(path) and target.read_bytes() == b"keep me"
    assert leftovers(local_dir) == []


@pytest.mark.parametrize("key", ["", "v1/../x.sym", "/etc/x.sym", "v1//x.sym", "v1/./x.sym"])
def test_local_write_refuses_keys_that_leave_the_directory(storage, local, local_dir, key):
    with pytest.raises(StorageWriteError, match="invalid key"):
        write(storage, local, key, SYM)


def test_failed_local_writes_leave_nothing(storage, local, local_dir):
    def broken():
        yield SYM
        raise RuntimeError("the archive went away")

    size, sha256, md5 = digests(SYM * 2)
    with pytest.raises(RuntimeError):
        storage.write(local, SYM_KEY, broken, size=size, sha256=sha256, md5=md5)
    with pytest.raises(StorageWriteError, match="not the 5 announced"):
        storage.write(local, SYM_KEY, chunks_of(SYM), size=5, sha256=sha256, md5=md5)
    assert not (local_dir / SYM_KEY).exists()
    assert leftovers(local_dir) == []
    # A directory in the way: one line, nothing left.
    (local_dir / PDB_KEY).mkdir(parents=True)
    with pytest.raises(StorageWriteError) as info:
        write(storage, local, PDB_KEY, SYM)
    assert "\n" not in str(info.value)
    assert leftovers(local_dir) == []


def test_list_keys_on_a_local_directory_orders_like_s3(storage, local, local_dir, private, s3, tmp_path):
    for key in LISTED + NOT_LISTED:
        s3.put(PRIVATE_BUCKET, key, key.encode())
        path = local_dir / key
        if key == "v1":
            continue  # a directory here
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(key.encode())
    # Skipped: this module's temporary files, symlinks out, a symlink loop.
    outside = tmp_path / "outside"
    (outside / "ABC").mkdir(parents=True)
    (outside / "ABC" / "o.sym").write_bytes(b"outside")
    (local_dir / "v1" / "a.pdb" / "ABC" / ".tecken-upload-abc123").write_bytes(b"half")
    os.symlink(outside, local_dir / "v1" / "out.pdb")
    os.symlink(outside / "ABC" / "o.sym", local_dir / "v1" / "a.pdb" / "ABC" / "o.sym")
    os.symlink(local_dir / "v1", local_dir / "v1" / "loop")
    # Followed: a symlinked file inside the directory.
    os.symlink(local_dir / "v1" / "b.pdb" / "ABC" / "b.sym", local_dir / "v1" / "b.pdb" / "ABC" / "c.sym")
    expected = sorted([*LISTED, "v1/b.pdb/ABC/c.sym"])
    listed = list(storage.list_keys(local))
    assert [k for k, _ in listed] == expected
    assert dict(listed)["v1/b.pdb/ABC/c.sym"] == len("v1/b.pdb/ABC/b.sym")
    assert [k for k, _ in storage.list_keys(private)] == sorted(LISTED)  # the same order as S3
    for prefix in ("a", "a.pdb/", "a.pdb/ABC", "xul.pdb", "zzz"):
        assert [k for k, _ in storage.list_keys(local, prefix=prefix)] == [
            k for k, _ in storage.list_keys(private, prefix=prefix)
        ], prefix
    for after in ("", "v1/a", "v1/a.pdb/ABC/a.pd_", "v1/a.pdb/ABC/a.sym", "v1/a/x/b", "v1/z", "w"):
        assert [k for k, _ in storage.list_keys(local, start_after=after)] == [
            k for k in expected if k > after
        ]
    assert [k for k, _ in storage.list_keys(local, prefix="a.pdb", start_after="v1/a.pdb/ABC/a.pd_")] == [
        "v1/a.pdb/ABC/a.sym",
        "v1/a.pdb/ABD/a.sym",
    ]


def test_list_keys_of_a_missing_local_directory_fails(storage, tmp_path):
    with pytest.raises(StorageWriteError, match="directory missing"):
        list(storage.list_keys(loc(str(tmp_path / "nowhere"))))
