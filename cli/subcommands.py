"""How each part of the `chorus` command line registers its subcommands and their handlers."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING

from config.settings import Settings

#: What a subcommand runs: its parsed arguments and the settings in, the exit status out.
Handler = Callable[[argparse.Namespace, Settings], int]
if TYPE_CHECKING:  # generic for type checkers only: not subscriptable at run time
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]


def add_subcommand(
    sub: Subparsers,
    name: str,
    handler: Handler | None,
    *,
    help: str,  # argparse's own name for it
    description: str,
) -> argparse.ArgumentParser:
    """A subcommand `name` with its one-line help and its description; `main` runs `handler`
    (None: its own subcommands set one)."""
    parser = sub.add_parser(name, help=help, description=description)
    if handler is not None:
        parser.set_defaults(handler=handler)
    return parser
