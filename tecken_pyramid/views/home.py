"""The home page: the URL format, curl examples and the CSV report (SPEC §7)."""

from pyramid.view import view_config

from ..security_headers import html_response_headers
from .errors import method_not_allowed


@view_config(route_name="home", request_method=("GET", "HEAD"), renderer="home.jinja2")
def home(request):
    request.response.headers.update(html_response_headers())
    return {
        "base_url": request.application_url,
        "rules": None,
    }


def includeme(config):
    config.add_route("home", "/")
    config.add_view(method_not_allowed, route_name="home")
