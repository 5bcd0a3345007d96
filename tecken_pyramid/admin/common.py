"""Shared console pieces: view decorators, the one mutation path, flash messages,
redirects, error pages and the small helpers every area uses.

A console change is a POST handler decorated with :func:`console_action`: it
loads, validates (raising :class:`Refused`), changes, audits and returns
:class:`Done`; the decorator commits (or rolls back), reloads the rules when asked,
flashes and answers the 303 (post/redirect/get).
"""

import dataclasses
import datetime
import functools
from collections.abc import Callable

from pyramid.csrf import get_csrf_token
from pyramid.exceptions import BadCSRFToken
from pyramid.httpexceptions import HTTPSeeOther
from pyramid.renderers import render_to_response
from pyramid.security import forget
from pyramid.view import forbidden_view_config, view_config
from sqlalchemy.exc import IntegrityError

from ..models import AuditLog
from ..security import ADMIN, safe_next
from ..urls import absolute_url

MAX_ID = 2**31 - 1  # the id columns are 32-bit integers


def admin_view(route_name, renderer=None, **kw):
    """A GET console page (HEAD implied)."""
    return view_config(route_name=route_name, permission=ADMIN, request_method="GET", renderer=renderer, **kw)


def admin_post(route_name, **kw):
    """A console POST: CSRF token required (400 and no change without it).
    A change goes through :func:`console_action`, which uses this."""
    return view_config(
        route_name=route_name, permission=ADMIN, request_method="POST", require_csrf=True, **kw
    )


class Refused(Exception):
    """A console change that is not made: rolled back, ``message`` flashed as an
    error, and a 303 to ``route_name`` (default: the action's ``then``)."""

    def __init__(self, message, route_name=None, query=None, **route_kw):
        super().__init__(message)
        self.message = message
        self.route_name = route_name
        self.query = query
        self.route_kw = route_kw


@dataclasses.dataclass
class Done:
    """What a console action did: committed, then ``message`` flashed.

    ``changed=False`` (nothing to do, already so) skips the rules reload;
    ``after_commit`` runs once the change is committed, before the flash.
    """

    message: str
    queue: str = "info"
    changed: bool = True
    after_commit: Callable[[], object] | None = None


def console_action(route_name, *, then, reload_rules=False):
    """Register ``handler`` as the console POST of ``route_name`` (CSRF required)
    and turn its outcome into the answer: :class:`Done` -> commit, reload the rules
    (``reload_rules``), flash, 303 to ``then``; :class:`Refused` -> rollback, flash
    the error, 303. Any other exception propagates (the error views answer it)."""

    def decorate(handler):
        @functools.wraps(handler)
        def view(request):
            session = request.dbsession
            try:
                done = handler(request)
            except Refused as refusal:
                session.rollback()
                flash(request, refusal.message, "error")
                target = refusal.route_name or then
                return see_other(request, target, _query=refusal.query, **refusal.route_kw)
            session.commit()
            if done.after_commit is not None:
                done.after_commit()
            if reload_rules and done.changed:
                apply_rules_now(request)
            flash(request, done.message, done.queue)
            return see_other(request, then)

        # _depth=1: venusian attaches the view to the module applying the decorator.
        return admin_post(route_name, _depth=1)(view)

    return decorate


def flush_or_refuse(request, message, **redirect):
    """Flush the pending change; a unique-constraint clash (someone else made the
    same change meanwhile) is :class:`Refused` with ``message``."""
    try:
        request.dbsession.flush()
    except IntegrityError:
        raise Refused(message, **redirect) from None


def row_id(request):
    """The ``{id}`` of the route as an int, or None when it cannot name a row."""
    value = int(request.matchdict["id"])  # the route only matches digits
    return value if 0 < value <= MAX_ID else None


def get_row(request, model, missing):
    """The ``model`` row named by the route's ``{id}``, or :class:`Refused` (``missing``)."""
    ident = row_id(request)
    row = request.dbsession.get(model, ident) if ident is not None else None
    if row is None:
        raise Refused(missing)
    return row


def apply_rules_now(request):
    """Make this process apply the saved rules at once (others follow on their own)."""
    if not request.registry.rules.reload():
        flash(
            request,
            "Saved, but this process could not reload its rules just now; it keeps retrying "
            "in the background.",
            "error",
        )


def utc_text(value):
    """A stored timestamp as ``YYYY-MM-DD HH:MM:SS UTC`` (SQLite returns naive UTC)."""
    if value is None:
        return ""
    if value.tzinfo is not None:
        value = value.astimezone(datetime.UTC)
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")


def utc_iso(value):
    """ISO 8601 in UTC, to the second (SQLite hands back naive UTC datetimes)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.UTC)
    return value.astimezone(datetime.UTC).isoformat(timespec="seconds")


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
    response = render_to_response("admin/error.jinja2", {"title": title, "message": message}, request=request)
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


__all__ = [
    "Done",
    "Refused",
    "admin_post",
    "admin_view",
    "audit",
    "console_action",
    "flash",
    "forget",
    "redirect",
    "see_other",
]
