"""Console area: users (SPEC §7).

List, create, make or unmake superuser, deactivate or reactivate, reset password.
Nobody can lock out the last active superuser: any change that would leave no
active superuser is refused (yourself included). Every change is audited; a
password hash never goes into the audit log.
"""

from pyramid.security import remember
from pyramid.view import view_config
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from ..models import User
from ..passwords import hash_password
from ..security import end_sessions
from ..users import MIN_PASSWORD, clean_username, password_problem, same_name, user_state, username_problem
from .audit import utc_iso
from .common import admin_post, admin_route, admin_view, audit, flash, html_error, see_other

TRUE_VALUES = ("1", "true", "on", "yes")
FALSE_VALUES = ("0", "false", "off", "no")


def active_superuser_ids(dbsession):
    """Ids of the active superusers. On PostgreSQL the rows stay locked until
    commit, so a concurrent change waits and then sees this one."""
    query = select(User.id).where(User.is_superuser.is_(True), User.is_active.is_(True)).with_for_update()
    return set(dbsession.scalars(query))


def leaves_no_superuser(dbsession, user, *, superuser, active):
    """True when giving ``user`` these flags would leave no active superuser."""
    if superuser and active:
        return False
    return not (active_superuser_ids(dbsession) - {user.id})


def load_user(request):
    """The user named by the route's id; a console 404 page when there is none."""
    user_id = int(request.matchdict["id"])
    user = request.dbsession.get(User, user_id) if user_id < 2**31 else None
    if user is None:
        raise NoSuchUser()
    return user


class NoSuchUser(Exception):
    pass


@view_config(context=NoSuchUser)
def no_such_user(exc, request):
    return html_error(request, 404, "No such user", "That user does not exist (any more).")


def flag(request, name):
    value = request.POST.get(name, "").strip().lower()
    if value in TRUE_VALUES:
        return True
    if value in FALSE_VALUES:
        return False
    return None


def row(user):
    return {
        "id": user.id,
        "username": user.username,
        "superuser": user.is_superuser,
        "active": user.is_active,
        "created_at": utc_iso(user.created_at),
        "last_login": utc_iso(user.last_login),
    }


@admin_view("admin.users", renderer="admin/users.jinja2")
def users_list(request):
    users = request.dbsession.scalars(select(User).order_by(func.lower(User.username), User.id)).all()
    active_superusers = sum(1 for u in users if u.is_superuser and u.is_active)
    return {
        "users": [row(u) for u in users],
        "active_superusers": active_superusers,
        "min_password": MIN_PASSWORD,
    }


@admin_view("admin.user", renderer="admin/users_detail.jinja2")
def user_detail(request):
    user = load_user(request)
    return {"account": row(user), "min_password": MIN_PASSWORD}


@admin_post("admin.users.create")
def user_create(request):
    username = clean_username(request.POST.get("username", ""))
    password = request.POST.get("password", "")
    superuser = request.POST.get("superuser", "") in TRUE_VALUES
    problem = username_problem(username) or password_problem(password)
    if problem is None:
        # Names differing only in case are refused too (users.same_name).
        taken = same_name(request.dbsession, username)
        if taken is not None:
            problem = f"A user named {taken.username} already exists."
    if problem is not None:
        flash(request, f"User not created: {problem}", "error")
        return see_other(request, "admin.users")
    user = User(
        username=username, password_hash=hash_password(password), is_superuser=superuser, is_active=True
    )
    request.dbsession.add(user)
    try:
        request.dbsession.flush()
    except IntegrityError:  # created by someone else in the meantime
        request.dbsession.rollback()
        flash(request, f"User not created: a user named {username} already exists.", "error")
        return see_other(request, "admin.users")
    audit(request, "user.create", username, None, user_state(user))
    request.dbsession.commit()
    if superuser:
        flash(request, f"Created superuser {username}.")
    else:
        flash(request, f"Created user {username} (not a superuser: cannot use the console).")
    return see_other(request, "admin.users")


def _change_flags(request, field, label_on, label_off, action):
    user = load_user(request)
    wanted = flag(request, "value")
    if wanted is None:
        flash(request, "Nothing changed: the form did not say what to do.", "error")
        return see_other(request, "admin.users")
    current = getattr(user, field)
    if current == wanted:
        flash(request, f"{user.username} is already {label_on if wanted else label_off}.")
        return see_other(request, "admin.users")
    superuser = wanted if field == "is_superuser" else user.is_superuser
    active = wanted if field == "is_active" else user.is_active
    refused = leaves_no_superuser(request.dbsession, user, superuser=superuser, active=active)
    before = user_state(user)
    if not refused:
        setattr(user, field, wanted)
        if field == "is_active" and not wanted:
            # Reactivating later must not bring back the sessions of before.
            end_sessions(user)
        # Checked again once the change is written: SQLite takes its write lock
        # only now, and then sees whatever another request committed meanwhile.
        request.dbsession.flush()
        refused = not active_superuser_ids(request.dbsession)
    if refused:
        request.dbsession.rollback()
        flash(
            request,
            f"Refused: {user.username} is the last active superuser; "
            "make another user an active superuser first.",
            "error",
        )
        return see_other(request, "admin.users")
    audit(request, action, user.username, before, user_state(user))
    request.dbsession.commit()
    flash(request, f"{user.username} is now {label_on if wanted else label_off}.")
    return see_other(request, "admin.users")


@admin_post("admin.user.superuser")
def user_superuser(request):
    return _change_flags(request, "is_superuser", "a superuser", "not a superuser", "user.superuser")


@admin_post("admin.user.active")
def user_active(request):
    return _change_flags(request, "is_active", "active", "deactivated (signed out everywhere)", "user.active")


@admin_post("admin.user.password")
def user_password(request):
    user = load_user(request)
    password = request.POST.get("password", "")
    problem = password_problem(password)
    if problem is not None:
        flash(request, f"Password not changed: {problem}", "error")
        return see_other(request, "admin.user", id=user.id)
    user.password_hash = hash_password(password)
    end_sessions(user)
    # The hash never goes into the audit log, only the fact that it changed.
    audit(request, "user.password", user.username, {"password": "(previous)"}, {"password": "(reset)"})
    request.dbsession.commit()
    if request.identity is not None and request.identity.id == user.id:
        # Your own password: other sessions are signed out (their stamp no longer
        # matches), this one carries on with a fresh session and the new stamp.
        remember(request, user.id)
        flash(request, "Your password was reset; your other sessions are signed out.")
    else:
        flash(request, f"Password of {user.username} reset; their sessions are signed out.")
    return see_other(request, "admin.users")


def includeme(config):
    admin_route(config, "admin.users", "/admin/users")
    admin_route(config, "admin.users.create", "/admin/users/create")
    admin_route(config, "admin.user", "/admin/users/{id:\\d+}")
    admin_route(config, "admin.user.superuser", "/admin/users/{id:\\d+}/superuser")
    admin_route(config, "admin.user.active", "/admin/users/{id:\\d+}/active")
    admin_route(config, "admin.user.password", "/admin/users/{id:\\d+}/password")
