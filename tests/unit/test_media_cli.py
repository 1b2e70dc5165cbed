"""`chorus media --node-id X --region R --port P`: two nodes side by side on one machine."""

from __future__ import annotations

from cli.main import build_parser, media_settings
from config.settings import Settings


def test_media_flags_name_the_node_and_its_region() -> None:
    args = build_parser().parse_args(["media", "--node-id", "n1", "--region", "eu", "--port", "9"])
    settings = media_settings(args, Settings(media_port=args.port))
    assert (settings.media_node(), settings.media_region) == ("n1", "eu")
    assert settings.media_base_url() == "http://127.0.0.1:9"


def test_without_flags_nodes_on_other_ports_differ() -> None:
    args = build_parser().parse_args(["media"])
    first = media_settings(args, Settings(media_port=8002))
    second = media_settings(args, Settings(media_port=8102))
    assert first.media_node() != second.media_node()
    assert first.media_region == "local"
