"""Not found, method not allowed, bad input and unexpected errors: never a traceback.

HTML under ``/admin/`` (and on the home page), JSON elsewhere; the download view
answers its own errors (SPEC §2).
"""

import html
import json
import logging

from pyramid.httpexceptions import HTTPNotFound
from pyramid.response import Response
from pyramid.view import exception_view_config, notfound_view_config

from ..form_input import BadInput
from ..rawrequest import path_text
from ..security_headers import html_response_headers
from ..urls import BadHost

log = logging.getLogger(__name__)


def json_response(status, payload, headers=()):
    body = json.dumps(payload).encode("ascii")
    return Response(
        status=status,
        body=body,
        headerlist=[("Content-Type", "application/json"), ("Content-Length", str(len(body))), *headers],
    )


def request_path(request):
    """The decoded path (text), undecodable bytes as %XX (rawrequest.path_text)."""
    return path_text(request.environ.get("PATH_INFO", ""))


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
    if is_console(path):
        response = request.response
        response.status = 404
        response.content_type = "text/html"
        response.charset = "utf-8"
        from pyramid.renderers import render

        response.text = render("404.jinja2", {"path": path}, request=request)
        response.headers.update(html_response_headers())
        return response
    return json_not_found(path)


def is_console(path):
    return path == "/admin" or path.startswith("/admin/")


# A fixed page, not a template: an error page must render even when what failed is
# the database (the templates' globals read the signed-in user) or the templates.
_ERROR_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title} · tecken-pyramid</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/admin/static/tecken.css">
<link rel="icon" href="data:,">
</head>
<body>
<main>
<h1>{title}</h1>
<p>{message}</p>
<p><a href="/admin/">Console</a> · <a href="/">Home</a></p>
</main>
</body>
</html>
"""


def html_error_page(status, title, message):
    """A self-contained HTML error page with the security headers (SPEC §7)."""
    body = _ERROR_PAGE.format(title=html.escape(title), message=html.escape(message)).encode("utf-8")
    return Response(
        status=status,
        body=body,
        headerlist=[
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
            *html_response_headers().items(),
        ],
    )


@exception_view_config(BadInput)
@exception_view_config(UnicodeDecodeError)
def undecodable_input_view(exc, request):
    """A query string or form that is not UTF-8 (form_input.check_decodable, for every
    console request; and WebOb's own UnicodeDecodeError from ``request.GET`` anywhere
    else): the client's fault, a 400, never a 500."""
    path = request_path(request)
    log.info("undecodable input on %s %s: %s", request.method, path, exc)
    message = "The request carried characters that are not UTF-8; nothing was changed."
    if is_console(path):
        return html_error_page(400, "Bad request", message)
    return json_response(400, {"error": "Bad Request: " + message})


@exception_view_config(BadHost)
def bad_host_view(exc, request):
    """No absolute URL can be built from this Host (and TECKEN_PUBLIC_URL is unset):
    a 400 that echoes nothing of it. HTML for the console and the home page, plain
    text elsewhere (a local-directory download redirect, SPEC §2's 400s)."""
    path = request_path(request)
    message = "The Host header is not a valid host[:port]."
    if path == "/" or is_console(path):
        return html_error_page(400, "Bad request", message)
    body = message.encode("ascii")
    return Response(
        status=400,
        body=body,
        headerlist=[
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
        ],
    )


@exception_view_config(Exception)
def unexpected_error_view(exc, request):
    if isinstance(exc, HTTPNotFound):  # pragma: no cover - handled above
        return not_found_view(request)
    path = request_path(request)
    # The traceback goes to the server log only, never to the client.
    log.exception("unexpected error on %s %s", request.method, path)
    if is_console(path):
        return html_error_page(500, "Internal Server Error", "Something went wrong; the error was logged.")
    return json_response(500, {"error": "Internal Server Error"})
