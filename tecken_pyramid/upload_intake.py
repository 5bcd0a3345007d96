"""The body of ``POST /upload/`` read into a temporary file (SPEC §9, "Intake").

Pure: a WSGI environ in, :class:`Intake` out, no Pyramid, database or storage. The body is read
in :data:`CHUNK`-byte pieces into python-multipart's streaming parsers; neither the body nor a
file part is ever held in memory. ``multipart/form-data``: the first file part (one with a
non-empty ``filename=``) goes to a temporary file in ``tempdir``, size and sha256 counted on the
way; later file parts are read and discarded (as Tecken); text parts become ``fields``.
``application/x-www-form-urlencoded`` (``url=`` for upload by download): fields only.

A ``Content-Length`` over ``max_bytes`` is refused before a byte is read; the body is counted
while it streams and refused once past it. Without a ``Content-Length`` the body is read to its
end only when the server says it is EOF-terminated (``wsgi.input_terminated``: waitress, which
also sets ``CONTENT_LENGTH`` once it has de-chunked a body), else it is empty (PEP 3333).

Problems raise :class:`IntakeError` (400 or 413, the text for ``{"error": ...}``), the temporary
file removed first; an OSError writing it (the disk's fault, not the client's) propagates as it
is. No file part is not an error: the caller decides (:data:`NOT_FORM`, or upload by ``url``).
"""

import contextlib
import dataclasses
import hashlib
import os
import tempfile
import urllib.parse

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, QuerystringParser, parse_options_header

CHUNK = 64 * 1024
FIELD_MAX = 64 * 1024  # bytes of one text field's value
MAX_FIELDS = 100  # text fields in one body
NOT_FORM = "Must be multipart form data with at least one file"  # Tecken's text
MULTIPART = b"multipart/form-data"
URLENCODED = b"application/x-www-form-urlencoded"


class IntakeError(Exception):
    """An unreadable or refused body: ``status`` 400 or 413; ``str(exc)`` for the client."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


@dataclasses.dataclass
class Intake:
    fields: dict[str, str]  # text fields, the first value of each name
    archive_name: str | None  # see _archive_name; None without a file part
    archive_path: str | None  # the temporary file holding the first file part; the caller closes it
    archive_size: int
    archive_sha256: str
    body_bytes: int  # bytes of the body read in all

    def close(self):
        """Remove the temporary file (idempotent)."""
        if self.archive_path:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.archive_path)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def too_large(max_bytes):
    return IntakeError(413, f"The upload is larger than the limit of {max_bytes} bytes")


def content_length(environ):
    """``CONTENT_LENGTH`` as an int, None when absent or blank; 400 when not a number."""
    raw = (environ.get("CONTENT_LENGTH") or "").strip()
    if not raw:
        return None
    if not raw.isdigit() or not raw.isascii():
        raise IntakeError(400, "The Content-Length header is not a number")
    return int(raw)


class _Body:
    """The request body as chunks, counted; truncation and the size limit raise IntakeError."""

    def __init__(self, environ, max_bytes):
        self.length = content_length(environ)
        if self.length is not None and self.length > max_bytes:
            raise too_large(max_bytes)  # before anything is read
        if self.length is None and not environ.get("wsgi.input_terminated"):
            self.length = 0  # PEP 3333: nothing may be read past CONTENT_LENGTH
        self.stream = environ.get("wsgi.input")
        self.max_bytes = max_bytes
        self.count = 0

    def chunks(self):
        length = self.length
        while length is None or self.count < length:
            want = CHUNK if length is None else min(CHUNK, length - self.count)
            try:
                data = self.stream.read(want) if self.stream is not None else b""
            except (OSError, ValueError) as exc:
                raise IntakeError(400, f"The request body could not be read: {exc}") from None
            if not data and length is None:
                return
            if not data:
                raise IntakeError(400, f"The request body ended after {self.count} of its {length} bytes")
            self.count += len(data)
            if self.count > self.max_bytes:
                raise too_large(self.max_bytes)
            yield data


class _Form:
    """The parser callbacks' target: text fields, and the first file part in a temporary file."""

    def __init__(self, tempdir):
        self.tempdir = tempdir
        self.fields, self.text_count = {}, 0
        self.archive_name = self.archive_path = self._file = None
        self.archive_size, self.sha256 = 0, hashlib.sha256()
        self.ended = False  # the multipart closing boundary was seen
        self._kind = None  # "text", "file" or None (discarded) for the current part
        self._name, self._text, self._limit = "", bytearray(), FIELD_MAX
        self._headers, self._field, self._value = {}, bytearray(), bytearray()

    def start_text(self, name, limit=FIELD_MAX):  # both kinds of body
        self.text_count += 1
        if self.text_count > MAX_FIELDS:
            raise IntakeError(400, f"The form has more than {MAX_FIELDS} fields")
        self._kind, self._name, self._text, self._limit = "text", name, bytearray(), limit

    def end_text(self, decode):
        value = decode(self._text)
        if len(self._text) > self._limit or len(value.encode("utf-8")) > FIELD_MAX:
            raise IntakeError(400, f"The form field {self._name!r} is larger than {FIELD_MAX} bytes")
        self.fields.setdefault(self._name, value)

    def data(self, data, start, end):
        if self._kind == "file" and self._file is not None:
            chunk = memoryview(data)[start:end]
            self._file.write(chunk)
            self.sha256.update(chunk)
            self.archive_size += len(chunk)
        elif self._kind == "text":
            self._text += memoryview(data)[start:end]
            if len(self._text) > self._limit:
                raise IntakeError(400, f"The form field {self._name!r} is larger than {FIELD_MAX} bytes")

    def multipart_callbacks(self):
        return {
            "on_part_begin": self.part_begin,
            "on_header_field": lambda data, start, end: self._field.extend(data[start:end]),
            "on_header_value": lambda data, start, end: self._value.extend(data[start:end]),
            "on_header_end": self.header_end,
            "on_headers_finished": self.headers_finished,
            "on_part_data": self.data,
            "on_part_end": self.part_end,
            "on_end": lambda: setattr(self, "ended", True),
        }

    def part_begin(self):
        self._headers, self._kind = {}, None

    def header_end(self):
        self._headers[bytes(self._field).strip().lower()] = bytes(self._value).strip()
        self._field, self._value = bytearray(), bytearray()

    def headers_finished(self):
        disposition, params = parse_options_header(self._headers.get(b"content-disposition"))
        if disposition != b"form-data" or b"name" not in params:
            return  # not a form field: discarded
        name = _text(params[b"name"])
        if b"filename" not in params:
            self.start_text(name)
        elif params[b"filename"]:  # filename="" (an empty file input) is discarded, as Django does
            self._kind = "file"
            if self.archive_path is None:  # the first file part; later ones are read and discarded
                self.archive_name = _archive_name(name, _text(params[b"filename"]))
                fd, self.archive_path = tempfile.mkstemp(
                    prefix="tecken-upload-", suffix=".zip", dir=self.tempdir
                )
                self._file = os.fdopen(fd, "wb")

    def part_end(self):
        if self._kind == "text":
            self.end_text(_text)
        elif self._file is not None:
            self._file.close()
            self._file = None
        self._kind = None

    def discard(self):  # after an error
        if self._file is not None:
            self._file.close()
        if self.archive_path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.archive_path)


def _archive_name(name, filename):
    """Tecken names the archive by the field name (curl ``-F symbols.zip=@x``, requests
    ``files={"symbols.zip": fp}``); a field name without ``.zip`` and a file name with it
    (a browser form's ``name="file"``) gives the file name."""
    if name.lower().endswith(".zip"):
        return name
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    return base if base.lower().endswith(".zip") else name


def _text(raw):
    return bytes(raw).decode("utf-8", "replace")


def _unquote(raw):
    return urllib.parse.unquote_plus(bytes(raw).decode("latin-1"), encoding="utf-8", errors="replace")


def _urlencoded_parser(form):
    name = bytearray()
    started = False

    def field_start():
        nonlocal name, started
        name, started = bytearray(), False

    def field_name(data, start, end):
        name.extend(data[start:end])
        if len(name) > 3 * FIELD_MAX:
            raise IntakeError(400, f"A form field name is longer than {FIELD_MAX} bytes")

    def field_data(data, start, end):
        nonlocal started
        if not started:
            form.start_text(_unquote(name), limit=3 * FIELD_MAX)  # room for %XX
            started = True
        form.data(data, start, end)

    def field_end():
        if not started:  # "name" or "name=": an empty value
            form.start_text(_unquote(name), limit=3 * FIELD_MAX)
        form.end_text(_unquote)

    callbacks = {"on_field_start": field_start, "on_field_name": field_name}
    callbacks |= {"on_field_data": field_data, "on_field_end": field_end}
    return QuerystringParser(callbacks)


def read_upload(environ, *, tempdir=None, max_bytes):
    """Read the request body of an upload into :class:`Intake`; see the module docstring."""
    body = _Body(environ, max_bytes)
    ctype, params = parse_options_header(environ.get("CONTENT_TYPE") or "")
    form = _Form(tempdir)
    try:
        if ctype == MULTIPART:
            boundary = params.get(b"boundary")
            if not boundary:
                raise IntakeError(400, NOT_FORM)
            parser = MultipartParser(boundary, form.multipart_callbacks())
        elif ctype == URLENCODED:
            parser = _urlencoded_parser(form)
        else:
            raise IntakeError(400, NOT_FORM)
        for data in body.chunks():
            parser.write(data)
        parser.finalize()
        if ctype == MULTIPART and body.count and not form.ended:
            raise IntakeError(400, "The multipart body ended before its closing boundary")
    except FormParserError:
        form.discard()
        raise IntakeError(400, NOT_FORM) from None
    except BaseException:
        form.discard()
        raise
    return Intake(
        fields=form.fields,
        archive_name=form.archive_name,
        archive_path=form.archive_path,
        archive_size=form.archive_size,
        archive_sha256=form.sha256.hexdigest(),
        body_bytes=body.count,
    )


def drain(environ, max_bytes):
    """Read and discard up to ``max_bytes`` of the body (to ``Content-Length`` or EOF; never raises),
    so that a client still sending a large archive with a bad token reads its 403, not a reset."""
    try:
        length = content_length(environ)
    except IntakeError:
        return
    if length is None and not environ.get("wsgi.input_terminated"):
        return
    stream = environ.get("wsgi.input")
    remaining = max_bytes if length is None else min(length, max_bytes)
    with contextlib.suppress(OSError, ValueError):
        while stream is not None and remaining > 0:
            data = stream.read(min(CHUNK, remaining))
            if not data:
                return
            remaining -= len(data)
