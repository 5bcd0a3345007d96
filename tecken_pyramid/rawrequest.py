"""Raw-request decoding, in one place: the path and the query string as the WSGI
server delivered them, turned into text without ever raising.

waitress hands the app a percent-decoded ``PATH_INFO`` as latin-1 text standing
for bytes, and the raw ``QUERY_STRING``. WebOb raises on bytes that are not UTF-8
(``request.path_info``, ``request.GET``), so the download path, its tween, the
reports and the error views decode here instead:

* :func:`decoded_path`: the path as text, undecodable bytes kept as their ``%XX``
  text (so such a name runs through the rules like any other, SPEC §2);
* :func:`parse_query`: ``{name: raw latin-1 text}``, last value wins, ``+`` a
  space, blank values kept (a bare ``?try`` counts);
* :func:`query_text`: the same, each name and value strictly UTF-8-decoded
  (``None`` for a value that is not).

The ``%XX`` error handler is registered with :mod:`codecs` when this module is
imported; every user imports its functions from here, so nothing depends on the
import order of another module.
"""

import codecs
import urllib.parse

PERCENT_ESCAPE = "tecken-percent"


def _percent_escape(error):
    bad = error.object[error.start : error.end]
    return "".join(f"%{b:02X}" for b in bad), error.end


codecs.register_error(PERCENT_ESCAPE, _percent_escape)


def path_text(raw):
    """``PATH_INFO`` (latin-1 text standing for bytes) as text; bad bytes as ``%XX``."""
    try:
        return raw.encode("latin-1").decode("utf-8", PERCENT_ESCAPE)
    except UnicodeEncodeError:  # already text beyond latin-1 (not from a WSGI server)
        return raw


def decoded_path(environ):
    """The decoded path; rewrites ``PATH_INFO`` so that Pyramid's traverser can decode it."""
    raw = environ.get("PATH_INFO", "")
    text = path_text(raw)
    fixed = text.encode("utf-8").decode("latin-1")
    if fixed != raw:
        environ["PATH_INFO"] = fixed
    return text


def parse_query(query_string):
    """Form-decoded query as ``{name: raw latin-1 text}``; the last value wins.

    Values stay raw (latin-1 text standing for bytes) until a caller validates
    them: the download path tells undecodable bytes from a real U+FFFD.
    """
    return dict(urllib.parse.parse_qsl(query_string, keep_blank_values=True, encoding="latin-1"))


def is_utf8_form(text):
    """True when every name and value of form-encoded ``text`` (latin-1 text standing
    for bytes) is UTF-8 once percent-decoded."""
    try:
        for name, value in urllib.parse.parse_qsl(text, keep_blank_values=True, encoding="latin-1"):
            name.encode("latin-1").decode("utf-8")
            value.encode("latin-1").decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def query_text(query_string):
    """``{name: text or None}``: names and values strictly UTF-8; a value that is not is None
    (reported as a bad parameter by the caller); a name that is not is dropped."""
    out = {}
    for name, value in urllib.parse.parse_qsl(query_string, keep_blank_values=True, encoding="latin-1"):
        try:
            name = name.encode("latin-1").decode("utf-8")
        except UnicodeError:
            continue
        try:
            out[name] = value.encode("latin-1").decode("utf-8")
        except UnicodeError:
            out[name] = None
    return out
