"""The download view (SPEC §2): thin; rules, lookup and recording are services.

No database, session, security policy or template machinery runs here.
"""

import time

from pyramid.response import Response
from pyramid.view import view_config

from ..code_ids import redirect_location
from ..locations import LOCAL, PRIVATE
from ..rawrequest import parse_query
from ..resources import SymbolFile
from ..rules import EXTENSION_NOT_ALLOWED, IGNORED, invalid_name
from ..urls import application_url
from .errors import method_not_allowed

CORS_HEADERS = (
    ("Access-Control-Allow-Origin", "*"),
    ("Access-Control-Allow-Methods", "GET"),
    ("Access-Control-Expose-Headers", "X-Symbol-Lookup, Debug-Time, Retry-After"),
)
TEXT = "text/plain; charset=utf-8"
DEBUG_VALUES = frozenset({"1", "true", "yes"})
IGNORED_BODY = "Symbol Not Found (and ignored)"
INVALID_NAME_BODY = "Symbol name lookup contains invalid characters and will never be found."
UNAVAILABLE_BODY = "Symbol lookup temporarily unavailable"


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
    """SPEC §2's decision order: the rules (steps 1-3), the lookup (4), the miss (5)."""
    registry = request.registry
    environ = request.environ
    debug = environ.get("HTTP_DEBUG", "").lower() in DEBUG_VALUES
    answer = _decided_by_rules(context, registry.rules.current, registry.metrics, 0.0 if debug else None)
    if answer is not None:
        return answer
    query = parse_query(environ.get("QUERY_STRING", ""))
    is_get = request.method == "GET"
    started = time.perf_counter()
    include_try, refresh = context.is_try or "try" in query, "_refresh" in query
    code_ids = registry.code_ids
    code_key = None  # the code-id entry, read in the same get_many as the existence entries
    if code_ids.eligible(context.filename, context.debugid):
        code_key = code_ids.cache_key(context.symbol, context.debugid, include_try)
    result = registry.lookup.find(
        context.symbol,
        context.debugid,
        context.filename,
        include_try=include_try,
        refresh=refresh,
        extra_keys=(code_key,) if code_key is not None else (),
    )
    url = None
    if result.location is not None and is_get:
        # Only a local directory's redirect is on this app: no other looks at the Host.
        base = application_url(request) if result.location.kind == LOCAL else ""
        url = registry.storage.redirect_url(result.location, result.key, base)
    if result.location is not None and (url is not None or not is_get):
        return _found(registry.metrics, result.location, url, _elapsed(debug, started))
    if result.failed or result.location is not None:  # failed, or found but no URL could be made
        return _unavailable(registry.metrics, _elapsed(debug, started))
    if code_key is not None:
        cached = result.cached.get(code_key)
        answer = _by_code_id(request, context, cached, include_try, refresh, (debug, started))
        if answer is not None:
            return answer
    return _not_found(context, registry, query if is_get else None, _elapsed(debug, started))


def _elapsed(debug, started):
    return time.perf_counter() - started if debug else None


def _unavailable(metrics, elapsed):
    metrics.download_result["unavailable"].inc()
    return _answer(
        503,
        UNAVAILABLE_BODY,
        "unavailable",
        debug_time=elapsed,
        cache="no-store",
        extra=(("Retry-After", "5"),),
    )


def _by_code_id(request, context, cached, include_try, refresh, timing):
    """SPEC §9: a 302 to the newest indexed file with this code file and code id, or None."""
    code_ids = request.registry.code_ids
    row = code_ids.resolve(context.symbol, context.debugid, include_try, cached=cached, refresh=refresh)
    if row is None or row == (context.symbol, context.debugid.upper(), context.filename):
        return None  # nothing indexed, the lookup was skipped, or it would redirect to itself
    location = redirect_location(
        application_url(request),
        row,
        is_try=context.is_try,
        query_string=request.environ.get("QUERY_STRING", ""),
    )
    code_ids.redirects.inc()
    return _answer(302, "", "code-id", debug_time=_elapsed(*timing), extra=(("Location", location),))


def _decided_by_rules(context, rules, metrics, zero):
    """Steps 1-3: an ignore pattern, the extension allow list, invalid characters."""
    decision, _pattern = rules.decide(context.symbol, context.debugid, context.filename)
    if decision is not None:
        lookup = "ignored" if decision == IGNORED else EXTENSION_NOT_ALLOWED
        metrics.download_result[lookup].inc()
        return _answer(404, IGNORED_BODY, lookup, debug_time=zero)
    if invalid_name(context.symbol, context.filename):
        metrics.download_result["invalid-name"].inc()
        return _answer(400, INVALID_NAME_BODY, "invalid-name", debug_time=zero, cache="no-store")
    return None


def _found(metrics, location, url, elapsed):
    """GET: 302 to the object (no-store for a presigned URL); HEAD (url None): 200."""
    metrics.download_result["found"].inc()
    if url is None:
        return _answer(200, "", "found", debug_time=elapsed)
    cache = "no-store" if location.kind == PRIVATE else "max-age=0"
    return _answer(302, "", "found", debug_time=elapsed, cache=cache, extra=(("Location", url),))


def _not_found(context, registry, query, elapsed):
    """Step 5: a GET's code values are validated, then the miss is recorded (HEAD: neither)."""
    if query is not None:
        code_file, error = validate_code_value("code_file", query.get("code_file", ""))
        if error is None:
            code_id, error = validate_code_value("code_id", query.get("code_id", ""))
        if error is not None:
            registry.metrics.download_result["invalid-query"].inc()
            return _answer(400, error, "invalid-query", debug_time=elapsed, cache="no-store")
        recorder = getattr(registry, "missing", None)
        if recorder is not None:
            recorder.record(context.symbol, context.debugid, context.filename, code_file, code_id)
    registry.metrics.download_result["not-found"].inc()
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
