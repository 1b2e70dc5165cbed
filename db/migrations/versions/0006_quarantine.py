"""Quarantine: the event records the read-model tables refused, kept and named.

Revision ID: 0006
Revises: 0005

Written by the projector in the transaction that moves the team's position past the record;
`chorus replay verify` names them and fails while any exist.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "quarantine",
        sa.Column("team_id", postgresql.UUID(as_uuid=False), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("event_id", sa.Text, nullable=True),
        sa.Column("type", sa.Text, nullable=True),
        sa.Column("reason", sa.Text, nullable=False),
        # The record exactly as read from the log (bytes: whatever it holds is storable).
        sa.Column("record", sa.LargeBinary, nullable=False),
        sa.Column(
            "quarantined_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.text("now()"),
        ),
        sa.PrimaryKeyConstraint("team_id", "seq", name="quarantine_pkey"),
    )


def downgrade() -> None:
    op.drop_table("quarantine")
