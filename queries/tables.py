"""The tables the queries service reads (made by infra/migrations; written by the worker)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

metadata = sa.MetaData()
UUID = postgresql.UUID(as_uuid=False)

rm_positions = sa.Table(
    "rm_positions",
    metadata,
    sa.Column("team_id", UUID, primary_key=True),
    sa.Column("seq", sa.BigInteger, nullable=False),
)

rm_members = sa.Table(
    "rm_members",
    metadata,
    sa.Column("team_id", UUID, primary_key=True),
    sa.Column("user_id", UUID, primary_key=True),
    sa.Column("body", postgresql.JSONB, nullable=False),
)

rm_calls = sa.Table(
    "rm_calls",
    metadata,
    sa.Column("call_id", UUID, primary_key=True),
    sa.Column("team_id", UUID, nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("started_at", sa.Text, nullable=False),
    sa.Column("body", postgresql.JSONB, nullable=False),
)

rm_changes = sa.Table(
    "rm_changes",
    metadata,
    sa.Column("team_id", UUID, primary_key=True),
    sa.Column("seq", sa.BigInteger, primary_key=True),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("data", postgresql.JSONB, nullable=False),
)

command_outcomes = sa.Table(
    "command_outcomes",
    metadata,
    sa.Column("command_id", UUID, primary_key=True),
    sa.Column("team_id", UUID, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("position", sa.Text, nullable=False),
    sa.Column("command_position", sa.Text),
)
