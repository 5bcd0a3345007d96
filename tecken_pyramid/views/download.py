"""The download view (SPEC §2): thin; rules, lookup and recording are services.

No database, session, security policy or template machinery runs here.
"""

import time
import urllib.parse

from pyramid.response import Response
from pyramid.view import view_config

from ..locations import PRIVATE
from ..resources import SymbolFile
from ..rules import EXTENSION_NOT_ALLOWED, IGNORED, invalid_name
from ..urls import download_base_url
from .errors import method_not_allowed

CORS_HEADERS = (
    ("Access-Control-Allow-Origin", "*"),
    ("Access-Control-Allow-Methods", "GET"),
    ("Access-Control-Expose-Headers", "X-Symbol-Lookup, Debug-Time, Retry-After"),
)
TEXT = "text/plain; charset=utf-8"
DEBUG_VALUES = frozenset({"1", "true", "yes"})


def _answer(status, body, lookup, *, debug_time=None, cache="max-age=0", extra=()):
    data = body.encode("utf-8")
    headers = [
        ("Content-Type", TEXT),
        ("Content-Length", str(len(data))),
        *CORS_HEADERS,
        ("X-Symbol-Lookup", lookup),
        ("Cache-Control", cache),
        *extra,
    ]
    if debug_time is not None:
        headers.append(("Debug-Time", repr(debug_time)))
    return Response(status=status, body=data, headerlist=headers)


def parse_query(query_string):
    """Form-decoded query as {name: raw latin-1 text}; the last value wins.

    ``request.GET`` raises on undecodable bytes, so the raw bytes are kept (as
    latin-1 text) and each value is decoded strictly only when it is validated.
    """
    return dict(urllib.parse.parse_qsl(query_string, keep_blank_values=True, encoding="latin-1"))


def validate_code_value(field, raw):
    """(value or None, error message or None) for code_file / code_id (SPEC §2 step 5)."""
    if not raw:
        return None, None
    try:
        text = raw.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return None, f"{field}: Invalid characters are not allowed."
    if "\x00" in text:
        return None, f"{field}: Null characters are not allowed."
    if any(c < "\x20" or c == "\x7f" for c in text):
        return None, f"{field}: Control characters are not allowed."
    return text, None


@view_config(context=SymbolFile, request_method=("GET", "HEAD"))
def download(context, request):
    registry = request.registry
    environ = request.environ
    metrics = registry.metrics
    debug = environ.get("HTTP_DEBUG", "").lower() in DEBUG_VALUES
    symbol, debugid, filename = context.symbol, context.debugid, context.filename
    zero = 0.0 if debug else None

    decision, _pattern = registry.rules.current.decide(symbol, debugid, filename)
    if decision is not None:
        lookup = "ignored" if decision == IGNORED else EXTENSION_NOT_ALLOWED
        metrics.download_result[lookup].inc()
        return _answer(404, "Symbol Not Found (and ignored)", lookup, debug_time=zero)
    if invalid_name(symbol, filename):
        metrics.download_result["invalid-name"].inc()
        return _answer(
            400,
            "Symbol name lookup contains invalid characters and will never be found.",
            "invalid-name",
            debug_time=zero,
            cache="no-store",
        )

    query = parse_query(environ.get("QUERY_STRING", ""))
    is_get = request.method == "GET"
    started = time.perf_counter()
    result = registry.lookup.find(
        symbol, debugid, filename, include_try=context.is_try or "try" in query, refresh="_refresh" in query
    )
    url = None
    if result.location is not None and is_get:
        url = registry.storage.redirect_url(result.location, result.key, _application_url(request))
    elapsed = time.perf_counter() - started if debug else None

    if result.location is not None and (url is not None or not is_get):
        metrics.download_result["found"].inc()
        if not is_get:
            return _answer(200, "", "found", debug_time=elapsed)
        presigned = result.location.kind == PRIVATE
        response = _answer(
            302, "", "found", debug_time=elapsed, cache="no-store" if presigned else "max-age=0",
            extra=(("Location", url),),
        )
        return response
    if result.failed or result.location is not None:  # failed, or found but no URL could be made
        metrics.download_result["unavailable"].inc()
        return _answer(
            503,
            "Symbol lookup temporarily unavailable",
            "unavailable",
            debug_time=elapsed,
            cache="no-store",
            extra=(("Retry-After", "5"),),
        )
    if is_get:
        code_file, error = validate_code_value("code_file", query.get("code_file", ""))
        if error is None:
            code_id, error = validate_code_value("code_id", query.get("code_id", ""))
        if error is not None:
            metrics.download_result["invalid-query"].inc()
            return _answer(400, error, "invalid-query", debug_time=elapsed, cache="no-store")
        recorder = getattr(registry, "missing", None)
        if recorder is not None:
            recorder.record(symbol, debugid, filename, code_file, code_id)
    metrics.download_result["not-found"].inc()
    return _answer(404, "Symbol Not Found", "not-found", debug_time=elapsed)


# The CORS preflight (SPEC §2): lets a web page send ``Debug: true`` (a non-safelisted
# header, so the browser asks first). A 204 has no body and no Content-Length.
PREFLIGHT_METHODS = frozenset({"GET", "HEAD"})
PREFLIGHT_HEADERS = (
    ("Access-Control-Allow-Origin", "*"),
    ("Access-Control-Allow-Methods", "GET, HEAD"),
    ("Access-Control-Allow-Headers", "Debug"),
    ("Access-Control-Max-Age", "86400"),
)


def cors_preflight(request):
    """The 204 for a CORS preflight asking for GET or HEAD, else None."""
    if (
        request.method == "OPTIONS"
        and request.environ.get("HTTP_ACCESS_CONTROL_REQUEST_METHOD") in PREFLIGHT_METHODS
    ):
        return Response(status=204, headerlist=list(PREFLIGHT_HEADERS))
    return None


@view_config(context=SymbolFile)
def download_method_not_allowed(context, request):
    # Only methods other than GET and HEAD get here, so the download path pays nothing.
    return cors_preflight(request) or method_not_allowed(request)


def _application_url(request):
    # TECKEN_PUBLIC_URL, else a validated Host; a bad Host is a 400 text/plain (urls.BadHost),
    # never echoed into Location.
    return download_base_url(request)
