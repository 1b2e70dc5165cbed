"""Accounts, teams, memberships, idempotency keys and the call directory.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

UUID = postgresql.UUID(as_uuid=False)
NOW = sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("user_id", UUID, primary_key=True),
        sa.Column("email", sa.Text, nullable=False, unique=True),
        sa.Column("display_name", sa.Text, nullable=False),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
    )
    op.create_table(
        "teams",
        sa.Column("team_id", UUID, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("owner_id", UUID, sa.ForeignKey("users.user_id"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
    )
    op.create_table(
        "memberships",
        sa.Column("team_id", UUID, sa.ForeignKey("teams.team_id"), primary_key=True),
        sa.Column("user_id", UUID, sa.ForeignKey("users.user_id"), primary_key=True),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("joined_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
    )
    op.create_index("memberships_by_user", "memberships", ["user_id"])
    op.create_table(
        "idempotency_keys",
        sa.Column("user_id", UUID, primary_key=True),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("request_hash", sa.Text, nullable=False),
        sa.Column("command_id", UUID, nullable=False),
        sa.Column("response", postgresql.JSONB, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
    )
    op.create_table(
        "call_directory",
        sa.Column("call_id", UUID, primary_key=True),
        sa.Column("team_id", UUID, sa.ForeignKey("teams.team_id"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
    )
    op.create_table(
        "signin_failures",
        sa.Column("email", sa.Text, primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    for table in (
        "signin_failures",
        "call_directory",
        "idempotency_keys",
        "memberships",
        "teams",
        "users",
    ):
        op.drop_table(table)
