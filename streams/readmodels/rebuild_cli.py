"""`chorus rebuild`: the read models rebuilt from the events topic while the old ones serve."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from cli.subcommands import add_subcommand
from config.settings import Settings

if TYPE_CHECKING:
    from cli.subcommands import Subparsers


def add_parser(sub: Subparsers) -> None:
    """Register the `rebuild` subcommand on the `chorus` subparsers."""
    add_subcommand(
        sub,
        "rebuild",
        _rebuild,
        help="rebuild the presence and calls read models from the events log",
        description="Rebuild the read models (presence, calls, recent changes) from every "
        "event in Kafka into new tables while the current ones keep serving, then swap them "
        "in at once. Run it after a change of the projection, or to repair the read models. "
        "Shows progress on a terminal; quiet when piped.",
    )


def _rebuild(args: argparse.Namespace, settings: Settings) -> int:
    from streams.readmodels.rebuild import run_rebuild

    return run_rebuild(settings)
