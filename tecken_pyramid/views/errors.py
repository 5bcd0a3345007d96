"""Not found, method not allowed and unexpected errors: never a traceback."""

import json
import logging

from pyramid.httpexceptions import HTTPNotFound
from pyramid.response import Response
from pyramid.view import exception_view_config, notfound_view_config

from ..security_headers import html_response_headers

log = logging.getLogger(__name__)


def json_response(status, payload, headers=()):
    body = json.dumps(payload).encode("ascii")
    return Response(
        status=status,
        body=body,
        headerlist=[("Content-Type", "application/json"), ("Content-Length", str(len(body))), *headers],
    )


def request_path(request):
    """The decoded path (text), undecodable bytes as %XX (see tweens.decoded_path)."""
    raw = request.environ.get("PATH_INFO", "")
    try:
        return raw.encode("latin-1").decode("utf-8", "tecken-percent")
    except UnicodeEncodeError:
        return raw


def json_not_found(path):
    return json_response(404, {"error": "Not Found", "path": path})


def method_not_allowed(request):
    path = request_path(request)
    return json_response(
        405,
        {"error": f"Method Not Allowed ({request.method}): {path}"},
        [("Allow", "GET, HEAD")],
    )


@notfound_view_config()
def not_found_view(request):
    path = request_path(request)
    if path == "/admin" or path.startswith("/admin/"):
        response = request.response
        response.status = 404
        response.content_type = "text/html"
        response.charset = "utf-8"
        from pyramid.renderers import render

        response.text = render("404.jinja2", {"path": path}, request=request)
        response.headers.update(html_response_headers())
        return response
    return json_not_found(path)


@exception_view_config(Exception)
def unexpected_error_view(exc, request):
    if isinstance(exc, HTTPNotFound):  # pragma: no cover - handled above
        return not_found_view(request)
    log.exception("unexpected error on %s %s", request.method, request_path(request))
    return json_response(500, {"error": "Internal Server Error"})
