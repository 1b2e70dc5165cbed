"""Outcomes and Idempotency-Keys are pruned once past their lifetime: BRIN indexes on their age.

Both tables are written in time order, so a block-range index finds the old rows for a few
pages of index, and costs next to nothing per insert (unlike a B-tree on the hot path).

Revision ID: 0009
Revises: 0008
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "command_outcomes_by_age", "command_outcomes", ["decided_at"], postgresql_using="brin"
    )
    op.create_index(
        "idempotency_keys_by_age", "idempotency_keys", ["created_at"], postgresql_using="brin"
    )


def downgrade() -> None:
    op.drop_index("idempotency_keys_by_age", table_name="idempotency_keys")
    op.drop_index("command_outcomes_by_age", table_name="command_outcomes")
