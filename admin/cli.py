"""`chorus admin`: run the operators' service, or `chorus admin add-operator EMAIL`."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from cli.subcommands import Handler, add_subcommand
from config.settings import DEFAULT_PORTS, Settings

if TYPE_CHECKING:
    from cli.subcommands import Subparsers


def add_parser(sub: Subparsers, serve: Handler) -> argparse.ArgumentParser:
    """`chorus admin [--host H] [--port P]` runs the service; its subcommand adds operators."""
    admin = add_subcommand(
        sub,
        "admin",
        serve,
        help="run the admin service (operators only; loopback by default)",
        description="Run the operators' service: sign-in with a TOTP code, inspection of "
        "accounts, teams, presence, calls and command outcomes, and support edits, each recorded "
        "in the hash-chained audit log. It listens on "
        "CHORUS_ADMIN_HOST (default 127.0.0.1), whatever CHORUS_HOST says.",
    )
    admin.add_argument("--host", default=None, help="address (CHORUS_ADMIN_HOST, 127.0.0.1)")
    admin.add_argument(
        "--port", type=int, default=None, help=f"port (default {DEFAULT_PORTS['admin']})"
    )
    admin.add_argument("--log-level", default="info", help="uvicorn log level")
    admin.add_argument(
        "--access-log", action="store_true", help="log every request (off: see /metrics)"
    )
    actions = admin.add_subparsers(dest="admin_command", metavar="ACTION")
    add = add_subcommand(
        actions,
        "add-operator",
        _add_operator,
        help="add an operator; prints their password and TOTP setup URI once",
        description="Store a new operator with a random password and a TOTP secret, and print "
        "both once: the password (good for one sign-in, which sets a new one), and the otpauth:// "
        "URI to load into an authenticator app.",
    )
    add.add_argument("email", help="the operator's e-mail address")
    return admin


def _add_operator(args: argparse.Namespace, settings: Settings) -> int:
    from admin.operators import OperatorError, add_operator

    try:
        made = add_operator(settings.require_database(), args.email)
    except OperatorError as exc:
        print(f"chorus: {exc}", file=sys.stderr)
        return 2
    print(f"operator {made.email} ({made.operator_id}) added; shown once, keep them safe:")
    print(f"  password:  {made.password}")
    print(f"  TOTP URI:  {made.provisioning_uri}")
    print("The password works once: the first sign-in sets a new one (`new_password`).")
    return 0
