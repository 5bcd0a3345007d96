"""SPEC §9 "Tokens": ``tecken-pyramid create-token``, the real entry point as a subprocess.

The token alone on stdout's first line, a description on the second; only its sha256
stored; an audit row by ``(command line)`` that never holds it; ``upload`` when no
permission is given; refusals are one line on stderr and exit 1 (2 for argparse's
usage errors); ``--expires-days 0`` is refused.
"""

import datetime
import hashlib
import re

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tecken_pyramid import tokens
from tecken_pyramid.models import ApiToken, AuditLog
from tests.conftest import create_user
from tests.functional.test_cli import UNREACHABLE_DB, assert_usage_error, base_env, one_line, run

# The database kind changes nothing here: run once, in the SQLite pass (.ci/test).
pytestmark = pytest.mark.database_independent

TOKEN = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def env(db):
    create_user(db, "Uploader", "correct-horse", superuser=False)
    return base_env(TECKEN_DATABASE_URL=db.url)


def create(env, *args):
    return run("create-token", "development.ini", *args, env=env)


def rows(db, model):
    engine = db.engine()
    with Session(engine) as session:
        found = session.scalars(select(model).order_by(model.id)).all()
    engine.dispose()
    return found


def aware(value):
    return value.replace(tzinfo=datetime.UTC) if value.tzinfo is None else value


def test_prints_the_token_then_what_it_is_and_stores_only_its_hash(env, db):
    result = create(env, "--username", "uploader", "--note", "ci box")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    first, second = result.stdout.splitlines()
    assert TOKEN.fullmatch(first)
    assert second == f"token {first[:4]}… for Uploader: upload; never expires; note: ci box"
    [token] = rows(db, ApiToken)
    assert token.key_hash == hashlib.sha256(first.encode()).hexdigest()
    assert token.hint == first[:4]
    assert (token.can_upload, token.can_upload_try) == (True, False)  # the default permission
    assert token.expires_at is None and token.revoked_at is None
    assert token.note == "ci box" and token.created_by == "(command line)"
    [entry] = rows(db, AuditLog)
    assert (entry.username, entry.action) == ("(command line)", "token.create")
    assert entry.target == f"Uploader token {token.id}"
    assert first not in f"{entry.target}{entry.before}{entry.after}"
    assert token.key_hash not in f"{entry.before}{entry.after}"


def test_the_printed_token_authenticates_uploads(env, db):
    result = create(env, "--username", "UPLOADER", "--permission", "upload_try")
    assert result.returncode == 0, result.stderr
    raw = result.stdout.splitlines()[0]
    engine = db.engine()
    with Session(engine) as session:
        found = tokens.authenticate(session, f"{raw}-my-label")
        assert found.username == "Uploader"
        assert (found.can_upload, found.can_upload_try) == (False, True)
    engine.dispose()


def test_several_permissions_and_an_expiry(env, db):
    before = datetime.datetime.now(datetime.UTC)
    result = create(
        env,
        "--username",
        "uploader",
        "--permission",
        "upload_try",
        "--permission",
        "upload",
        "--expires-days",
        "30",
    )
    assert result.returncode == 0, result.stderr
    [token] = rows(db, ApiToken)
    assert (token.can_upload, token.can_upload_try) == (True, True)
    expires = aware(token.expires_at)
    assert before + datetime.timedelta(days=30) <= expires <= before + datetime.timedelta(days=30, minutes=1)
    second = result.stdout.splitlines()[1]
    stamp = expires.isoformat(timespec="seconds")
    assert second == f"token {token.hint}… for Uploader: upload, upload_try; expires {stamp}"


def test_each_run_makes_a_new_token(env, db):
    one = create(env, "--username", "uploader").stdout.splitlines()[0]
    two = create(env, "--username", "uploader").stdout.splitlines()[0]
    assert one != two
    assert len(rows(db, ApiToken)) == 2


@pytest.mark.parametrize(
    "args, message",
    [
        (("--username", "nobody"), "no user named 'nobody'"),
        (("--username", "uploader", "--expires-days", "0"), "--expires-days must be from 1 to 3650"),
        (("--username", "uploader", "--expires-days", "3651"), "--expires-days must be from 1 to 3650"),
        (("--username", "uploader", "--note", "x" * 501), "the note is longer than 500 characters"),
        (("--username", "uploader", "--note", "two\nlines"), "the note contains control characters"),
    ],
)
def test_refusals_are_one_line_and_exit_1(env, db, args, message):
    result = create(env, *args)
    assert result.returncode == 1, result.stderr
    assert message in one_line(result.stderr)
    assert result.stdout == ""
    assert rows(db, ApiToken) == [] and rows(db, AuditLog) == []


def test_an_inactive_user_gets_no_token(env, db):
    create_user(db, "gone", "correct-horse", active=False)
    result = create(env, "--username", "gone")
    assert result.returncode == 1
    assert one_line(result.stderr) == "tecken-pyramid: user gone is not active: reactivate them first"
    assert result.stdout == "" and rows(db, ApiToken) == []


@pytest.mark.parametrize(
    "args",
    [
        (),
        ("--username", "uploader", "--permission", "download"),
        ("--username", "uploader", "--expires-days", "-1"),
        ("--username", "uploader", "--expires-days", "soon"),
    ],
)
def test_usage_errors_exit_2(env, db, args):
    assert_usage_error(create(env, *args))
    assert rows(db, ApiToken) == []


def test_unreachable_database_is_one_line_naming_the_setting():
    result = create(base_env(TECKEN_DATABASE_URL=UNREACHABLE_DB), "--username", "uploader")
    assert result.returncode == 1
    assert one_line(result.stderr).startswith("tecken-pyramid: database unavailable (TECKEN_DATABASE_URL)")
    assert result.stdout == ""


def test_a_reader_that_stops_early_is_a_clean_exit(env, db):
    """``TOKEN=$(tecken-pyramid create-token ... | head -n 1)`` as the README shows it:
    ``head`` may close the pipe before the second line is written. Made certain here by
    a pipe whose reading end is closed before the command starts: no error line, exit 0."""
    import os
    import subprocess

    from tests.functional.test_cli import ROOT, TECKEN

    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run(
            [TECKEN, "create-token", "development.ini", "--username", "uploader"],
            cwd=ROOT,
            env={**env, "PYTHONUNBUFFERED": "1"},
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    finally:
        os.close(write_end)
    assert (result.returncode, result.stderr) == (0, "")
    assert len(rows(db, ApiToken)) == 1
