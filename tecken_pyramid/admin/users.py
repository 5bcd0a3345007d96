"""Console area: users (SPEC §7).

List, create, make or unmake superuser, deactivate or reactivate, reset password.
Nobody can lock out the last active superuser: any change that would leave no
active superuser is refused (yourself included). Every change is audited; a
password hash never goes into the audit log.
"""

from pyramid.security import remember
from pyramid.view import view_config
from sqlalchemy import func, select

from ..models import User
from ..passwords import hash_password
from ..security import end_sessions
from ..users import MIN_PASSWORD, same_name, user_state
from .common import Done, Refused, admin_view, audit, console_action, flush_or_refuse, html_error, utc_iso
from .forms import FlagForm, NewUserForm, PasswordForm
from .tokens import token_rows


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
    return {
        "account": row(user),
        "min_password": MIN_PASSWORD,
        "tokens": token_rows(request.dbsession, user.id),
    }


@console_action("admin.users.create", then="admin.users")
def user_create(request):
    form = NewUserForm.parse(request.POST)
    problem = form.problem()
    if problem is None:
        # Names differing only in case are refused too (users.same_name).
        taken = same_name(request.dbsession, form.username)
        if taken is not None:
            problem = f"A user named {taken.username} already exists."
    if problem is not None:
        raise Refused(f"User not created: {problem}")
    user = User(
        username=form.username,
        password_hash=hash_password(form.password),
        is_superuser=form.superuser,
        is_active=True,
    )
    request.dbsession.add(user)
    # Created by someone else in the meantime: the unique index says so.
    flush_or_refuse(request, f"User not created: a user named {form.username} already exists.")
    audit(request, "user.create", form.username, None, user_state(user))
    if form.superuser:
        return Done(f"Created superuser {form.username}.")
    return Done(f"Created user {form.username} (not a superuser: cannot use the console).")


def change_flag(request, field, label_on, label_off, action):
    """Set ``field`` of the route's user as the form says, unless that leaves no
    active superuser."""
    user = load_user(request)
    form = FlagForm.parse(request.POST)
    if form.problem() is not None:
        raise Refused(f"Nothing changed: {form.problem()}")
    wanted = form.value
    label = label_on if wanted else label_off
    if getattr(user, field) == wanted:
        return Done(f"{user.username} is already {label}.", changed=False)
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
        raise Refused(
            f"Refused: {user.username} is the last active superuser; "
            "make another user an active superuser first."
        )
    audit(request, action, user.username, before, user_state(user))
    return Done(f"{user.username} is now {label}.")


@console_action("admin.user.superuser", then="admin.users")
def user_superuser(request):
    return change_flag(request, "is_superuser", "a superuser", "not a superuser", "user.superuser")


@console_action("admin.user.active", then="admin.users")
def user_active(request):
    return change_flag(request, "is_active", "active", "deactivated (signed out everywhere)", "user.active")


@console_action("admin.user.password", then="admin.users")
def user_password(request):
    user = load_user(request)
    form = PasswordForm.parse(request.POST)
    problem = form.problem()
    if problem is not None:
        raise Refused(f"Password not changed: {problem}", "admin.user", id=user.id)
    user.password_hash = hash_password(form.password)
    end_sessions(user)
    # The hash never goes into the audit log, only the fact that it changed.
    audit(request, "user.password", user.username, {"password": "(previous)"}, {"password": "(reset)"})
    if request.identity is not None and request.identity.id == user.id:
        # Your own password: other sessions are signed out (their stamp no longer
        # matches), this one carries on with a fresh session and the new stamp.
        return Done(
            "Your password was reset; your other sessions are signed out.",
            after_commit=lambda: remember(request, user.id),
        )
    return Done(f"Password of {user.username} reset; their sessions are signed out.")
