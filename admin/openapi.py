"""The admin service's OpenAPI document: `operator` bearer tokens on every route but sign-in."""

from __future__ import annotations

from admin.bodies import AccountChanges, NewOwner, OperatorCredentials, Reasoned
from web.openapi import Operation

ADMIN = "/v1/admin"
TEAM = f"{ADMIN}/teams/{{team_id}}"
ACCOUNT = f"{ADMIN}/accounts/{{user_id}}"

OPERATIONS = [
    Operation(
        "post",
        f"{ADMIN}/sessions",
        "Operator sign-in (password and TOTP code): an operator token",
        201,
        OperatorCredentials,
        authenticated=False,
    ),
    Operation("get", f"{ADMIN}/accounts", "Find an account by e-mail", 200, query=("email",)),
    Operation("get", f"{ADMIN}/accounts/{{user_id}}", "An account and its teams", 200),
    Operation("get", TEAM, "A team and its members", 200),
    Operation("get", f"{TEAM}/presence", "A team's presence (read model)", 200),
    Operation("get", f"{TEAM}/calls", "A team's calls (read model)", 200, query=("state",)),
    Operation("get", f"{ADMIN}/commands/{{command_id}}", "A command's outcome", 200),
    Operation(
        "get",
        f"{TEAM}/events",
        "A team's events from the log, each with its chain status",
        200,
        query=("after", "limit"),
    ),
    Operation("get", f"{ADMIN}/media/rooms", "Media nodes and the calls' rooms", 200),
    Operation("get", f"{ADMIN}/metrics", "The sampled metrics over the last hour and day", 200),
    Operation("patch", ACCOUNT, "Change an account's display name or e-mail", 200, AccountChanges),
    Operation(
        "post",
        f"{ACCOUNT}/password-reset",
        "Start a password reset: a one-time token",
        200,
        Reasoned,
    ),
    Operation("post", f"{ACCOUNT}/disable", "Disable an account; revoke its tokens", 200, Reasoned),
    Operation("post", f"{ACCOUNT}/enable", "Enable a disabled account", 200, Reasoned),
    Operation("post", f"{ACCOUNT}/erase", "Erase an account's personal data", 200, Reasoned),
    Operation(
        "post", f"{TEAM}/members/{{user_id}}/remove", "Remove a member of a team", 200, Reasoned
    ),
    Operation("post", f"{TEAM}/owner", "Transfer a team's ownership to a member", 200, NewOwner),
    Operation(
        "get", f"{ADMIN}/audit", "The audit log, newest first", 200, query=("limit", "before")
    ),
]
