"""The admin console (SPEC §7): everything under /admin/, for active superusers.

Each area is its own module (its views, registered by the scan in
:mod:`.common`) with its own templates under ``templates/admin/``; its routes are
declared in :data:`tecken_pyramid.routes.CONSOLE`, its forms in :mod:`.forms`, and
the pieces every area shares in :mod:`.common`. This module wires them.
"""

from pyramid.events import BeforeRender

from ..routes import CONSOLE
from ..security import AdminRoot
from ..security_headers import html_response_headers


def _html_headers(event):
    # Every HTML page is rendered from a template: set the headers there, so no
    # subscriber runs on the (template-free) download path.
    request = event.get("request")
    if request is not None:
        request.response.headers.update(html_response_headers())


def includeme(config):
    config.include("..security")
    config.add_subscriber(_html_headers, BeforeRender)
    # Every console route's context is AdminRoot: only active superusers get in
    # (login and logout included; their views carry no permission).
    for name, pattern in CONSOLE.items():
        config.add_route(name, pattern, factory=AdminRoot)
    config.include(".common")
