"""Archives, tokens and upload requests for the upload tests (SPEC §9)."""

import io
import zipfile

from tests.support.apps import create_user

UPLOADER = "uploader@example.com"


def sym(symbol, debugid, *, os_name="windows", arch="x86_64", code_id=None, code_file=None, body=b""):
    """The bytes of a Breakpad .sym whose MODULE line names (debugid, symbol)."""
    lines = [f"MODULE {os_name} {arch} {debugid} {symbol}"]
    if code_id:
        lines.append(f"INFO CODE_ID {code_id}" + (f" {code_file}" if code_file else ""))
    lines.append("INFO GENERATOR tests 1.0")
    lines.append("FILE 0 main.c")
    return ("\n".join(lines) + "\n").encode() + body


def make_zip(members, compression=zipfile.ZIP_DEFLATED):
    """Zip bytes of ``members``: a dict or a list of (name, bytes)."""
    items = members.items() if isinstance(members, dict) else members
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as zf:
        for name, data in items:
            zf.writestr(name, data)
    return buffer.getvalue()


def sym_member(symbol, debugid, filename=None, **kw):
    """(name, bytes) of a .sym member at symbol/debugid/filename."""
    filename = filename or (symbol.rsplit(".", 1)[0] + ".sym")
    return f"{symbol}/{debugid}/{filename}", sym(symbol, debugid.upper(), **kw)


def make_token(database, username=UPLOADER, permissions=("upload",), *, expires_days=None, active=True):
    """A new token for ``username`` (created as a plain user when missing)."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from tecken_pyramid import tokens
    from tecken_pyramid.models import User

    engine = database.engine()
    try:
        with Session(engine) as session:
            user = session.scalars(select(User).where(User.username == username)).one_or_none()
        if user is None:
            create_user(database, username, "not-used-password", superuser=False, active=True)
        with Session(engine) as session, session.begin():
            user = session.scalars(select(User).where(User.username == username)).one()
            raw, _ = tokens.create_token(
                session, user, permissions, expires_days=expires_days, note="tests", actor="tests"
            )
            user.is_active = active
        return raw
    finally:
        engine.dispose()


def post_upload(app, archive, token, *, name="symbols.zip", fields=(), status="*", **kw):
    """POST ``archive`` as Mozilla's upload_symbols.py does: one file part named ``name``."""
    headers = {"Auth-Token": token} if token else {}
    return app.post(
        "/upload/",
        params=list(fields),
        upload_files=[(name, name, archive)],
        headers=headers,
        status=status,
        **kw,
    )


def rows(database, model, **where):
    """Every row of ``model`` (optionally filtered by column equality), detached."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    engine = database.engine()
    try:
        with Session(engine, expire_on_commit=False) as session:
            query = select(model)
            for column, value in where.items():
                query = query.where(getattr(model, column) == value)
            found = list(session.scalars(query.order_by(model.id)))
            session.expunge_all()
            return found
    finally:
        engine.dispose()
