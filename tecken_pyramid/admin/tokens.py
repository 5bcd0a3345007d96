"""Console area: upload tokens (SPEC §9 "Tokens", "Console").

List every token (``?user=NAME`` for one user's), create one for a user, revoke one.
A new token is shown once, on the page that answers the create POST itself: never
stored (only its sha256 is, by :func:`tecken_pyramid.tokens.create_token`), never in
the session, the audit log or a URL, and that page is sent with ``Cache-Control:
no-store``. The create form carries a random ``once`` value that the session
remembers, so sending the same form again (reloading that page) makes no second
token. Creating and revoking are audited (``token.create``, ``token.revoke``) by
tokens.py; lists show the first four characters of a token, then "…".
"""

import datetime
import json
import secrets

from pyramid.events import BeforeRender, subscriber
from pyramid.renderers import render_to_response
from sqlalchemy import func, select

from .. import tokens
from ..models import ApiToken, User
from ..rawrequest import query_text
from ..routes import PUBLIC
from ..urls import absolute_url
from ..users import same_name
from .common import (
    Done,
    Refused,
    admin_post,
    admin_view,
    console_action,
    flash,
    get_row,
    html_error,
    see_other,
)
from .forms import MAX_TOKEN_NOTE_LENGTH, TokenForm

UTC = datetime.UTC
USED_FORMS = "token_forms_sent"  # session key: the ``once`` values of create forms already sent
REMEMBER_FORMS = 20


def aware(value):
    """A stored timestamp as an aware UTC datetime (SQLite hands back naive UTC)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def when(value):
    value = aware(value)
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else ""


def state(token, user_active, now):
    """What the token can do now: revoked, expired, user inactive, or active."""
    if token.revoked_at is not None:
        return "revoked"
    if token.expires_at is not None and aware(token.expires_at) <= now:
        return "expired"
    return "active" if user_active else "user inactive"


def token_row(token, user, now):
    """A token as the lists show it (never more of it than the hint)."""
    return {
        "id": token.id,
        "username": user.username,
        "user_id": user.id,
        "hint": token.hint + "…",
        "permissions": tokens.token_permissions(token),
        "note": token.note,
        "created_at": when(token.created_at),
        "created_by": token.created_by,
        "expires_at": when(token.expires_at),
        "last_used_at": when(token.last_used_at),
        "revoked_at": when(token.revoked_at),
        "state": state(token, user.is_active, now),
    }


def token_rows(dbsession, user_id=None):
    """Every token (one user's when ``user_id``), newest first."""
    now = datetime.datetime.now(UTC)
    query = select(ApiToken, User).join(User, User.id == ApiToken.user_id)
    if user_id is not None:
        query = query.where(ApiToken.user_id == user_id)
    query = query.order_by(ApiToken.created_at.desc(), ApiToken.id.desc())
    return [token_row(token, user, now) for token, user in dbsession.execute(query)]


def all_users(dbsession):
    return dbsession.scalars(select(User).order_by(func.lower(User.username), User.id)).all()


def create_form(dbsession, chosen=None):
    """What the create form needs: the active users, who is chosen, a fresh ``once``."""
    active = [u.username for u in all_users(dbsession) if u.is_active]
    return {
        "active_users": active,
        "chosen": chosen,
        "once": secrets.token_hex(16),
        "max_days": tokens.MAX_EXPIRES_DAYS,
        "max_note": MAX_TOKEN_NOTE_LENGTH,
    }


@admin_view("admin.tokens", renderer="admin/tokens.jinja2")
def tokens_list(request):
    wanted = query_text(request.environ.get("QUERY_STRING", "")).get("user", "")
    dbsession = request.dbsession
    user = same_name(dbsession, wanted.strip()) if wanted else None
    if wanted is None or (wanted and user is None):
        return html_error(request, 400, "Bad filter", "user: no user of that name.")
    return {
        "tokens": token_rows(dbsession, user.id if user else None),
        "filter_user": user.username if user else "",
        "usernames": [u.username for u in all_users(dbsession)],
        "form": create_form(dbsession, user.username if user else None),
    }


def sent_before(request, once):
    return once in request.session.get(USED_FORMS, ())


def remember_sent(request, once):
    request.session[USED_FORMS] = [*request.session.get(USED_FORMS, ())][-(REMEMBER_FORMS - 1) :] + [once]


def make_token(request, form):
    """(the token, its row, its user), or :class:`Refused`."""
    problem = form.problem()
    if problem is not None:
        raise Refused(f"Token not created: {problem}")
    if sent_before(request, form.once):
        raise Refused(
            "Token not created: this form was sent already, and its token was shown then, once. "
            "Revoke it below if it was not copied, and create another."
        )
    user = same_name(request.dbsession, form.username)
    if user is None:
        raise Refused(f"Token not created: no user named {form.username}.")
    try:
        raw, token = tokens.create_token(
            request.dbsession,
            user,
            form.permissions,
            expires_days=form.days(),
            note=form.note,
            actor=request.identity.username,
        )
    except ValueError as exc:
        raise Refused(f"Token not created: {exc}.", query={"user": user.username}) from None
    return raw, token, user


@admin_post("admin.tokens.create")
def token_create(request):
    """Not a :func:`console_action`: the answer is the page with the token, not a 303."""
    form = TokenForm.parse(request.POST)
    try:
        raw, token, user = make_token(request, form)
    except Refused as refusal:
        request.dbsession.rollback()
        flash(request, refusal.message, "error")
        return see_other(request, "admin.tokens", _query=refusal.query)
    request.dbsession.commit()
    remember_sent(request, form.once)
    context = {
        "token": raw,
        "row": token_row(token, user, datetime.datetime.now(UTC)),
        # The pattern itself: the upload route is added only where uploads are served.
        "upload_url": absolute_url(request, PUBLIC["upload"]),
    }
    response = render_to_response("admin/token_created.jinja2", context, request=request)
    response.headers["Cache-Control"] = "no-store"
    return response


@console_action("admin.token.revoke", then="admin.tokens")
def token_revoke(request):
    token = get_row(request, ApiToken, "That token does not exist (any more).")
    user = request.dbsession.get(User, token.user_id)
    label = f"token {token.hint}… of {user.username}"
    if not tokens.revoke_token(request.dbsession, token, actor=request.identity.username):
        return Done(f"The {label} was already revoked.", changed=False)
    return Done(f"Revoked the {label}: uploads with it are refused from now on.")


def readable(text):
    """An audit before/after as people read it: stored JSON again, with its non-ASCII
    characters (a token hint's "…", a note) as themselves rather than ``\\u2026``."""
    if not text or text[0] not in "{[":
        return text
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return json.dumps(value, ensure_ascii=False)


@subscriber(BeforeRender)
def audit_text(event):
    # Only the audit log page uses it (its rows of token changes carry a hint "…").
    if event.get("renderer_name") == "admin/audit.jinja2":
        event["readable"] = readable
