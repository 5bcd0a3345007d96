"""Login and logout (SPEC §7): argon2 hashes, a fresh session, a throttle, safe ``next``."""

import datetime

from pyramid.security import forget, remember
from pyramid.view import view_config

from ..passwords import verify_password
from ..security import end_sessions, find_user, safe_next
from .common import html_error, redirect


@view_config(route_name="admin.login", request_method="GET", renderer="admin/login.jinja2")
def login_form(request):
    return {"next": safe_next(request.params.get("next")), "username": "", "error": None}


@view_config(
    route_name="admin.login", request_method="POST", require_csrf=True, renderer="admin/login.jinja2"
)
def login(request):
    username = request.POST.get("username", "").strip()
    password = request.POST.get("password", "")
    next_url = safe_next(request.POST.get("next"))
    address = request.environ.get("REMOTE_ADDR", "")
    throttle = request.registry.login_throttle
    if throttle.locked(username, address):
        return html_error(
            request, 429, "Too many attempts", "Too many failed sign-ins: wait 5 minutes and try again."
        )
    user = find_user(request.dbsession, username) if username else None
    if user is None or not user.is_active or not verify_password(user.password_hash, password):
        throttle.failed(username, address)
        request.response.status = 400
        return {"next": next_url, "username": username, "error": "Wrong username or password."}
    throttle.succeeded(username, address)
    user.last_login = datetime.datetime.now(datetime.UTC)
    request.dbsession.commit()
    # A fresh session (and with it a fresh CSRF token) for the signed-in user.
    headers = remember(request, user.id)
    return redirect(request, next_url, headers=headers)


@view_config(route_name="admin.logout", request_method="POST", require_csrf=True)
def logout(request):
    user = request.identity
    if user is not None:
        # Deleting the cookie in this browser is not enough: a copy of it (or the
        # user's other sessions) must not sign in afterwards either.
        end_sessions(user)
        request.dbsession.commit()
    headers = forget(request)
    return redirect(request, request.route_path("admin.login"), headers=headers)
