"""The admin console (SPEC §7): everything under /admin/, for active superusers.

Each area is its own module with its own ``includeme`` (routes and views) and its
own templates under ``templates/admin/``; this module wires the shared pieces.
"""

from pyramid.events import BeforeRender

from ..security_headers import html_response_headers

AREAS = (".auth", ".dashboard", ".extensions", ".patterns", ".missing", ".cache", ".users", ".audit")


def _html_headers(event):
    # Every HTML page is rendered from a template: set the headers there, so no
    # subscriber runs on the (template-free) download path.
    request = event.get("request")
    if request is not None:
        request.response.headers.update(html_response_headers())


def includeme(config):
    config.include("..security")
    config.add_subscriber(_html_headers, BeforeRender)
    config.include(".common")
    for area in AREAS:
        config.include(area)
