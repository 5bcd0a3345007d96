"""The rules for user accounts, one set for the console and the command line.

Usernames: 1-150 characters after trimming, no whitespace and no control, format or
separator character (DEL and the C1 controls included); unique without regard to case
(Unicode case folding), so ``Admin`` cannot sit beside ``admin``. Passwords: 8 to
1024 characters (argon2 hashes any length, but a cap keeps hashing cheap to ask for).
"""

import unicodedata

from sqlalchemy import select

from .models import User

MIN_PASSWORD = 8
MAX_PASSWORD = 1024
MAX_USERNAME = 150
COMMAND_LINE_ACTOR = "(command line)"

_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs"})


def clean_username(raw):
    """The username as entered, without surrounding whitespace."""
    return (raw or "").strip()


def username_problem(username):
    """None, or why ``username`` (already cleaned) is not acceptable."""
    if not username:
        return "A username is required."
    if len(username) > MAX_USERNAME:
        return f"A username has at most {MAX_USERNAME} characters."
    if any(c.isspace() or unicodedata.category(c) in _FORBIDDEN_CATEGORIES for c in username):
        return "A username has no spaces or control characters."
    return None


def password_problem(password):
    """None, or why ``password`` is not acceptable."""
    if len(password) < MIN_PASSWORD:
        return f"A password has at least {MIN_PASSWORD} characters."
    if len(password) > MAX_PASSWORD:
        return f"A password has at most {MAX_PASSWORD} characters."
    return None


def same_name(dbsession, username):
    """The existing user whose name equals ``username`` ignoring case, or None.

    Compared with Unicode case folding in Python, the same on every database (SQLite's
    lower() folds ASCII only; and the Kelvin sign folds to "k"). Console users are few."""
    wanted = username.casefold()
    return next((u for u in dbsession.scalars(select(User)) if u.username.casefold() == wanted), None)


def user_state(user):
    """What the audit log records of a user (never the password hash)."""
    return {"username": user.username, "superuser": user.is_superuser, "active": user.is_active}
