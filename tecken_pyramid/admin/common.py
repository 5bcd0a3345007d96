"""Shared console pieces: view decorators, flash messages, redirects, error pages."""

from pyramid.csrf import get_csrf_token
from pyramid.exceptions import BadCSRFToken
from pyramid.httpexceptions import HTTPSeeOther
from pyramid.renderers import render_to_response
from pyramid.security import forget
from pyramid.view import forbidden_view_config, view_config

from ..models import AuditLog
from ..security import ADMIN, AdminRoot, safe_next
from ..urls import absolute_url


def admin_route(config, name, pattern):
    """A console route: its context is AdminRoot (only active superusers get in)."""
    config.add_route(name, pattern, factory=AdminRoot)


def admin_view(route_name, renderer=None, **kw):
    """A GET console page (HEAD implied)."""
    return view_config(route_name=route_name, permission=ADMIN, request_method="GET", renderer=renderer, **kw)


def admin_post(route_name, **kw):
    """A console POST: CSRF token required (400 and no change without it)."""
    return view_config(
        route_name=route_name, permission=ADMIN, request_method="POST", require_csrf=True, **kw
    )


def flash(request, message, queue="info"):
    request.session.flash(message, queue)


def redirect(request, path, headers=None):
    """A 303 to a local ASCII ``path``, made absolute here from TECKEN_PUBLIC_URL or a
    validated Host (urls.BadHost -> 400). Never a relative Location: WebOb would make
    it absolute from the raw Host header."""
    return HTTPSeeOther(absolute_url(request, path), headers=headers)


def see_other(request, route_name, _query=None, **kw):
    return redirect(request, request.route_path(route_name, _query=_query, **kw))


def audit(request, action, target="", before=None, after=None):
    """Record one console change (who, when, what, before -> after)."""
    user = request.identity
    actor = user.username if user is not None else "?"
    request.dbsession.add(AuditLog.entry(actor, action, target, before, after))


def html_error(request, status, title, message):
    response = render_to_response(
        "admin/error.jinja2", {"title": title, "message": message}, request=request
    )
    response.status = status
    return response


@forbidden_view_config()
def forbidden(request):
    if request.identity is None:
        path = request.path_qs if request.method == "GET" else request.path
        return redirect(request, request.route_path("admin.login", _query={"next": safe_next(path)}))
    return html_error(request, 403, "Forbidden", "Only active superusers may use the console.")


@view_config(context=BadCSRFToken)
def bad_csrf(exc, request):
    return html_error(
        request,
        400,
        "Bad request",
        "The form was missing its security token or it had expired; nothing was changed.",
    )


def template_globals(event):
    request = event.get("request")
    if request is None:
        return
    # Lazy: a page without a form (the home page) must not start a session.
    event["csrf_token"] = lambda: get_csrf_token(request)
    event["user"] = request.identity


def includeme(config):
    from pyramid.events import BeforeRender

    config.add_subscriber(template_globals, BeforeRender)
    config.scan(".")


__all__ = ["admin_route", "admin_view", "admin_post", "flash", "redirect", "see_other", "audit", "forget"]
