"""Command outcomes: the decision recorded for each command, for GET /v1/commands/{id}.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "command_outcomes",
        sa.Column("command_id", postgresql.UUID(as_uuid=False), primary_key=True),
        sa.Column("team_id", postgresql.UUID(as_uuid=False), nullable=False),
        # A user id, or a principal such as "system:presence-timer" for timer commands.
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("position", sa.Text, nullable=False),
        # Where the command was appended (c<partition>.<offset>), for `?after=` on reads.
        sa.Column("command_position", sa.Text, nullable=True),
        sa.Column("events", postgresql.JSONB, nullable=False),
        sa.Column(
            "decided_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.text("now()"),
        ),
    )
    op.create_index("command_outcomes_by_position", "command_outcomes", ["command_position"])


def downgrade() -> None:
    op.drop_table("command_outcomes")
