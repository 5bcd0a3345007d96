"""``tecken-pyramid SUBCOMMAND INI [options]`` (SPEC §1).

Exit codes: 0 success; 2 usage error (argparse); 1 operational error (one line on
stderr); 3 nothing to do. Never a traceback.
"""

import argparse
import contextlib
import datetime
import getpass
import logging
import os
import re
import sys

from . import users

KEY_SHAPE = re.compile(r"([^/]+)/([0-9A-Fa-f]+)/([^/]+)\Z")
DB_HINT = "TECKEN_DATABASE_URL"


class OperationalError(Exception):
    """One line for stderr, exit status 1."""


class NothingToDo(Exception):
    """One line for stderr, exit status 3."""


def _read_ini(ini):
    if not os.path.isfile(ini):
        raise OperationalError(f"cannot read {ini}: no such file")
    from pyramid.paster import get_appsettings

    try:
        settings = dict(get_appsettings(ini))
    except Exception as exc:
        raise OperationalError(f"cannot read {ini}: {exc}") from None
    settings.setdefault("here", os.path.dirname(os.path.abspath(ini)))
    return settings


def _settings(ini):
    from . import settings as settings_mod

    raw = _read_ini(ini)
    try:
        return settings_mod.load(raw, here=raw["here"])
    except settings_mod.ConfigError as exc:
        raise OperationalError(f"configuration error: {exc}") from None


def _database_url(ini):
    """Only the database is needed by migrate, create-superuser and cleanse."""
    from . import settings as settings_mod

    raw = _read_ini(ini)
    url = settings_mod.read_raw(raw, os.environ, "sqlalchemy.url")
    if not url or not url.strip():
        raise OperationalError(f"configuration error: {DB_HINT} (sqlalchemy.url) is required")
    try:
        name = DB_HINT if DB_HINT in os.environ else "sqlalchemy.url"
        return settings_mod._database(name, url)
    except settings_mod.ConfigError as exc:
        raise OperationalError(f"configuration error: {exc}") from None


def _db_error(exc):
    first = (str(getattr(exc, "orig", None) or exc).strip().splitlines() or [""])[0]
    return OperationalError(f"database unavailable ({DB_HINT}): {type(exc).__name__}: {first}"[:500])


@contextlib.contextmanager
def _database(ini):
    """The one place the commands open the database: yields a connected engine.

    Opening covers creating a SQLite file's directory (which fails with an OSError
    such as FileExistsError when a parent is a regular file) and a first connection
    (an unreachable server, a file that cannot be created). Any failure then, and any
    database error in the block, is the one line naming TECKEN_DATABASE_URL (SPEC §8).
    """
    from sqlalchemy.exc import SQLAlchemyError

    from .db import ensure_sqlite_directory, make_engine

    url = _database_url(ini)
    engine = None
    try:
        try:
            ensure_sqlite_directory(url)
        except OSError as exc:
            message = f"database unavailable ({DB_HINT}): cannot create the SQLite file's directory: {exc}"
            raise OperationalError(message[:500]) from None
        engine = make_engine(url)
        with engine.connect():
            pass
        yield engine
    except SQLAlchemyError as exc:
        raise _db_error(exc) from None
    finally:
        if engine is not None:
            engine.dispose()


def cmd_migrate(args):
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext

    from alembic import command

    with _database(args.ini) as engine:
        cfg = Config(args.ini)
        cfg.attributes["database_url"] = engine.url.render_as_string(hide_password=False)
        command.upgrade(cfg, "head")
        with engine.connect() as connection:
            revision = MigrationContext.configure(connection).get_current_revision()
    print(f"database at revision {revision} (head)")


def _read_password(args):
    if args.password_stdin:
        line = sys.stdin.readline()
        password = line[:-1] if line.endswith("\n") else line
        password = password[:-1] if password.endswith("\r") else password
    else:
        if not sys.stdin.isatty():
            raise OperationalError("no terminal to prompt for the password: use --password-stdin")
        password = getpass.getpass("Password: ")
        if getpass.getpass("Password (again): ") != password:
            raise OperationalError("the passwords differ")
    problem = users.password_problem(password)
    if problem is not None:
        raise OperationalError(problem)
    return password


def cmd_create_superuser(args):
    """Create a superuser, or reset an existing one's password and make them an
    active superuser; the console's rules (users.py) and an audit row."""
    from sqlalchemy.orm import Session

    from .models import AuditLog, User
    from .passwords import hash_password
    from .security import end_sessions

    username = users.clean_username(args.username)
    problem = users.username_problem(username)
    if problem is not None:
        raise OperationalError(problem)
    password = _read_password(args)
    with _database(args.ini) as engine, Session(engine) as session, session.begin():
        user = users.same_name(session, username)
        if user is not None and user.username != username:
            raise OperationalError(
                f"a user named {user.username} already exists (names differing only in case are one user)"
            )
        created = user is None
        if created:
            user = User(username=username)
            session.add(user)
            before = None
        else:
            before = {**users.user_state(user), "password": "(previous)"}
            end_sessions(user)  # their earlier sessions end with the old password
        user.password_hash = hash_password(password)
        user.is_superuser = True
        user.is_active = True
        after = {**users.user_state(user), "password": "(set)" if created else "(reset)"}
        action = "user.create" if created else "user.reset"
        session.add(AuditLog.entry(users.COMMAND_LINE_ACTOR, action, username, before, after))
    print(f"{'created' if created else 'updated'} superuser {username}")


def cmd_invalidate(args):
    keys = []
    for raw in args.keys:
        m = KEY_SHAPE.match(raw)
        if not m:
            args.parser.error(f"not a SYMBOL/DEBUGID/FILENAME key: {raw!r}")
        keys.append((m.group(1), m.group(2).upper(), m.group(3)))
    keys = list(dict.fromkeys(keys))
    settings = _settings(args.ini)
    if not settings.memcached_servers:
        raise NothingToDo(
            "nothing to invalidate: no memcached configured "
            "(the in-process cache belongs to each server process)"
        )
    from .cache import CacheUnavailable, MemcachedCache
    from .lookup import ExistenceCache

    cache = MemcachedCache(settings.memcached_servers, dead_retry=settings.memcached_dead_retry_seconds)
    try:
        ExistenceCache(settings, cache).invalidate(keys)
    except CacheUnavailable as exc:
        raise OperationalError(f"memcached unavailable (TECKEN_MEMCACHED_SERVERS): {exc}") from None
    finally:
        cache.close()
    print(f"invalidated {len(keys)} keys in {len(settings.all_locations)} locations")


def cmd_cleanse(args):
    from sqlalchemy import delete, func, select

    from .models import MissingSymbol

    cutoff = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=args.days)
    table = MissingSymbol.__table__
    with _database(args.ini) as engine, engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            cutoff = cutoff.replace(tzinfo=None)
        old = table.c.modified_at < cutoff
        if args.dry_run:
            n = connection.execute(select(func.count()).select_from(table).where(old))
            print(f"would delete {n.scalar_one()}")
        else:
            result = connection.execute(delete(table).where(old))
            print(f"deleted {result.rowcount}")


def _non_negative(value):
    if not re.fullmatch(r"[0-9]+", value):
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {value!r}")
    return int(value)


def build_parser():
    parser = argparse.ArgumentParser(prog="tecken-pyramid", description="tecken-pyramid administration")
    sub = parser.add_subparsers(dest="command", metavar="SUBCOMMAND")
    sub.required = True

    p = sub.add_parser("migrate", help="upgrade the database to the newest revision (seeds default rows)")
    p.add_argument("ini")
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("create-superuser", help="create a superuser, or reset one's password")
    p.add_argument("ini")
    p.add_argument("--username", required=True)
    p.add_argument("--password-stdin", action="store_true", help="read the password from one line of stdin")
    p.set_defaults(func=cmd_create_superuser)

    p = sub.add_parser("invalidate", help="drop cached existence of keys in every location")
    p.add_argument("ini")
    p.add_argument("keys", nargs="+", metavar="SYMBOL/DEBUGID/FILENAME")
    p.set_defaults(func=cmd_invalidate, parser=p)

    p = sub.add_parser("cleanse-missing-symbols", help="delete missing-symbol rows not modified for N days")
    p.add_argument("ini")
    p.add_argument("--days", type=_non_negative, default=30)
    p.add_argument("--dry-run", action="store_true")
    p.set_defaults(func=cmd_cleanse)

    # Uploads (SPEC §9): create-token, upload and index, each in its own module.
    from .cli_uploads import add_upload_commands

    add_upload_commands(sub, _non_negative)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    # The app's own warnings (a memcached failure, say) must not add lines to the one
    # line on stderr; without this, logging's last-resort handler would print them.
    logging.getLogger("tecken_pyramid").addHandler(logging.NullHandler())
    try:
        args.func(args)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader stopped early (``create-token ... | head -n 1``): the work is done and
        # what was read is what the reader wanted. No error line, and no second one from
        # the interpreter flushing stdout again at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OperationalError as exc:
        print(f"tecken-pyramid: {exc}", file=sys.stderr)
        return 1
    except NothingToDo as exc:
        print(f"tecken-pyramid: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("tecken-pyramid: interrupted", file=sys.stderr)
        return 1
    except SystemExit:
        raise
    except Exception as exc:  # never a traceback
        first = (str(exc).splitlines() or [""])[0]
        print(f"tecken-pyramid: {type(exc).__name__}: {first}"[:500], file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
