"""`python -m app.admin`: accounts from the command line, on the database the server uses
(DATA_DIR or DATABASE_URL), migrated first. For the first admin on a server where sign-up
should never be open, or to get back in after losing the last admin's password.

    python -m app.admin create-user alice --admin     # asks for the password
    python -m app.admin reset-password alice
    python -m app.admin list-users
"""

from __future__ import annotations

import argparse
import getpass
import sys
from datetime import timedelta

from sqlalchemy import select

from .accounts.service import AccountError, Accounts
from .core.config import get_settings
from .db.engine import database_url, make_engine
from .db.migrate import upgrade
from .db.models import User


def read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        raise AccountError(400, "The two passwords differ.", "password_mismatch")
    return first


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.admin", description="Manage accounts.")
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create-user", help="create an account")
    create.add_argument("username")
    create.add_argument("--admin", action="store_true", help="with the admin role")
    create.add_argument("--email")
    create.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    reset = commands.add_parser("reset-password", help="set a new password (ends the user's sessions)")
    reset.add_argument("username")
    reset.add_argument("--password-stdin", action="store_true")
    commands.add_parser("list-users", help="list the accounts")
    args = parser.parse_args(argv)

    settings = get_settings()
    engine = make_engine(database_url(settings.data_dir, settings.database_url))
    upgrade(engine)
    accounts = Accounts(engine, timedelta(hours=settings.session_ttl_hours))
    try:
        if args.command == "create-user":
            password = read_password(args.password_stdin)
            role = "admin" if args.admin else "user"
            user = accounts.create_user(args.username, password, role, args.email)
            print(f"created {user.role} '{user.username}' (id {user.id})")
        elif args.command == "reset-password":
            with accounts.db() as db:
                found = db.scalar(select(User.id).where(User.username == args.username.strip().lower()))
            if found is None:
                raise AccountError(404, f"No user '{args.username}'.", "user_not_found")
            accounts.update_user(found, password=read_password(args.password_stdin))
            print(f"password of '{args.username}' reset; their sessions ended")
        else:
            for user in accounts.list_users():
                state = "disabled" if user.disabled else "active"
                print(f"{user.id}\t{user.username}\t{user.role}\t{state}\t{user.email or ''}")
    except AccountError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
