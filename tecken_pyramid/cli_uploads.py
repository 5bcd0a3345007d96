"""The upload commands (SPEC §9): ``create-token``, ``upload`` and ``index``.

Registered on the command line by :func:`add_upload_commands`; each command's code
lives in its own module and is imported only when it runs.
"""


def _command(module, name):
    """A subcommand whose code is imported only when it runs."""

    def run(args):
        import importlib

        return getattr(importlib.import_module(module, __package__), name)(args)

    return run


def add_upload_commands(sub, whole_number):
    p = sub.add_parser("create-token", help="make an upload token for a user (printed once)")
    p.add_argument("ini")
    p.add_argument("--username", required=True)
    p.add_argument("--permission", action="append", choices=("upload", "upload_try"), dest="permissions")
    p.add_argument(
        "--expires-days",
        type=whole_number,
        default=None,
        help="1 to 3650 days; leave it out for a token that never expires (0 is refused)",
    )
    p.add_argument("--note", default="")
    p.set_defaults(func=_command(".cli_tokens", "cmd_create_token"))

    p = sub.add_parser("upload", help="store a symbol archive as POST /upload/ does, without HTTP")
    p.add_argument("ini")
    p.add_argument("zip", metavar="ZIP")
    p.add_argument("--username", required=True)
    p.add_argument("--try", action="store_true", dest="try_symbols", help="upload to the try location")
    p.set_defaults(func=_command(".cli_uploads", "cmd_upload"))

    p = sub.add_parser("index", help="fill the symbol index from the .sym files already in a location")
    p.add_argument("ini")
    p.add_argument("--location", default=None, help="a location's number (0, 1, ...) or try; default: all")
    p.add_argument("--prefix", default="", help="only keys under this prefix (after the location's own)")
    p.set_defaults(func=_command(".cli_index", "cmd_index"))


def cmd_upload(args):
    """``tecken-pyramid upload INI ZIP --username NAME [--try]``: the pipeline of
    ``POST /upload/`` without HTTP; prints the same JSON answer (exit 1 unless 201)."""
    import hashlib
    import json
    import os

    from sqlalchemy.exc import SQLAlchemyError

    from . import cli, make_app, shutdown, users
    from .uploads import UploadRequest

    settings = cli._settings(args.ini)
    if not os.path.isfile(args.zip):
        raise cli.OperationalError(f"cannot read {args.zip}: no such file")
    digest, size = hashlib.sha256(), 0
    with open(args.zip, "rb") as fp:
        while chunk := fp.read(1024 * 1024):
            digest.update(chunk)
            size += len(chunk)
    app = make_app(settings, cli._read_ini(args.ini), start_background=False)
    registry = app.registry
    try:
        try:
            with registry.dbsession_factory() as session:
                user = users.same_name(session, users.clean_username(args.username))
            registry.rules.reload()
        except SQLAlchemyError as exc:
            raise cli._db_error(exc) from None
        if user is None or not user.is_active:
            raise cli.OperationalError(f"no active user named {args.username}")
        outcome = registry.uploads.run(
            UploadRequest(
                archive_path=args.zip,
                filename=os.path.basename(args.zip),
                size=size,
                sha256=digest.hexdigest(),
                user_id=user.id,
                username=user.username,
                token_id=None,
                try_symbols=args.try_symbols,
            )
        )
    finally:
        shutdown(registry, flush_seconds=0)
    if outcome.status != 201:
        raise cli.OperationalError(f"upload refused ({outcome.status}): {outcome.body.get('error')}")
    print(json.dumps(outcome.body, indent=2))
