"""The ignore-patterns page's "test a path" box: which rule, if any, decides a path.

It answers from the rules saved in the database, in the order of SPEC §2 steps
1-3, and says when this process's in-memory rules do not agree with them yet.
"""

import re
import urllib.parse

from sqlalchemy import select

from ..models import IgnorePattern
from ..rawrequest import decoded_path
from ..resources import RESERVED, download_shape
from ..rules import EXTENSION_NOT_ALLOWED, IGNORED, INVALID_NAME_CHARS, Pattern, load_rules

MAX_TEST_PATH_LENGTH = 2000


def parse_test_path(text):
    """(path, is_try, problem): the decoded download path the box was given.

    The box takes what a client would request: a full ``http(s)://`` URL or a
    path (the leading ``/`` optional), percent-encoded or not; it is decoded the
    way the server decodes a request, and ``?try`` is honoured.
    """
    if re.match(r"https?://", text, re.I):
        parts = urllib.parse.urlsplit(text)
        raw_path, query = parts.path, parts.query
    else:
        raw_path, _sep, query = text.partition("?")
        if not raw_path.startswith("/"):
            raw_path = "/" + raw_path
    raw = urllib.parse.unquote_to_bytes(raw_path).decode("latin-1")
    path = decoded_path({"PATH_INFO": raw})  # bytes that are not UTF-8 stay %XX
    path = re.sub(r"^/+", "/", path)  # waitress collapses leading slashes
    is_try = any(name == "try" for name, _value in urllib.parse.parse_qsl(query, keep_blank_values=True))
    segments = path.split("/")[1:]
    if segments and segments[0] in RESERVED:
        return path, is_try, f"/{segments[0]}/ is reserved: it is never a download"
    if not download_shape(segments):
        return (
            path,
            is_try,
            (
                "not a download path (exactly symbol/debugid/filename, optionally after /try/; "
                "no empty, '.' or '..' segment; a hexadecimal debug id)"
            ),
        )
    return path, is_try or segments[0] == "try", None


def explain_path(request, text):
    """Which rule, if any, decides this path, from the rules saved in the database."""
    path, is_try, problem = parse_test_path(text)
    result = {"input": text, "path": path, "is_try": is_try, "disabled": [], "also": []}
    if problem is not None:
        result.update(outcome="not-a-download", status="404", lookup=None, problem=problem)
        return result
    segments = path.split("/")[1:]
    if segments[0] == "try" and len(segments) == 4:
        segments = segments[1:]
    symbol, debugid, filename = segments
    name = f"{symbol}/{debugid}/{filename}"
    result["name"] = name

    session = request.dbsession
    rules = load_rules(session.connection())
    rows = {row.id: row for row in session.scalars(select(IgnorePattern).order_by(IgnorePattern.id))}
    matching = [p for p in rules.patterns if p.regex.match(name)]
    for row in rows.values():
        if not row.enabled and Pattern.compile(row.pattern, row.id).regex.match(name):
            result["disabled"].append({"id": row.id, "pattern": row.pattern, "note": row.note or ""})

    decision, pattern = rules.decide(symbol, debugid, filename)
    if decision == IGNORED:
        result.update(ignored_by(pattern, rows.get(pattern.id)))
        result["also"] = [{"id": p.id, "pattern": p.pattern} for p in matching if p.id != pattern.id]
    elif decision == EXTENSION_NOT_ALLOWED:
        result.update(
            outcome="extension-not-allowed",
            status="404",
            lookup=EXTENSION_NOT_ALLOWED,
            extensions=rules.extensions,
        )
    else:
        result.update(after_rules(request.registry.tecken, symbol, debugid, filename, is_try))
    # This process applies its in-memory rules, reloaded in the background: say
    # so when they do not agree with the saved rows yet.
    live, _ = request.registry.rules.current.decide(symbol, debugid, filename)
    result["stale"] = live != decision
    return result


def ignored_by(pattern, row):
    note = (row.note or "") if row else ""
    return {
        "outcome": "ignored",
        "status": "404",
        "lookup": "ignored",
        "pattern": {"id": pattern.id, "pattern": pattern.pattern, "note": note},
    }


def after_rules(settings, symbol, debugid, filename, is_try):
    """Step 3 (invalid characters), else the lookup a download would make."""
    bad = sorted({c for part in (symbol, filename) for c in INVALID_NAME_CHARS.findall(part)})
    if bad:
        return {
            "outcome": "invalid-name",
            "status": "400",
            "lookup": "invalid-name",
            "invalid": [f"{c!r} (U+{ord(c):04X})" for c in bad],
        }
    locations = list(settings.locations) + ([settings.try_location] if is_try else [])
    return {
        "outcome": "lookup",
        "status": "302 / 404 / 503",
        "lookup": "found, not-found or unavailable",
        "lookups": [{"location": loc.url, "key": loc.key(symbol, debugid, filename)} for loc in locations],
    }
