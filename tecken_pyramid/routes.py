"""Every URL-dispatch route of the app, in one place (SPEC §2).

Downloads are not routes: they are traversal (:mod:`.resources`). Every route
lives under a first path segment that is therefore never a download, and
:data:`RESERVED` is derived from the patterns below, so a route cannot be added
without its segment being reserved (tests/unit/test_routes.py checks both).

A route is added here (name and pattern), then its views where they live:

* a public JSON/HTML endpoint: ``config.add_public_view(name, view)`` (the
  directive below) adds the route, the GET/HEAD view and the JSON 405 for every
  other method;
* a console page or action: a view with that ``route_name`` in an
  ``admin/`` module; the console adds all of :data:`CONSOLE` itself
  (``admin.includeme``), each with the console's access rules.
"""

# Public routes: name -> pattern (each added by the module of its view).
PUBLIC = {
    "metrics": "/metrics",
    "home": "/",
    "lbheartbeat": "/__lbheartbeat__",
    "heartbeat": "/__heartbeat__",
    "version": "/__version__",
    # Only added when a local-directory location is configured (views/files.py).
    "files": "/__files__/{n}/*key",
    "missing_symbols_csv": "/missingsymbols.csv",
    "missing_symbols_json": "/missingsymbols/",
    # Uploads (SPEC §9): POST only, both spellings answered (never a redirect).
    "upload": "/upload/",
    "upload_no_slash": "/upload",
}

# The console (SPEC §7): name -> pattern, in matching order; all under /admin/.
CONSOLE = {
    "admin.login": "/admin/login",
    "admin.logout": "/admin/logout",
    "admin.dashboard": "/admin/",
    "admin.extensions": "/admin/extensions",
    "admin.extensions.add": "/admin/extensions/add",
    "admin.extensions.remove": r"/admin/extensions/{id:\d{1,18}}/remove",
    "admin.patterns": "/admin/patterns",
    "admin.patterns.add": "/admin/patterns/add",
    "admin.patterns.edit": r"/admin/patterns/{id:\d{1,18}}/edit",
    "admin.patterns.enabled": r"/admin/patterns/{id:\d{1,18}}/enabled",
    "admin.patterns.remove": r"/admin/patterns/{id:\d{1,18}}/remove",
    "admin.missing": "/admin/missing-symbols",
    "admin.missing_csv": "/admin/missing-symbols.csv",
    "admin.cache": "/admin/cache",
    "admin.cache.invalidate": "/admin/cache/invalidate",
    "admin.users": "/admin/users",
    "admin.users.create": "/admin/users/create",
    "admin.user": r"/admin/users/{id:\d+}",
    "admin.user.superuser": r"/admin/users/{id:\d+}/superuser",
    "admin.user.active": r"/admin/users/{id:\d+}/active",
    "admin.user.password": r"/admin/users/{id:\d+}/password",
    # Upload tokens and uploads (SPEC §9 "Console").
    "admin.tokens": "/admin/tokens",
    "admin.tokens.create": "/admin/tokens/create",
    "admin.token.revoke": r"/admin/tokens/{id:\d{1,18}}/revoke",
    "admin.uploads": "/admin/uploads",
    "admin.upload": r"/admin/uploads/{id:\d{1,18}}",
    "admin.audit": "/admin/audit",
}

# The console's CSS and JS (``config.add_static_view``: a route too).
STATIC = "admin/static"


def first_segment(pattern):
    """The literal first path segment of a route pattern ("" for ``/``)."""
    return pattern.lstrip("/").split("/", 1)[0]


RESERVED = frozenset(
    {first_segment(pattern) for pattern in (*PUBLIC.values(), *CONSOLE.values(), STATIC)} - {""}
)


def add_public_view(config, route_name, view, not_allowed=None, **view_options):
    """Add the route ``route_name`` (pattern from :data:`PUBLIC`), ``view`` for GET
    and HEAD, and ``not_allowed`` for every other method (default: the JSON 405 of
    SPEC §2; Pyramid itself would answer a predicate mismatch with a 404)."""
    config.add_route(route_name, PUBLIC[route_name])
    config.add_view(view, route_name=route_name, request_method=("GET", "HEAD"), **view_options)
    config.add_view(not_allowed or "tecken_pyramid.views.errors.method_not_allowed", route_name=route_name)


def includeme(config):
    config.add_directive("add_public_view", add_public_view)
