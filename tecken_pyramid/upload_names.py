"""Member names of an uploaded archive (SPEC §9): how a name is decoded, and the
``symbol/debugid/filename`` shape it must have. Used by :mod:`.upload_archive`."""

import re

from .rules import INVALID_NAME_CHARS

_HEX = re.compile(r"[0-9A-Fa-f]+")


class ArchiveError(ValueError):
    """The archive is refused; ``str(exc)`` is the message for the client."""


def _show(name, limit=200):
    text = repr(name)
    return text if len(text) <= limit else text[:limit] + "..."


def _decode_name(info):
    """The name: UTF-8 when flagged (zipfile refused it otherwise); unflagged, the raw bytes as
    UTF-8 when they are valid UTF-8 (what most tools write without setting the flag), else cp437
    as zipfile read them. zipfile's cp437 is a bijection, so the raw bytes are recovered exactly."""
    if info.flag_bits & 0x800:
        return info.orig_filename
    try:
        return info.orig_filename.encode("cp437").decode("utf-8")
    except UnicodeDecodeError:
        return info.orig_filename


def _split_name(name):
    reason = None
    parts = name.split("/")
    if name.startswith("/"):
        reason = "it is an absolute path"
    elif "\\" in name:
        reason = "it contains a backslash"
    elif len(parts) != 3:
        reason = f"it has {len(parts)} segments, not 3"
    elif "" in parts:
        reason = "it has an empty segment"
    elif "." in parts or ".." in parts:
        reason = "it has a '.' or '..' segment"
    elif not _HEX.fullmatch(parts[1]):
        reason = "its debug id is not hexadecimal"
    elif INVALID_NAME_CHARS.search(parts[0]) or INVALID_NAME_CHARS.search(parts[2]):
        reason = "it contains a character that is never found (SPEC §2)"
    if reason:
        raise ArchiveError(
            f"Invalid member name {_show(name)}: {reason}. Names are <symbol>/<hex debug id>/<filename>, "
            "or <name>-symbols.txt at the top"
        )
    return parts
