"""An uploaded symbol archive checked whole before anything is written (SPEC §9, "Validation").

Pure: a zip file on disk in, :class:`Archive` out, no Pyramid, database, storage or HTTP. The
first problem raises :class:`ArchiveError`, whose message names the member and is meant for the
400 ``{"error": ...}`` body. :func:`inspect_archive` reads the central directory (bounded before
zipfile parses it), checks every entry, then streams every member to store once, under the same
limits, to verify it (CRC, sizes, ratio), hash it and check a ``.sym`` member's MODULE line. The
writer then streams each member again with :meth:`Archive.open`; no member is ever held whole in
memory.
"""

import dataclasses
import hashlib
import stat
import struct
import zipfile
import zlib

from .breakpad import HEADER_BYTES, sym_header  # sym_header: also for callers of this module
from .upload_names import ArchiveError, _decode_name, _show, _split_name  # ArchiveError: callers'

STORE = "store"
IGNORED = "ignored"
RATIO = 200  # no member may expand more than 200:1 ...
RATIO_FLOOR = 1024 * 1024  # ... once it is over 1 MiB
CHUNK = 1024 * 1024
DIRECTORY_BYTES_PER_MEMBER = 4096  # a central directory larger than this per allowed member is refused
METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)  # zipfile inflates only these with an output bound
_OPEN_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, struct.error)
_READ_ERRORS = _OPEN_ERRORS + (zlib.error, NotImplementedError, RuntimeError)


@dataclasses.dataclass(frozen=True, slots=True)  # slots: one per member, 20,000 in an archive
class Member:
    name: str  # as in the archive (see _decode_name)
    symbol: str
    debugid: str  # upper-cased
    filename: str
    key: str  # f"{file_prefix}/{symbol}/{debugid}/{filename}"
    size: int  # uncompressed bytes, declared and (for "store") verified
    compressed_size: int
    crc: int
    status: str  # STORE or IGNORED (the filename does not end with an allowed extension)
    sha256: str | None = None  # hex digests of the content, for "store" members only
    md5: str | None = None
    header: dict | None = None  # sym_header() of a stored .sym member


class MemberReader:
    """Streams one member's bytes; raises ArchiveError as soon as it breaks a limit.

    The limits are the Member's own declared figures, checked again here whatever zipfile does:
    never more bytes than declared (nor fewer at the end), never over 200:1 once over 1 MiB.
    """

    def __init__(self, zf, info, member):
        self.member = member
        self.count = 0
        try:
            self._fp = zf.open(info)
        except _READ_ERRORS as exc:
            raise ArchiveError(f"{_show(member.name)} cannot be read: {exc}") from None

    def read(self, size=-1):
        m = self.member
        try:
            data = self._fp.read(size)
        except _READ_ERRORS as exc:
            raise ArchiveError(f"{_show(m.name)} is damaged: {exc}") from None
        self.count += len(data)
        if self.count > RATIO_FLOOR and self.count > RATIO * m.compressed_size:
            raise ArchiveError(f"{_show(m.name)} is compressed more than {RATIO}:1")
        if self.count > m.size:
            raise ArchiveError(f"{_show(m.name)} holds more than the {m.size} bytes its header declares")
        if (size is None or size < 0 or (size and not data)) and self.count != m.size:
            raise ArchiveError(f"{_show(m.name)} ends after {self.count} of the {m.size} bytes declared")
        return data

    def chunks(self, chunk_size=CHUNK):
        while data := self.read(chunk_size):
            yield data

    def close(self):
        self._fp.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


class Archive:
    """An inspected archive, open until close() (or the end of a ``with`` block).

    ``members`` lists every member to store or ignored, in archive order, each key once;
    ``skipped`` the names dropped silently (directory entries, top-level ``*-symbols.txt``,
    exact duplicates). Different members may be read from several threads at once.
    """

    def __init__(self, fp, zf):
        self._fp, self._zip = fp, zf
        self._infos = {}
        self.members = []
        self.skipped = []

    @property
    def stored(self):
        return [m for m in self.members if m.status == STORE]

    @property
    def ignored(self):
        return [m for m in self.members if m.status == IGNORED]

    def open(self, member):
        return MemberReader(self._zip, self._infos[member.key], member)

    def read_chunks(self, member, chunk_size=CHUNK):
        with self.open(member) as reader:
            yield from reader.chunks(chunk_size)

    def close(self):
        self._zip.close()
        self._fp.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def read_member(archive, member, chunk_size=CHUNK):
    """The member's bytes as chunks of at most chunk_size, under the member's limits."""
    return archive.read_chunks(member, chunk_size)


def inspect_archive(
    path, *, max_files, max_uncompressed_bytes, allowed_extensions, disallowed_snippets=(), file_prefix="v1"
):
    """Check the zip at ``path`` as SPEC §9 says and return the open :class:`Archive`."""
    fp = open(path, "rb")
    try:
        archive = Archive(fp, _open_zip(fp, max_files))
        _list_members(
            archive, max_uncompressed_bytes, tuple(allowed_extensions), disallowed_snippets, file_prefix
        )
        _verify_members(archive, max_uncompressed_bytes)
    except BaseException:
        fp.close()
        raise
    return archive


def _end_record(fp):
    """(entries, central directory bytes) as the end records declare them, or None.

    zipfile's own reader of the end records (private, but in every Python 3), so that this bound
    and zipfile's parse can never disagree about the same bytes (Zip64 records included)."""
    try:
        end = zipfile._EndRecData(fp)
    except _OPEN_ERRORS as exc:
        raise ArchiveError(f"File is not a zip file ({exc})") from None
    return None if not end else (end[zipfile._ECD_ENTRIES_TOTAL], end[zipfile._ECD_SIZE])


def _open_zip(fp, max_files):
    end = _end_record(fp)
    if end is None:
        raise ArchiveError("File is not a zip file (no end of central directory record)")
    if end[0] > max_files:
        raise ArchiveError(f"The archive has {end[0]} members, more than the limit of {max_files}")
    if end[1] > max_files * DIRECTORY_BYTES_PER_MEMBER:
        raise ArchiveError(f"The archive's central directory ({end[1]} bytes) is too large")
    try:
        zf = zipfile.ZipFile(fp)
    except UnicodeDecodeError as exc:
        raise ArchiveError(f"The member name {_show(exc.object)} is marked UTF-8 but is not") from None
    except _OPEN_ERRORS as exc:
        raise ArchiveError(f"File is not a zip file ({exc})") from None
    count = len(zf.infolist())
    if count > max_files:
        zf.close()
        raise ArchiveError(f"The archive has {count} members, more than the limit of {max_files}")
    return zf


def _check_entry(info, name):
    if info.flag_bits & 0x1:
        raise ArchiveError(f"{_show(name)} is encrypted")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise ArchiveError(f"{_show(name)} is a symbolic link")
    if info.compress_type not in METHODS:
        raise ArchiveError(
            f"{_show(name)} uses compression method {info.compress_type}: only stored and deflated members"
        )
    if info.file_size > RATIO_FLOOR and info.file_size > RATIO * info.compress_size:
        raise ArchiveError(
            f"{_show(name)} is compressed more than {RATIO}:1 "
            f"({info.file_size} bytes from {info.compress_size})"
        )


def _list_members(archive, max_bytes, extensions, snippets, file_prefix):
    prefix = f"{file_prefix}/" if file_prefix else ""
    snippets = [s for s in snippets if s]  # an empty snippet would refuse every archive
    seen = {}
    declared = 0
    for info in archive._zip.infolist():
        name = _decode_name(info)
        declared += info.file_size
        if declared > max_bytes:
            raise ArchiveError(
                f"The archive expands to more than the limit of {max_bytes} bytes (reached at {_show(name)})"
            )
        for snippet in snippets:
            if snippet in name:
                raise ArchiveError(
                    f"Content of archive file contains the snippet {snippet!r} which is not allowed "
                    f"({_show(name)})"
                )
        if name.endswith("/"):
            archive.skipped.append(name)
            continue
        _check_entry(info, name)
        if "/" not in name and name.lower().endswith("-symbols.txt"):
            archive.skipped.append(name)
            continue
        symbol, debugid, filename = _split_name(name)
        debugid = debugid.upper()
        key = f"{prefix}{symbol}/{debugid}/{filename}"
        if key in seen:
            if seen[key] != (info.CRC, info.file_size):
                raise ArchiveError(f"Two members named {_show(name)} have different contents")
            archive.skipped.append(name)
            continue
        seen[key] = (info.CRC, info.file_size)
        status = STORE if filename.endswith(extensions) else IGNORED
        archive._infos[key] = info
        size, csize, crc = info.file_size, info.compress_size, info.CRC
        archive.members.append(Member(name, symbol, debugid, filename, key, size, csize, crc, status))
    if not archive.stored:
        ignored = len(archive.members)
        raise ArchiveError(f"The archive holds no file to store ({ignored} ignored: no allowed extension)")


def _verify_members(archive, max_bytes):
    total = 0
    for i, member in enumerate(archive.members):
        if member.status != STORE:
            continue
        is_sym = member.filename.lower().endswith(".sym")
        sha256, md5, head = hashlib.sha256(), hashlib.md5(usedforsecurity=False), bytearray()
        for chunk in archive.read_chunks(member):
            total += len(chunk)
            if total > max_bytes:
                raise ArchiveError(f"The archive expands to more than the limit of {max_bytes} bytes")
            sha256.update(chunk)
            md5.update(chunk)
            if is_sym and len(head) < HEADER_BYTES:
                head += chunk[: HEADER_BYTES - len(head)]
        header = _check_sym(member, head) if is_sym else None
        archive.members[i] = dataclasses.replace(
            member, sha256=sha256.hexdigest(), md5=md5.hexdigest(), header=header
        )


def _check_sym(member, head):
    header = sym_header(head, at_eof=member.size <= len(head))
    name = _show(member.name)
    if header is None:
        raise ArchiveError(f"{name} does not start with a Breakpad 'MODULE <os> <arch> <id> <file>' line")
    if header["debug_id"] != member.debugid:
        raise ArchiveError(f"{name}: its MODULE line's debug id {header['debug_id']!r} is not the path's")
    if header["debug_file"] != member.symbol:
        raise ArchiveError(
            f"{name}: its MODULE line's debug file {header['debug_file']!r} is not the path's "
            f"{member.symbol!r}"
        )
    return header
