"""The `chorus` command line: one entry point, a subcommand per process or tool."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from adapters.errors import InfraError
from admin.cli import add_parser as add_admin
from cli.subcommands import Handler
from config.settings import DEFAULT_PORTS, Settings, SettingsError
from replay.cli import add_parser as add_replay
from streams.readmodels.rebuild_cli import add_parser as add_rebuild


def _serve(service: str) -> Handler:
    def run(args: argparse.Namespace, settings: Settings) -> int:
        import uvicorn

        if service == "commands":
            from commands.app import create_app
        elif service == "queries":
            from queries.app import create_app
        elif service == "web":
            from client.app import create_app
        elif service == "admin":
            from admin.app import create_app
        else:
            from media.app import create_app
        # The operators' service has a host of its own: loopback unless said otherwise.
        host = args.host or (settings.admin_host if service == "admin" else settings.host)
        port = args.port or getattr(settings, f"{service}_port")
        if service == "media":
            settings = media_settings(args, settings.with_(host=host, media_port=port))
            if settings.media_workers > 1:
                from media.workers import run_workers

                options = ["--log-level", args.log_level]
                options += ["--access-log"] if args.access_log else []
                return run_workers(settings, settings.media_workers, options)
        from web.limits import BoundedHttpToolsProtocol

        app = create_app(settings)
        uvicorn.run(
            app,
            host=host,
            port=port,
            # Heads bounded in memory (431), before the app's HeaderLimits sees them.
            http=BoundedHttpToolsProtocol,
            log_level=args.log_level,
            # One log line per request costs more CPU than a small request; /metrics counts them.
            access_log=args.access_log,
            timeout_graceful_shutdown=5,
        )
        return 0

    return run


def media_settings(args: argparse.Namespace, settings: Settings) -> Settings:
    """A media node's settings with its flags applied (its id and offer URLs follow its port)."""
    return settings.with_(
        media_node_id=args.node_id or settings.media_node_id,
        media_region=args.region or settings.media_region,
        media_workers=args.workers or settings.media_workers,
    )


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    from streams.app import run_worker

    run_worker(
        settings.with_(
            host=args.host or settings.host, worker_port=args.port or settings.worker_port
        )
    )
    return 0


def _up(args: argparse.Namespace, settings: Settings) -> int:
    from devstack.up import run_up

    return run_up(settings)


def _init(args: argparse.Namespace, settings: Settings) -> int:
    from adapters.kafka import ensure_topics
    from db.engines import migrate

    ensure_topics(
        settings.require_kafka(),
        settings.topics,
        settings.partitions,
        replication=settings.kafka_replication,
    )
    migrate(settings.require_database())
    print(f"chorus: topics ({settings.partitions} partitions) and database schema are ready")
    return 0


def _fetch(args: argparse.Namespace, settings: Settings) -> int:
    from devstack.broker import kafka_libs

    print(f"chorus: Kafka jars in {kafka_libs(settings.cache_dir)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chorus",
        description="Chorus: instant team audio on a Kafka-streamed CQRS backend.",
        epilog="Settings come from CHORUS_* environment variables; see README.md.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = sub.add_parser(
        "up",
        help="start Kafka, PostgreSQL and every service on this machine",
        description="Start (or reuse, with CHORUS_KAFKA / CHORUS_DATABASE_URL) a Kafka broker "
        "and a PostgreSQL cluster under CHORUS_DATA_DIR, create the topics, apply migrations, "
        "then run the worker, the commands, queries and media services, the browser client's "
        "page (`chorus web`) and the operators' service (`chorus admin`, on loopback). "
        "Ctrl-C stops all.",
    )
    up.set_defaults(handler=_up)

    init = sub.add_parser(
        "init",
        help="create the topics and apply database migrations, then exit",
        description="For deployments against an existing Kafka cluster and PostgreSQL.",
    )
    init.set_defaults(handler=_init)

    fetch = sub.add_parser(
        "fetch",
        help="fetch the Kafka broker's jars from Maven Central into the user cache (once)",
        description="Copy Apache Kafka and its dependencies into a per-user cache.",
    )
    fetch.set_defaults(handler=_fetch)

    for name, what in (
        ("commands", "the commands service (accounts, teams, client commands)"),
        ("queries", "the queries service (read models, live queries over SSE)"),
        ("media", "the media service (WebRTC signalling, audio mixing)"),
        ("web", "the browser client (its page, and the same-origin entry point to the APIs)"),
    ):
        service = sub.add_parser(name, help=f"run {what}", description=f"Run {what}.")
        _add_listen_args(service, _port_help(name))
        service.add_argument("--log-level", default="info", help="uvicorn log level")
        service.add_argument(
            "--access-log", action="store_true", help="log every request (off: see /metrics)"
        )
        service.set_defaults(handler=_serve(name))
    media = sub.choices["media"]
    media.add_argument("--node-id", default=None, help="this node's id (CHORUS_MEDIA_NODE_ID)")
    media.add_argument("--region", default=None, help="this node's region (CHORUS_MEDIA_REGION)")
    media.add_argument(
        "--workers",
        type=int,
        default=None,
        help="media processes, each a node `<node-id>-<k>` on port base+k "
        "(CHORUS_MEDIA_WORKERS, default one per core)",
    )

    worker = sub.add_parser(
        "worker",
        help="run a Faust stream worker (deciders and projections)",
        description="Run a Faust worker; start more of them to share the team partitions.",
    )
    _add_listen_args(worker, f"health and metrics, {_port_help('worker')}")
    worker.set_defaults(handler=_worker)
    add_replay(sub)
    add_rebuild(sub)
    add_admin(sub, _serve("admin"))
    return parser


def _port_help(process: str) -> str:
    return f"CHORUS_{process.upper()}_PORT, default {DEFAULT_PORTS[process]}"


def _add_listen_args(parser: argparse.ArgumentParser, port_help: str) -> None:
    parser.add_argument("--host", default=None, help="address to listen on (CHORUS_HOST)")
    parser.add_argument("--port", type=int, default=None, help=f"port ({port_help})")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
        handler: Handler = args.handler
        return handler(args, settings)
    except (SettingsError, InfraError) as exc:
        print(f"chorus: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
