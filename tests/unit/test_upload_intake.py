"""SPEC §9 "Intake": an upload body streamed to a temporary file, counted, hashed, never held whole."""

import hashlib
import io
import os
import tracemalloc

import pytest
import urllib3

from tecken_pyramid.upload_intake import (
    CHUNK,
    FIELD_MAX,
    MAX_FIELDS,
    NOT_FORM,
    IntakeError,
    drain,
    read_upload,
)

MIB = 1024 * 1024


def multipart(fields, boundary="xXxBOUNDARYxXx"):
    """fields: (name, value) or (name, (filename, bytes)) as urllib3 takes them."""
    body, content_type = urllib3.encode_multipart_formdata(fields, boundary=boundary)
    return body, content_type


def environ(body, content_type, *, length=True, terminated=False, stream=None):
    env = {"REQUEST_METHOD": "POST", "CONTENT_TYPE": content_type}
    env["wsgi.input"] = stream if stream is not None else io.BytesIO(body)
    if length is True:
        env["CONTENT_LENGTH"] = str(len(body))
    elif length is not None:
        env["CONTENT_LENGTH"] = str(length)
    if terminated:
        env["wsgi.input_terminated"] = True
    return env


def read(body, content_type, tmp_path, max_bytes=10 * MIB, **kw):
    return read_upload(environ(body, content_type, **kw), tempdir=str(tmp_path), max_bytes=max_bytes)


def leftovers(tmp_path):
    return sorted(os.listdir(tmp_path))


class Unreadable(io.RawIOBase):
    """A wsgi.input that fails the test if anything reads it."""

    def read(self, size=-1):
        raise AssertionError("wsgi.input was read")

    readinto = read


def test_the_first_file_part_is_the_archive_and_text_fields_are_kept(tmp_path):
    archive = os.urandom(5000)
    body, ctype = multipart(
        [
            ("try", "1"),
            ("symbols.zip", ("local-name.zip", archive)),
            ("second.zip", ("second.zip", b"not this one")),
            ("try", "0"),  # a repeated name: the first value stands
            ("note", "h\u00e9"),
        ]
    )
    with read(body, ctype, tmp_path) as intake:
        assert intake.fields == {"try": "1", "note": "h\u00e9"}
        assert intake.archive_name == "symbols.zip"
        assert intake.archive_size == len(archive)
        assert intake.archive_sha256 == hashlib.sha256(archive).hexdigest()
        assert intake.body_bytes == len(body)
        assert os.path.dirname(intake.archive_path) == str(tmp_path)
        with open(intake.archive_path, "rb") as fp:
            assert fp.read() == archive
        assert leftovers(tmp_path) == [
            os.path.basename(intake.archive_path)
        ]  # one file: the others discarded
    assert leftovers(tmp_path) == []  # close() removed it
    intake.close()  # idempotent


@pytest.mark.parametrize(
    ("field", "filename", "expected"),
    [
        ("symbols.zip", "whatever.bin", "symbols.zip"),  # requests files={"symbols.zip": fp}
        ("MyFile.ZIP", "MyFile.ZIP", "MyFile.ZIP"),  # curl -F MyFile.ZIP=@MyFile.ZIP, any case
        ("file", "upload.Zip", "upload.Zip"),  # a browser form: the field name has no .zip
        ("file", "C:\\builds\\out\\symbols.zip", "symbols.zip"),  # a path sent as the file name
        ("file", "dir/symbols.zip", "symbols.zip"),
        ("archive.rar", "archive.rar", "archive.rar"),  # neither: the field name (the caller refuses it)
        ("file", "symbols.tar", "file"),
    ],
)
def test_the_archive_name_is_the_field_name_unless_only_the_file_name_ends_with_zip(
    tmp_path, field, filename, expected
):
    body, ctype = multipart([(field, (filename, b"PK\x05\x06" + bytes(18)))])
    with read(body, ctype, tmp_path) as intake:
        assert intake.archive_name == expected


def test_an_empty_file_input_is_not_the_archive(tmp_path):
    body, ctype = multipart([("empty", ("", b"")), ("symbols.zip", ("a.zip", b"zip bytes"))])
    with read(body, ctype, tmp_path) as intake:
        assert intake.archive_name == "symbols.zip"
        assert intake.archive_size == 9


def test_a_zero_byte_file_part_is_an_empty_archive(tmp_path):
    body, ctype = multipart([("symbols.zip", ("symbols.zip", b""))])
    with read(body, ctype, tmp_path) as intake:
        assert intake.archive_size == 0
        assert intake.archive_sha256 == hashlib.sha256(b"").hexdigest()
        assert os.path.getsize(intake.archive_path) == 0


def test_a_multipart_body_without_a_file_part_has_no_archive(tmp_path):
    body, ctype = multipart([("url", "https://example.com/symbols.zip"), ("try", "yes")])
    intake = read(body, ctype, tmp_path)
    assert intake.archive_path is None and intake.archive_name is None
    assert intake.fields == {"url": "https://example.com/symbols.zip", "try": "yes"}
    intake.close()  # nothing to remove


def test_an_empty_body_has_no_fields_and_no_archive(tmp_path):
    intake = read(b"", "multipart/form-data; boundary=abc", tmp_path)
    assert (intake.fields, intake.archive_path, intake.body_bytes) == ({}, None, 0)


def test_a_part_boundary_across_chunks_and_boundary_like_bytes_inside_the_file(tmp_path):
    boundary = "b0undary"
    head, _ = multipart([("symbols.zip", ("s.zip", b""))], boundary=boundary)
    data_start = head.index(b"\r\n\r\n") + 4
    # The file holds "\r\n--b0undar" (a boundary prefix) across the end of the first chunk read.
    archive = b"A" * (CHUNK - data_start - 5) + b"\r\n--b0undar" + b"B" * (CHUNK + 7) + b"\r\n--b0und"
    body, ctype = multipart([("symbols.zip", ("s.zip", archive))], boundary=boundary)
    assert body[CHUNK - 5 : CHUNK + 6] == b"\r\n--b0undar"
    with read(body, ctype, tmp_path) as intake:
        with open(intake.archive_path, "rb") as fp:
            assert fp.read() == archive


def test_a_3_mb_part_streams_through_without_being_held_in_memory(tmp_path):
    archive = os.urandom(3 * MIB)
    body, ctype = multipart([("try", "0"), ("symbols.zip", ("symbols.zip", archive))])
    env = environ(body, ctype)
    tracemalloc.start()
    try:
        intake = read_upload(env, tempdir=str(tmp_path), max_bytes=10 * MIB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    with intake:
        assert intake.archive_size == len(archive)
        assert intake.archive_sha256 == hashlib.sha256(archive).hexdigest()
    assert peak < 512 * 1024, peak  # a few chunks, never the 3 MB part


def test_urlencoded_fields_for_upload_by_download(tmp_path):
    body = b"url=https%3A%2F%2Fqueue.example%2Fa%20b.zip%3Fx%3D1&try=&flag&note=caf%C3%A9+au+lait&url=second"
    intake = read(body, "application/x-www-form-urlencoded", tmp_path)
    assert intake.fields == {
        "url": "https://queue.example/a b.zip?x=1",
        "try": "",
        "flag": "",
        "note": "caf\u00e9 au lait",
    }
    assert intake.archive_path is None and intake.body_bytes == len(body)


def test_urlencoded_with_a_charset_parameter(tmp_path):
    body = b"url=https://x.example/s.zip"
    intake = read(body, "application/x-www-form-urlencoded; charset=utf-8", tmp_path)
    assert intake.fields == {"url": "https://x.example/s.zip"}


@pytest.mark.parametrize(
    "content_type",
    [
        "",
        "application/zip",
        "application/json",
        "text/plain",
        "multipart/form-data",  # no boundary
        "multipart/mixed; boundary=xXxBOUNDARYxXx",
    ],
)
def test_a_body_that_is_not_a_form_is_400(tmp_path, content_type):
    body, _ = multipart([("symbols.zip", ("s.zip", b"zip"))])
    with pytest.raises(IntakeError) as info:
        read(body, content_type, tmp_path)
    assert (info.value.status, str(info.value)) == (400, NOT_FORM)
    assert leftovers(tmp_path) == []


def test_a_broken_multipart_body_is_400_and_leaves_no_file(tmp_path):
    body, ctype = multipart([("symbols.zip", ("s.zip", b"zip" * 1000))])
    broken = body.replace(b"\r\n\r\n", b"\r\nbroken header line\x00\r\n\r\n", 1)
    with pytest.raises(IntakeError) as info:
        read(broken, ctype, tmp_path)
    assert (info.value.status, str(info.value)) == (400, NOT_FORM)
    garbage = b"this is not multipart at all" * 10
    with pytest.raises(IntakeError) as info:
        read(garbage, ctype, tmp_path)
    assert (info.value.status, str(info.value)) == (400, NOT_FORM)
    assert leftovers(tmp_path) == []


def test_a_body_shorter_than_its_content_length_is_400_and_leaves_no_file(tmp_path):
    body, ctype = multipart([("symbols.zip", ("s.zip", os.urandom(200_000)))])
    with pytest.raises(IntakeError) as info:
        read(body[:150_000], ctype, tmp_path, length=len(body))
    assert info.value.status == 400
    assert str(info.value) == f"The request body ended after 150000 of its {len(body)} bytes"
    assert leftovers(tmp_path) == []


def test_a_multipart_body_without_its_closing_boundary_is_400(tmp_path):
    body, ctype = multipart([("symbols.zip", ("s.zip", os.urandom(200_000)))])
    cut = body[: body.rindex(b"\r\n--")]  # a consistent Content-Length, the end missing
    with pytest.raises(IntakeError) as info:
        read(cut, ctype, tmp_path)
    assert info.value.status == 400
    assert str(info.value) == "The multipart body ended before its closing boundary"
    assert leftovers(tmp_path) == []


def test_a_content_length_over_the_limit_is_413_before_reading_anything(tmp_path):
    body, ctype = multipart([("symbols.zip", ("s.zip", b"x" * 100))])
    env = environ(body, ctype, length=1001, stream=Unreadable())
    with pytest.raises(IntakeError) as info:
        read_upload(env, tempdir=str(tmp_path), max_bytes=1000)
    assert (info.value.status, str(info.value)) == (413, "The upload is larger than the limit of 1000 bytes")
    assert leftovers(tmp_path) == []


def test_a_content_length_at_the_limit_is_read(tmp_path):
    body, ctype = multipart([("symbols.zip", ("s.zip", b"x" * 100))])
    with read(body, ctype, tmp_path, max_bytes=len(body)) as intake:
        assert intake.archive_size == 100


def test_a_body_without_content_length_is_counted_while_it_streams(tmp_path):
    body, ctype = multipart([("symbols.zip", ("s.zip", os.urandom(300_000)))])
    with pytest.raises(IntakeError) as info:
        read(body, ctype, tmp_path, max_bytes=200_000, length=None, terminated=True)
    assert (info.value.status, str(info.value)) == (
        413,
        "The upload is larger than the limit of 200000 bytes",
    )
    assert leftovers(tmp_path) == []  # the partly written temporary file is removed
    with read(body, ctype, tmp_path, length=None, terminated=True) as intake:  # under the limit: read to EOF
        assert intake.archive_size == 300_000
        assert intake.body_bytes == len(body)


def test_a_body_without_content_length_on_a_server_without_eof_termination_is_empty(tmp_path):
    body, ctype = multipart([("symbols.zip", ("s.zip", b"zip"))])
    env = environ(body, ctype, length=None, stream=Unreadable())  # PEP 3333: read nothing
    intake = read_upload(env, tempdir=str(tmp_path), max_bytes=1000)
    assert (intake.archive_path, intake.body_bytes) == (None, 0)


@pytest.mark.parametrize("value", ["-1", "12abc", "0x10", "\u0661\u0662"])
def test_a_content_length_that_is_not_a_number_is_400(tmp_path, value):
    with pytest.raises(IntakeError) as info:
        read(b"url=x", "application/x-www-form-urlencoded", tmp_path, length=value)
    assert info.value.status == 400


def test_a_text_field_over_64_kib_is_400(tmp_path):
    body, ctype = multipart([("url", "u" * (FIELD_MAX + 1)), ("symbols.zip", ("s.zip", b"zip"))])
    with pytest.raises(IntakeError) as info:
        read(body, ctype, tmp_path)
    assert (info.value.status, str(info.value)) == (
        400,
        f"The form field 'url' is larger than {FIELD_MAX} bytes",
    )
    body, ctype = multipart([("url", "u" * FIELD_MAX)])
    assert read(body, ctype, tmp_path).fields["url"] == "u" * FIELD_MAX
    with pytest.raises(IntakeError):
        read(b"url=" + b"%41" * (FIELD_MAX + 1), "application/x-www-form-urlencoded", tmp_path)
    intake = read(b"url=" + b"%41" * FIELD_MAX, "application/x-www-form-urlencoded", tmp_path)
    assert intake.fields["url"] == "A" * FIELD_MAX


def test_too_many_text_fields_is_400_and_leaves_no_file(tmp_path):
    fields = [("symbols.zip", ("s.zip", b"zip"))] + [(f"f{i}", "v") for i in range(MAX_FIELDS + 1)]
    body, ctype = multipart(fields)
    with pytest.raises(IntakeError) as info:
        read(body, ctype, tmp_path)
    assert info.value.status == 400
    assert leftovers(tmp_path) == []


def test_drain_reads_to_content_length_or_the_limit():
    stream = io.BytesIO(b"x" * 10_000 + b"NEXT")
    drain({"CONTENT_LENGTH": "10000", "wsgi.input": stream}, max_bytes=1_000_000)
    assert stream.tell() == 10_000  # never past the body
    stream = io.BytesIO(b"x" * 300_000)
    drain({"CONTENT_LENGTH": "300000", "wsgi.input": stream}, max_bytes=100_000)
    assert stream.tell() == 100_000
    stream = io.BytesIO(b"x" * 300_000)
    drain({"wsgi.input": stream, "wsgi.input_terminated": True}, max_bytes=1_000_000)
    assert stream.tell() == 300_000  # to EOF
    drain({"CONTENT_LENGTH": "100", "wsgi.input": io.BytesIO(b"short")}, max_bytes=1000)  # EOF early: fine
    drain({"wsgi.input": Unreadable()}, max_bytes=1000)  # no length, not EOF-terminated: nothing read
    drain({"CONTENT_LENGTH": "bad", "wsgi.input": Unreadable()}, max_bytes=1000)


def test_drain_never_raises_on_a_broken_stream():
    class Broken(io.RawIOBase):
        def read(self, size=-1):
            raise OSError("connection reset")

    drain({"CONTENT_LENGTH": "100", "wsgi.input": Broken()}, max_bytes=1000)


def test_a_temporary_directory_that_cannot_be_written_raises_os_error_not_intake_error(tmp_path):
    body, ctype = multipart([("symbols.zip", ("s.zip", b"zip"))])
    with pytest.raises(FileNotFoundError):
        read_upload(environ(body, ctype), tempdir=str(tmp_path / "missing"), max_bytes=1000)
