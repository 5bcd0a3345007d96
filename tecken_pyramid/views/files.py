"""``/__files__/{n}/{key}``: files of local-directory locations (SPEC §3).

Only registered when a local location is configured. Serves only regular files
whose real path is inside the location's directory; HEAD and byte ranges work
through WebOb's conditional responses.
"""

from pyramid.response import FileResponse

from .download import cors_preflight
from .errors import json_not_found, method_not_allowed, request_path


def _resolve(request):
    """The real path of the requested file inside its location's directory, or None."""
    settings = request.registry.tecken
    index = request.matchdict["n"]
    locations = settings.all_locations
    location = next((loc for loc in locations if loc.index == index and loc.kind == "local"), None)
    key = "/".join(request.matchdict["key"])
    return request.registry.storage.local_path(location, key) if location is not None and key else None


def serve_file(request):
    path = _resolve(request)
    if path is None:
        return json_not_found(request_path(request))
    response = FileResponse(path, request=request, content_type="application/octet-stream")
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Cache-Control"] = "max-age=0"
    return response


def files_method_not_allowed(request):
    # A path that serves nothing is a JSON 404 whatever the method (SPEC §2).
    if _resolve(request) is None:
        return json_not_found(request_path(request))
    # A page that fetched a download with ``Debug: true`` follows the 302 here with
    # the same header, so the browser asks again for this URL.
    return cors_preflight(request) or method_not_allowed(request)


def includeme(config):
    if any(loc.kind == "local" for loc in config.registry.tecken.all_locations):
        config.add_public_view("files", serve_file, not_allowed=files_method_not_allowed)
