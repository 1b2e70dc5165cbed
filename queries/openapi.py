"""The queries service's OpenAPI document."""

from __future__ import annotations

from web.openapi import Operation

OPERATIONS = [
    Operation("get", "/v1/teams/{team_id}/presence", "Members' presence", 200, query=("after",)),
    Operation(
        "get", "/v1/teams/{team_id}/calls", "The team's calls", 200, query=("state", "after")
    ),
    Operation("get", "/v1/calls/{call_id}", "One call", 200, query=("after",)),
    Operation(
        "get",
        "/v1/teams/{team_id}/live",
        "Live query: a snapshot, then one event per change (resume with Last-Event-ID)",
        200,
        media_type="text/event-stream",
    ),
]
