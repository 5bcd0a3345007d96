"""Console input that cannot be decoded is the client's fault: a 400, never a 500.

WebOb raises on such input when a view first reads it: ``request.GET`` (and
``params``) raise UnicodeDecodeError on ``?page=%FF``; ``request.POST`` raises on a
form declaring another charset than UTF-8 (a DeprecationWarning, raised) or on a
multipart body without a boundary (ValueError), and silently replaces undecodable
bytes of a urlencoded body with U+FFFD. :func:`check_decodable` runs once per console
request, before any view (security.AdminRoot), and turns all of these into
:class:`BadInput`, answered by views/errors.py with the HTML 400 page.
"""

import urllib.parse

URLENCODED = "application/x-www-form-urlencoded"


class BadInput(ValueError):
    """The query string or form body is not UTF-8 (or not parseable): a 400."""


def _strict_utf8_form(text):
    for name, value in urllib.parse.parse_qsl(text, keep_blank_values=True, encoding="latin-1"):
        name.encode("latin-1").decode("utf-8")
        value.encode("latin-1").decode("utf-8")


def check_decodable(request):
    try:
        request.GET  # noqa: B018 - parses (and caches) the query string, or raises
        if request.method == "POST":
            if request.content_type == URLENCODED:
                _strict_utf8_form(request.body.decode("latin-1"))
            request.POST  # noqa: B018 - parses (and caches) the form, or raises
    except (UnicodeDecodeError, DeprecationWarning, ValueError) as exc:
        raise BadInput(f"{type(exc).__name__}: {exc}") from None
