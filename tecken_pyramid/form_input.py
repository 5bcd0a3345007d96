"""Console input that cannot be decoded is the client's fault: a 400, never a 500.

WebOb raises on such input when a view first reads it: ``request.GET`` (and
``params``) raise UnicodeDecodeError on ``?page=%FF``; ``request.POST`` raises on a
form declaring another charset than UTF-8 (a DeprecationWarning, raised) or on a
multipart body without a boundary (ValueError), and silently replaces undecodable
bytes of a urlencoded body with U+FFFD. :func:`check_decodable` runs once per console
POST, before any view (security.AdminRoot), so a bad form changes nothing, and turns
all of these into :class:`BadInput`; views/errors.py answers it, and WebOb's own
UnicodeDecodeError from ``request.GET``, with the HTML 400 page under /admin/.
"""

from .rawrequest import is_utf8_form

URLENCODED = "application/x-www-form-urlencoded"


class BadInput(ValueError):
    """The query string or form body is not UTF-8 (or not parseable): a 400."""


def check_decodable(request):
    """Raise BadInput unless a POST's form is UTF-8 and parseable (a no-op otherwise).

    The query string is left to the views: a page that reads ``request.GET`` gets
    WebOb's UnicodeDecodeError, answered 400 by the same error view, and a page that
    parses the raw query itself (the missing-symbols filters) may say which field
    was bad instead."""
    if request.method != "POST":
        return
    try:
        if request.content_type == URLENCODED and not is_utf8_form(request.body.decode("latin-1")):
            raise BadInput("the form is not UTF-8")
        request.POST  # noqa: B018 - parses (and caches) the form, or raises
    except (UnicodeDecodeError, DeprecationWarning, ValueError) as exc:
        raise BadInput(f"{type(exc).__name__}: {exc}") from None
