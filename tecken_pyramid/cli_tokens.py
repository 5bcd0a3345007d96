"""``tecken-pyramid create-token INI --username NAME [--permission upload|upload_try ...]
[--expires-days N] [--note TEXT]`` (SPEC §9 "Tokens").

Prints two lines on stdout, once the token is committed:

1. the token alone, so a script can capture it (``TOKEN=$(tecken-pyramid create-token
   development.ini --username ci | head -n 1)``);
2. what it is: ``token 1a2b… for ci: upload; never expires`` (or ``expires
   2027-01-01T12:00:00+00:00``), then ``; note: ...`` when there is one.

The token is never stored (only its sha256 is), never in the audit row (``token.create``
by ``(command line)``) and printed nowhere else. Without ``--permission`` the token may
``upload`` (not to try). ``--expires-days`` is 1 to 3650; leave it out for a token that
never expires: 0 is refused (exit 1) rather than read as "never" or as "already
expired". The user is found ignoring case (users.same_name) and must be active.
Refusals are one line on stderr and exit status 1 (cli.OperationalError).
"""

import re

from . import cli, tokens, users

DEFAULT_PERMISSIONS = (tokens.UPLOAD,)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def expires_problem(days):
    """None, or why ``--expires-days`` is refused."""
    if days is not None and not 1 <= days <= tokens.MAX_EXPIRES_DAYS:
        return (
            f"--expires-days must be from 1 to {tokens.MAX_EXPIRES_DAYS} "
            "(leave it out for a token that never expires)"
        )
    return None


def summary(token, username):
    """The second line: whose token, what it may do, when it expires, its note."""
    permissions = ", ".join(tokens.token_permissions(token))
    if token.expires_at is None:
        expiry = "never expires"
    else:
        expiry = "expires " + token.expires_at.isoformat(timespec="seconds")
    note = f"; note: {token.note}" if token.note else ""
    return f"token {token.hint}… for {username}: {permissions}; {expiry}{note}"


def cmd_create_token(args):
    from sqlalchemy.orm import Session

    permissions = tuple(args.permissions or DEFAULT_PERMISSIONS)
    problem = expires_problem(args.expires_days) or tokens.permissions_problem(permissions)
    if problem is None and _CONTROL.search(args.note or ""):
        problem = "the note contains control characters"
    if problem is not None:
        raise cli.OperationalError(problem)
    username = users.clean_username(args.username)
    with cli._database(args.ini) as engine, Session(engine) as session, session.begin():
        user = users.same_name(session, username) if username else None
        if user is None:
            raise cli.OperationalError(f"no user named {username!r}")
        if not user.is_active:
            raise cli.OperationalError(f"user {user.username} is not active: reactivate them first")
        try:
            raw, token = tokens.create_token(
                session,
                user,
                permissions,
                expires_days=args.expires_days,
                note=args.note,
                actor=users.COMMAND_LINE_ACTOR,
            )
        except ValueError as exc:
            raise cli.OperationalError(str(exc)) from None
        line = summary(token, user.username)
    # Printed only once committed: a token that was never saved is never shown.
    print(raw)
    print(line)
