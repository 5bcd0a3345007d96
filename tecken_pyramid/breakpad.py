"""The first lines of a Breakpad ``.sym`` file (SPEC §9: upload checks, ``symbol_file`` rows, ``index``).

Pure. Read only a prefix of the file (:data:`HEADER_BYTES` is plenty: MODULE and INFO lines
come first and are short), from an archive member or a ranged read of a stored object.
"""

HEADER_BYTES = 64 * 1024


def sym_header(first_bytes, *, at_eof=False):
    """Parse a Breakpad .sym file's first lines: its MODULE line, then the INFO lines after it.

    ``first_bytes`` is a prefix of the file; unless ``at_eof`` (it is the whole file) its last,
    possibly cut, line is not read. Returns None when the first line is not
    ``MODULE <os> <arch> <debugid> <debugfile>`` (the debug file is the rest of the line, spaces
    included), else a dict: os, arch, debug_id (upper-cased), debug_file, code_id (upper-cased),
    code_file, generator; those not found are None. Parsing stops at the first line that is not
    an INFO line or not UTF-8.
    """
    lines = bytes(first_bytes).split(b"\n")
    if not at_eof:
        lines.pop()
    header = None
    for raw in lines:
        try:
            line = raw.decode("utf-8").rstrip(" \t\r")
        except UnicodeDecodeError:
            break
        if header is None:
            parts = line.split(maxsplit=4)
            if len(parts) != 5 or parts[0] != "MODULE":
                return None
            header = dict(os=parts[1], arch=parts[2], debug_id=parts[3].upper(), debug_file=parts[4])
            header.update(code_id=None, code_file=None, generator=None)
            continue
        parts = line.split(maxsplit=3)
        if not parts or parts[0] != "INFO":
            break
        if len(parts) in (3, 4) and parts[1] == "CODE_ID":
            header["code_id"] = parts[2].upper()
            header["code_file"] = parts[3] if len(parts) == 4 else None
        elif len(parts) >= 3 and parts[1] == "GENERATOR":
            header["generator"] = line.split(maxsplit=2)[2]
    return header
