"""Read models of presence and calls, built from the events by the projector.

Revision ID: 0003
Revises: 0002

`body` is exactly the contract JSON of a member or a call; `rm_positions` holds each team's
position (the seq of its last applied event), which guards against applying an event twice;
`rm_changes` keeps recent changes for live queries to resume from. Names of constraints and
indexes follow PostgreSQL's defaults, which `chorus rebuild` gives back to the copies of these
tables it swaps in.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

UUID = postgresql.UUID(as_uuid=False)
JSONB = postgresql.JSONB


def upgrade() -> None:
    op.create_table(
        "rm_positions",
        sa.Column("team_id", UUID, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("team_id", name="rm_positions_pkey"),
    )
    op.create_table(
        "rm_members",
        sa.Column("team_id", UUID, nullable=False),
        sa.Column("user_id", UUID, nullable=False),
        sa.Column("body", JSONB, nullable=False),
        sa.PrimaryKeyConstraint("team_id", "user_id", name="rm_members_pkey"),
    )
    op.create_table(
        "rm_calls",
        sa.Column("call_id", UUID, nullable=False),
        sa.Column("team_id", UUID, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        # The contract's fixed-width time string: it sorts as the instants do.
        sa.Column("started_at", sa.Text, nullable=False),
        sa.Column("body", JSONB, nullable=False),
        sa.PrimaryKeyConstraint("call_id", name="rm_calls_pkey"),
    )
    op.create_index("rm_calls_team_id_state_idx", "rm_calls", ["team_id", "state"])
    op.create_table(
        "rm_changes",
        sa.Column("team_id", UUID, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("data", JSONB, nullable=False),
        sa.PrimaryKeyConstraint("team_id", "seq", name="rm_changes_pkey"),
    )


def downgrade() -> None:
    for table in ("rm_changes", "rm_calls", "rm_members", "rm_positions"):
        op.drop_table(table)
