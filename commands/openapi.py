"""The commands service's OpenAPI document, from the same body types the handlers decode."""

from __future__ import annotations

from schemas import bodies
from schemas.bodies import Credentials, NewAccount, NewMember, NewTeam
from web.openapi import Operation

TEAM = "/v1/teams/{team_id}"
CALL = "/v1/calls/{call_id}"

OPERATIONS = [
    Operation("post", "/v1/accounts", "Create an account", 201, NewAccount, authenticated=False),
    Operation("post", "/v1/sessions", "Sign in: get a bearer token", 201, Credentials, False),
    Operation(
        "post",
        "/v1/password-resets",
        "Set a new password with an operator's one-time reset token",
        200,
        bodies.PasswordReset,
        authenticated=False,
    ),
    Operation("post", "/v1/teams", "Create a team; the caller owns it", 201, NewTeam),
    Operation("post", f"{TEAM}/members", "Add a member (owner only)", 201, NewMember),
    Operation("get", f"{TEAM}/members", "List the team's members", 200),
    Operation("post", f"{TEAM}/presence", "Set presence", 202, bodies.SetPresenceBody),
    Operation("post", f"{TEAM}/presence/heartbeat", "Still here", 202, bodies.HeartbeatBody),
    Operation("post", f"{TEAM}/calls", "Start a call", 202, bodies.StartCallBody),
    Operation("post", f"{CALL}/join", "Join a call", 202, bodies.JoinBody),
    Operation("post", f"{CALL}/leave", "Leave a call", 202, bodies.LeaveBody),
    Operation("post", f"{CALL}/mute", "Mute or unmute oneself", 202, bodies.MuteBody),
    Operation("post", f"{CALL}/end", "End a call for everyone", 202, bodies.EndBody),
    Operation("get", "/v1/commands/{command_id}", "A command's outcome", 200),
]
