"""SPEC §9 upload validation: an archive is checked whole, hostile ones included, before any write."""

import dataclasses
import hashlib
import random
import stat
import struct
import threading
import time
import warnings
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor

import pytest

from tecken_pyramid.upload_archive import (
    CHUNK,
    IGNORED,
    STORE,
    ArchiveError,
    inspect_archive,
    read_member,
    sym_header,
)

EXTENSIONS = (".sym", ".dl_", ".ex_", ".pd_", ".dbg.gz", ".tar.bz2")
MIB = 1024 * 1024
ID = "0123456789ABCDEF0123456789ABCDEF0"


def sym(debug_file="xul.pdb", debugid=ID, os="windows", arch="x86_64", rest=b""):
    return f"MODULE {os} {arch} {debugid} {debug_file}\n".encode() + rest


def make_zip(path, members, compression=zipfile.ZIP_DEFLATED):
    """members: (name or ZipInfo, bytes); returns the path. Duplicate names are allowed."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Duplicate name": wanted here
        with zipfile.ZipFile(path, "w", compression) as zf:
            for name, data in members:
                zf.writestr(name, data)
    return path


def inspect(path, **kwargs):
    options = dict(max_files=100, max_uncompressed_bytes=100 * MIB, allowed_extensions=EXTENSIONS)
    options.update(kwargs)
    return inspect_archive(path, **options)


def refused(path, match, **kwargs):
    with pytest.raises(ArchiveError, match=match) as info:
        inspect(path, **kwargs)
    return str(info.value)


def patch(path, old, new):
    data = path.read_bytes()
    assert data.count(old) >= 1
    path.write_bytes(data.replace(old, new))


def directory_offset(path, index=0):
    """Offset of the index-th central directory entry."""
    data = path.read_bytes()
    pos = -1
    for _ in range(index + 1):
        pos = data.index(b"PK\x01\x02", pos + 1)
    return pos


def put(path, offset, fmt, value):
    data = bytearray(path.read_bytes())
    struct.pack_into(fmt, data, offset, value)
    path.write_bytes(bytes(data))


# -- the happy path ----------------------------------------------------------------------------------
def test_a_typical_archive(tmp_path):
    xul = sym(
        rest=b"INFO CODE_ID 5F9E6A2C1A3000 xul.dll\r\nINFO GENERATOR mozilla/dump_syms 2.3.4\nFILE 0 a.c\n"
    )
    dll = b"MSCF" + bytes(range(256)) * 10
    path = make_zip(
        tmp_path / "s.zip",
        [
            ("xul.pdb/", b""),
            (f"xul.pdb/{ID}/", b""),
            (f"xul.pdb/{ID}/xul.sym", xul),
            (f"xul.dll/{ID}/xul.dl_", dll),
            (f"xul.pdb/{ID}/notes.txt", b"not stored"),
            ("build-symbols.txt", b"a list"),
        ],
    )
    with inspect(path) as archive:
        assert [m.key for m in archive.members] == [
            f"v1/xul.pdb/{ID}/xul.sym",
            f"v1/xul.dll/{ID}/xul.dl_",
            f"v1/xul.pdb/{ID}/notes.txt",
        ]
        assert [m.status for m in archive.members] == [STORE, STORE, IGNORED]
        assert archive.skipped == ["xul.pdb/", f"xul.pdb/{ID}/", "build-symbols.txt"]
        first, second, notes = archive.members
        assert (first.symbol, first.debugid, first.filename, first.size) == (
            "xul.pdb",
            ID,
            "xul.sym",
            len(xul),
        )
        assert first.crc == zlib.crc32(xul) and first.compressed_size > 0
        assert first.sha256 == hashlib.sha256(xul).hexdigest() and first.md5 == hashlib.md5(xul).hexdigest()
        assert first.header == {
            "os": "windows",
            "arch": "x86_64",
            "debug_id": ID,
            "debug_file": "xul.pdb",
            "code_id": "5F9E6A2C1A3000",
            "code_file": "xul.dll",
            "generator": "mozilla/dump_syms 2.3.4",
        }
        assert second.header is None and second.sha256 == hashlib.sha256(dll).hexdigest()
        assert notes.sha256 is None  # ignored members are never read
        assert [m.name for m in archive.stored] == [first.name, second.name]
        assert archive.ignored == [notes]
        assert b"".join(read_member(archive, first, chunk_size=7)) == xul
        assert b"".join(archive.read_chunks(second)) == dll
        with archive.open(second) as reader:
            assert reader.read(4) == b"MSCF"


def test_members_read_from_several_threads_at_once(tmp_path):
    contents = {f"x.pdb/{ID}/{i}.dl_": random.Random(i).randbytes(300_000) for i in range(8)}
    path = make_zip(tmp_path / "s.zip", list(contents.items()))
    barrier = threading.Barrier(8)

    def digest(member):
        barrier.wait()
        return hashlib.sha256(b"".join(read_member(archive, member, chunk_size=4096))).hexdigest()

    with inspect(path) as archive, ThreadPoolExecutor(8) as pool:
        digests = list(pool.map(digest, archive.members))
    assert digests == [hashlib.sha256(c).hexdigest() for c in contents.values()]


def test_closed_after_the_with_block(tmp_path):
    path = make_zip(tmp_path / "s.zip", [(f"xul.pdb/{ID}/xul.sym", sym())])
    with inspect(path) as archive:
        pass
    assert archive._fp.closed


def test_lower_case_debug_id_is_stored_upper_cased(tmp_path):
    path = make_zip(tmp_path / "s.zip", [(f"xul.pdb/{ID.lower()}/xul.sym", sym(debugid=ID.lower()))])
    with inspect(path) as archive:
        (member,) = archive.members
        assert member.key == f"v1/xul.pdb/{ID}/xul.sym"
        assert member.debugid == ID and member.name == f"xul.pdb/{ID.lower()}/xul.sym"


@pytest.mark.parametrize(
    "prefix, key", [("", f"xul.pdb/{ID}/xul.sym"), ("v2/x", f"v2/x/xul.pdb/{ID}/xul.sym")]
)
def test_file_prefix(tmp_path, prefix, key):
    path = make_zip(tmp_path / "s.zip", [(f"xul.pdb/{ID}/xul.sym", sym())])
    with inspect(path, file_prefix=prefix) as archive:
        assert archive.members[0].key == key


def test_allowed_extension_is_a_case_sensitive_endswith(tmp_path):
    path = make_zip(
        tmp_path / "s.zip",
        [(f"xul.pdb/{ID}/xul.sym", sym()), (f"xul.pdb/{ID}/XUL.SYM", b"not a sym, never read")],
    )
    with inspect(path) as archive:
        assert [m.status for m in archive.members] == [STORE, IGNORED]


def test_spaces_in_the_symbol_and_the_debug_file(tmp_path):
    path = make_zip(tmp_path / "s.zip", [(f"My App.pdb/{ID}/My App.sym", sym(debug_file="My App.pdb"))])
    with inspect(path) as archive:
        assert archive.members[0].header["debug_file"] == "My App.pdb"


def test_stored_members_are_accepted(tmp_path):
    path = make_zip(tmp_path / "s.zip", [(f"xul.pdb/{ID}/xul.sym", sym())], compression=zipfile.ZIP_STORED)
    with inspect(path) as archive:
        assert archive.members[0].compressed_size == archive.members[0].size


# -- nothing to store ----------------------------------------------------------------------------------
def test_only_ignored_members(tmp_path):
    path = make_zip(tmp_path / "s.zip", [(f"xul.pdb/{ID}/xul.pdb", b"x"), ("a-symbols.txt", b"")])
    refused(path, r"no file to store \(1 ignored")


def test_only_directories_and_symbols_txt(tmp_path):
    path = make_zip(
        tmp_path / "s.zip", [("xul.pdb/", b""), ("build-symbols.txt", b"x"), ("X-SYMBOLS.TXT", b"")]
    )
    refused(path, r"no file to store \(0 ignored")


def test_an_empty_allow_list_stores_nothing(tmp_path):
    path = make_zip(tmp_path / "s.zip", [(f"xul.pdb/{ID}/xul.sym", sym())])
    refused(path, "no file to store", allowed_extensions=())


def test_symbols_txt_below_the_top_is_an_ordinary_member(tmp_path):
    path = make_zip(tmp_path / "s.zip", [(f"xul.pdb/{ID}/xul.sym", sym()), ("a/b-symbols.txt", b"")])
    refused(path, r"'a/b-symbols.txt'.*2 segments")


# -- not a zip -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 not really" * 10, b"\x00" * 5000])
def test_garbage_is_not_a_zip(tmp_path, content):
    path = tmp_path / "s.zip"
    path.write_bytes(content)
    refused(path, "^File is not a zip file")


@pytest.mark.parametrize("keep", [0.5, -1])
def test_truncated_archive(tmp_path, keep):
    path = make_zip(tmp_path / "s.zip", [(f"xul.pdb/{ID}/xul.sym", sym(rest=bytes(range(256)) * 100))])
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)] if keep > 0 else data[:keep])
    refused(path, "^File is not a zip file")


def test_damaged_member_data(tmp_path):
    content = sym(rest=bytes(range(256)) * 100)
    path = make_zip(tmp_path / "s.zip", [(f"xul.pdb/{ID}/xul.sym", content)], compression=zipfile.ZIP_STORED)
    patch(path, bytes(range(256)), bytes(range(255, -1, -1)))  # the same size, another CRC
    refused(path, rf"'xul.pdb/{ID}/xul.sym' is damaged: Bad CRC-32")


def test_local_header_name_differs_from_the_central_directory(tmp_path):
    # Tools that read local headers and tools that read the directory would see two archives.
    path = make_zip(tmp_path / "s.zip", [(f"xul.pdb/{ID}/xQ.sym", sym())], compression=zipfile.ZIP_STORED)
    data = path.read_bytes()
    path.write_bytes(data.replace(b"xQ.sym", b"xR.sym", 1))  # the local header comes first
    refused(path, rf"'xul.pdb/{ID}/xQ.sym' cannot be read: File name in directory")


# -- counts and sizes ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ten_thousand(tmp_path_factory):
    path = tmp_path_factory.mktemp("many") / "many.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(10_000):
            name = f"lib{i}.so"
            zf.writestr(f"{name}/{ID}/{name}.sym", sym(debug_file=name, os="Linux"))
    return path


def test_ten_thousand_tiny_members_are_fast(ten_thousand):
    start = time.monotonic()
    with inspect(ten_thousand, max_files=10_000) as archive:
        assert len(archive.stored) == 10_000
    assert time.monotonic() - start < 5  # about 0.6 s on an idle machine


def test_one_member_over_max_files(ten_thousand):
    refused(ten_thousand, "has 10000 members, more than the limit of 9999", max_files=9999)


def test_directory_entries_count_as_members(tmp_path):
    path = make_zip(tmp_path / "s.zip", [("xul.pdb/", b""), (f"xul.pdb/{ID}/xul.sym", sym())])
    refused(path, "has 2 members, more than the limit of 1", max_files=1)


def test_a_lying_member_count_in_the_end_record(tmp_path):
    path = make_zip(tmp_path / "s.zip", [(f"x.pdb/{ID}/{n}.sym", sym("x.pdb")) for n in "abc"])
    data = path.read_bytes()
    end = data.rindex(b"PK\x05\x06")
    put(path, end + 8, "<H", 1)  # entries on this disk
    put(path, end + 10, "<H", 1)  # entries in all: zipfile ignores both and parses three
    refused(path, "has 3 members, more than the limit of 2", max_files=2)


def test_an_oversize_central_directory_is_refused_before_parsing(tmp_path):
    info = zipfile.ZipInfo(f"xul.pdb/{ID}/xul.sym")
    info.comment = b"c" * 9000
    path = make_zip(tmp_path / "s.zip", [(info, sym())])
    refused(path, r"central directory \(\d+ bytes\) is too large", max_files=2)
    with inspect(path, max_files=3) as archive:
        assert len(archive.members) == 1


def test_zip_bomb_ratio(tmp_path):
    content = sym(rest=b"\0" * (2 * MIB))
    path = make_zip(tmp_path / "s.zip", [(f"xul.pdb/{ID}/xul.sym", content)])
    refused(path, rf"'xul.pdb/{ID}/xul.sym' is compressed more than 200:1 \({len(content)} bytes from \d+\)$")


def test_a_high_ratio_under_one_mib_is_fine(tmp_path):
    content = sym(rest=b"\0" * (MIB - 100))
    path = make_zip(tmp_path / "s.zip", [(f"xul.pdb/{ID}/xul.sym", content)])
    with inspect(path) as archive:
        assert archive.members[0].size == len(content) and archive.members[0].compressed_size * 200 < MIB


def test_zip_bomb_total(tmp_path):
    members = [(f"x.pdb/{ID}/{i}.sym", sym("x.pdb", rest=bytes(range(256)) * 4)) for i in range(3)]
    path = make_zip(tmp_path / "s.zip", members)
    size = len(members[0][1])
    message = refused(path, "expands to more than the limit", max_uncompressed_bytes=3 * size - 1)
    assert f"'x.pdb/{ID}/2.sym'" in message
    with inspect(path, max_uncompressed_bytes=3 * size) as archive:
        assert len(archive.stored) == 3


def test_ignored_members_count_in_the_declared_total(tmp_path):
    path = make_zip(
        tmp_path / "s.zip", [(f"x.pdb/{ID}/x.sym", sym("x.pdb")), (f"x.pdb/{ID}/x.pdb", b"x" * 5000)]
    )
    refused(path, "expands to more than the limit", max_uncompressed_bytes=5000)


def lying(tmp_path, real, declared, crc):
    """A stored member whose headers (local and central) declare `declared` bytes and `crc`."""
    path = make_zip(tmp_path / "s.zip", [(f"xul.pdb/{ID}/xul.sym", real)], compression=zipfile.ZIP_STORED)
    for offset, (size_at, crc_at) in ((0, (22, 14)), (directory_offset(path), (24, 16))):
        put(path, offset + size_at, "<L", declared)
        put(path, offset + crc_at, "<L", crc)
    return path


def test_a_lying_header_with_the_real_crc(tmp_path):
    real = sym(rest=b"x" * 10_000)
    path = lying(tmp_path, real, 100, zlib.crc32(real))
    refused(path, "is damaged: Bad CRC-32")


def test_a_lying_header_with_a_matching_crc_yields_only_what_it_declares(tmp_path):
    real = sym(rest=b"x" * 10_000)
    path = lying(tmp_path, real, 100, zlib.crc32(real[:100]))
    with inspect(path) as archive:
        (member,) = archive.members
        assert member.size == 100 and member.sha256 == hashlib.sha256(real[:100]).hexdigest()
        assert b"".join(archive.read_chunks(member)) == real[:100]


def test_a_header_declaring_more_than_the_data_holds(tmp_path):
    real = sym(rest=b"x" * 1000)
    path = lying(tmp_path, real, 5000, zlib.crc32(real))
    # zipfile stops at the stored data's end with a matching CRC and no error: the reader notices.
    refused(path, f"ends after {len(real)} of the 5000 bytes declared")


# The reader checks the Member's own figures, not zipfile's, so a zipfile that ever yielded more
# than a header declares still could not get past it: give it a Member that understates.
@pytest.mark.parametrize(
    "change, match",
    [
        (dict(size=10), "holds more than the 10 bytes its header declares"),
        (dict(compressed_size=1), "compressed more than 200:1"),
        (dict(size=3 * MIB), f"ends after {2 * MIB + len(sym())} of the {3 * MIB} bytes declared"),
    ],
)
def test_the_reader_enforces_the_members_limits(tmp_path, change, match):
    content = sym(rest=random.Random(9).randbytes(2 * MIB))  # incompressible: passes the real checks
    path = make_zip(tmp_path / "s.zip", [(f"xul.pdb/{ID}/xul.sym", content)])
    with inspect(path) as archive:
        member = dataclasses.replace(archive.members[0], **change)
        with pytest.raises(ArchiveError, match=match):
            for _ in read_member(archive, member, chunk_size=CHUNK // 4):
                pass
        with pytest.raises(ArchiveError, match=match), archive.open(member) as reader:
            reader.read()


# -- hostile members -----------------------------------------------------------------------------------
def test_encrypted_member(tmp_path):
    path = tmp_path / "s.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"xul.pdb/{ID}/xul.sym", sym())
        zf.infolist()[-1].flag_bits |= 0x1  # writestr clears flag_bits; the central directory has it
    refused(path, rf"'xul.pdb/{ID}/xul.sym' is encrypted")


def test_symlink_member(tmp_path):
    info = zipfile.ZipInfo(f"xul.pdb/{ID}/xul.sym")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    path = make_zip(tmp_path / "s.zip", [(info, b"/etc/passwd")])
    refused(path, rf"'xul.pdb/{ID}/xul.sym' is a symbolic link")


def test_bzip2_member(tmp_path):
    path = make_zip(tmp_path / "s.zip", [(f"xul.pdb/{ID}/xul.sym", sym())], compression=zipfile.ZIP_BZIP2)
    refused(path, "uses compression method 12: only stored and deflated")


def test_duplicates_with_the_same_contents_are_one_member(tmp_path):
    name = f"xul.pdb/{ID}/xul.sym"
    path = make_zip(tmp_path / "s.zip", [(name, sym()), (name, sym()), (name.replace(ID, ID.lower()), sym())])
    with inspect(path) as archive:
        assert [m.name for m in archive.members] == [name]
        assert archive.skipped == [name, name.replace(ID, ID.lower())]


@pytest.mark.parametrize("second", [f"xul.pdb/{ID}/xul.sym", f"xul.pdb/{ID.lower()}/xul.sym"])
def test_duplicates_with_different_contents(tmp_path, second):
    path = make_zip(tmp_path / "s.zip", [(f"xul.pdb/{ID}/xul.sym", sym()), (second, sym(rest=b"INFO x\n"))])
    refused(path, f"Two members named '{second}' have different contents")


# -- names ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, reason",
    [
        (f"../{ID}/xul.sym", "a '.' or '..' segment"),
        (f"xul.pdb/{ID}/..", "a '.' or '..' segment"),
        (f"./{ID}/xul.sym", "a '.' or '..' segment"),
        (f"/xul.pdb/{ID}/xul.sym", "an absolute path"),
        (f"xul.pdb\\{ID}\\xul.sym", "a backslash"),
        (f"xul.pdb/{ID}/x\\y.sym", "a backslash"),
        (f"xul.pdb/{ID}", "2 segments, not 3"),
        ("xul.sym", "1 segments, not 3"),
        (f"a/../xul.pdb/{ID}/xul.sym", "5 segments, not 3"),
        (f"xul.pdb/{ID}/sub/xul.sym", "4 segments, not 3"),
        ("xul.pdb//xul.sym", "an empty segment"),
        ("xul.pdb/XYZ123/xul.sym", "debug id is not hexadecimal"),
        ("xul.pdb/12 34/xul.sym", "debug id is not hexadecimal"),
        (f"xul.pdb/{ID}/x%2e.sym", "never found"),
        (f"xul~.pdb/{ID}/xul.sym", "never found"),
        (f"xul.pdb/{ID}/x\x01.sym", "never found"),
        (f"xül.pdb/{ID}/xul.sym", "never found"),
    ],
)
def test_invalid_member_names(tmp_path, name, reason):
    path = make_zip(tmp_path / "s.zip", [(f"ok.pdb/{ID}/ok.sym", sym("ok.pdb")), (name, sym())])
    message = refused(path, "^Invalid member name")
    assert repr(name) in message and reason in message


def test_a_hostile_name_is_shown_shortened(tmp_path):
    name = "x" * 5000
    message = refused(make_zip(tmp_path / "s.zip", [(name, b"")]), "Invalid member name")
    assert len(message) < 400 and "xxx..." in message


def test_code_points_above_ff_are_valid(tmp_path):
    path = make_zip(tmp_path / "s.zip", [(f"€.pdb/{ID}/€.sym", sym("€.pdb"))])
    with inspect(path) as archive:
        assert archive.members[0].key == f"v1/€.pdb/{ID}/€.sym"


def test_a_name_flagged_utf8_that_is_not(tmp_path):
    path = tmp_path / "s.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"xul.pdb/{ID}/QQ.sym", sym())
        zf.infolist()[-1].flag_bits |= 0x800
    patch(path, b"QQ.sym", b"\xff\xfe.sym")
    message = refused(path, "is marked UTF-8 but is not")
    assert message == f"The member name b'xul.pdb/{ID}/\\xff\\xfe.sym' is marked UTF-8 but is not"


def test_a_nul_in_a_name(tmp_path):
    # zipfile cannot write one, and its ZipInfo.filename stops at the NUL: the check uses the whole name.
    path = make_zip(tmp_path / "s.zip", [(f"xul.pdb/{ID}/xQ.sym", sym())], compression=zipfile.ZIP_STORED)
    patch(path, b"xQ.sym", b"x\0.sym")
    refused(path, r"'xul.pdb/.*/x\\x00.sym'.*never found")


def test_an_unflagged_utf8_name_is_read_as_utf8(tmp_path):
    path = make_zip(
        tmp_path / "s.zip", [(f"QQQ.pdb/{ID}/QQQ.sym", sym("€.pdb"))], compression=zipfile.ZIP_STORED
    )
    patch(path, b"QQQ", "€".encode())  # three bytes for three, no UTF-8 flag: cp437 would say 'ΓÇ¼'
    with inspect(path) as archive:
        assert archive.members[0].name == f"€.pdb/{ID}/€.sym"


def test_an_unflagged_non_utf8_name_is_cp437(tmp_path):
    members = [(f"QQ.pdb/{ID}/QQ.sym", sym("αα.pdb")), (f"RR.pdb/{ID}/RR.sym", sym("RR.pdb"))]
    path = make_zip(tmp_path / "s.zip", members, compression=zipfile.ZIP_STORED)
    patch(path, b"QQ", b"\xe0\xe0")  # cp437 alpha, and not UTF-8
    with inspect(path) as archive:
        assert archive.members[0].key == f"v1/αα.pdb/{ID}/αα.sym"
    patch(path, b"RR", b"\x81\x81")  # cp437 u-umlaut: U+00FC, an invalid character
    refused(path, rf"'üü.pdb/{ID}/üü.sym'.*never found")


@pytest.mark.parametrize("name", [f"qcom/proprietary/lib.so/{ID}/lib.so.sym", "qcom/proprietary/"])
def test_disallowed_snippet(tmp_path, name):
    path = make_zip(tmp_path / "s.zip", [(f"x.pdb/{ID}/x.sym", sym("x.pdb")), (name, b"")])
    message = refused(
        path,
        "contains the snippet 'qcom/proprietary' which is not allowed",
        disallowed_snippets=["qcom/proprietary"],
    )
    assert repr(name) in message


def test_snippets_that_do_not_match_or_are_empty(tmp_path):
    path = make_zip(tmp_path / "s.zip", [(f"x.pdb/{ID}/x.sym", sym("x.pdb"))])
    with inspect(path, disallowed_snippets=["", "qcom/proprietary"]) as archive:
        assert len(archive.members) == 1


# -- the MODULE line -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "content, match",
    [
        (sym(debugid="0" * 33), "debug id '000000000000000000000000000000000' is not the path's"),
        (sym(debug_file="xul"), "debug file 'xul' is not the path's 'xul.pdb'"),
        (sym(debug_file="XUL.PDB"), "debug file 'XUL.PDB' is not the path's 'xul.pdb'"),
        (b"", "does not start with a Breakpad"),
        (b"INFO CODE_ID 1 x.dll\n" + sym(), "does not start with a Breakpad"),
        (f"MODULE windows {ID} xul.pdb\n".encode(), "does not start with a Breakpad"),
        (b"\xef\xbb\xbf" + sym(), "does not start with a Breakpad"),  # a BOM
        (b"MODULE windows x86_64 \xff xul.pdb\n", "does not start with a Breakpad"),
        (f"MODULE windows x86_64 {ID} ".encode() + b" " * 70_000 + b"xul.pdb\n", "does not start"),
    ],
)
def test_module_line_must_match_the_path(tmp_path, content, match):
    path = make_zip(tmp_path / "s.zip", [(f"xul.pdb/{ID}/xul.sym", content)])
    message = refused(path, match)
    assert message.startswith(f"'xul.pdb/{ID}/xul.sym'")


def test_module_line_without_a_newline_is_a_whole_file(tmp_path):
    path = make_zip(tmp_path / "s.zip", [(f"xul.pdb/{ID}/xul.sym", sym().rstrip(b"\n"))])
    with inspect(path) as archive:
        assert archive.members[0].header["debug_file"] == "xul.pdb"


def test_a_non_sym_member_is_not_checked(tmp_path):
    path = make_zip(tmp_path / "s.zip", [(f"xul.pdb/{ID}/xul.pd_", b"MSCF...")])
    with inspect(path) as archive:
        assert archive.members[0].header is None and archive.members[0].status == STORE


# -- sym_header ----------------------------------------------------------------------------------------
def test_sym_header_linux_without_code_file():
    text = (
        b"MODULE Linux x86_64 abc0 libxul.so\nINFO CODE_ID a1b2c3\nINFO OTHER x\nINFO GENERATOR g 1\nFILE 0\n"
    )
    assert sym_header(text) == {
        "os": "Linux",
        "arch": "x86_64",
        "debug_id": "ABC0",
        "debug_file": "libxul.so",
        "code_id": "A1B2C3",
        "code_file": None,
        "generator": "g 1",
    }


def test_sym_header_stops_at_the_first_other_line():
    text = b"MODULE mac arm64 AB x\nFILE 0 a.c\nINFO CODE_ID CD x\n"
    assert sym_header(text)["code_id"] is None


def test_sym_header_drops_a_cut_last_line_unless_at_eof():
    text = b"MODULE mac arm64 AB x\nINFO CODE_ID CD lib"
    assert sym_header(text)["code_id"] is None
    assert sym_header(text, at_eof=True)["code_file"] == "lib"
    assert sym_header(b"MODULE mac arm64 AB x") is None
    assert sym_header(b"MODULE mac arm64 AB x", at_eof=True)["debug_file"] == "x"


def test_sym_header_code_file_with_spaces_and_bad_bytes():
    text = b"MODULE windows x86 AB a b.pdb\r\nINFO CODE_ID cd a b.dll\r\nINFO GENERATOR \xff\n"
    header = sym_header(text)
    assert (header["debug_file"], header["code_file"], header["generator"]) == ("a b.pdb", "a b.dll", None)


@pytest.mark.parametrize("text", [b"", b"\n", b"MODULE a b c\n", b"module a b c d\n", b"FILE 0 a\n"])
def test_sym_header_none(text):
    assert sym_header(text, at_eof=True) is None


def test_the_total_is_counted_again_while_reading(tmp_path):
    # Unreachable through zipfile (the reader bounds each member by its declared size), so the
    # second count is driven directly: the bytes actually read are summed against the limit.
    from tecken_pyramid.upload_archive import _verify_members

    members = [(f"x.pdb/{ID}/{i}.sym", sym("x.pdb")) for i in range(3)]
    path = make_zip(tmp_path / "s.zip", members)
    with inspect(path) as archive:
        _verify_members(archive, 3 * len(sym("x.pdb")))
        with pytest.raises(
            ArchiveError, match=f"expands to more than the limit of {3 * len(sym('x.pdb')) - 1} bytes$"
        ):
            _verify_members(archive, 3 * len(sym("x.pdb")) - 1)
