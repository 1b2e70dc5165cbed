"""The commands service's tables (the schema itself is made by infra/migrations)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

metadata = sa.MetaData()
UUID = postgresql.UUID(as_uuid=False)

users = sa.Table(
    "users",
    metadata,
    sa.Column("user_id", UUID, primary_key=True),
    sa.Column("email", sa.Text, nullable=False, unique=True),
    sa.Column("display_name", sa.Text, nullable=False),
    sa.Column("password_hash", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True)),
)

teams = sa.Table(
    "teams",
    metadata,
    sa.Column("team_id", UUID, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("owner_id", UUID, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True)),
)

memberships = sa.Table(
    "memberships",
    metadata,
    sa.Column("team_id", UUID, primary_key=True),
    sa.Column("user_id", UUID, primary_key=True),
    sa.Column("role", sa.Text, nullable=False),
    sa.Column("joined_at", sa.DateTime(timezone=True)),
)

idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("user_id", UUID, primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("request_hash", sa.Text, nullable=False),
    sa.Column("command_id", UUID, nullable=False),
    sa.Column("response", postgresql.JSONB),
    sa.Column("created_at", sa.DateTime(timezone=True)),
)

call_directory = sa.Table(
    "call_directory",
    metadata,
    sa.Column("call_id", UUID, primary_key=True),
    sa.Column("team_id", UUID, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True)),
)

signin_failures = sa.Table(
    "signin_failures",
    metadata,
    sa.Column("email", sa.Text, primary_key=True),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=False),
)

command_outcomes = sa.Table(
    "command_outcomes",
    metadata,
    sa.Column("command_id", UUID, primary_key=True),
    sa.Column("team_id", UUID, nullable=False),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("position", sa.Text, nullable=False),
    sa.Column("command_position", sa.Text),
    sa.Column("events", postgresql.JSONB, nullable=False),
    sa.Column("decided_at", sa.DateTime(timezone=True)),
)
