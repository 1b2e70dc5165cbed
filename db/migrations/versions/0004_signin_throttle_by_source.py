"""Sign-in throttling per e-mail and source address, counted before the password is checked.

Revision ID: 0004
Revises: 0003

The counts only live for a 15-minute window, so the table is recreated empty rather than
converted: at worst, a client throttled during the upgrade gets its attempts back.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_table("signin_failures")
    op.create_table(
        "signin_failures",
        sa.Column("email", sa.Text, nullable=False),
        # The client's address as the server sees it (behind a trusted proxy: X-Forwarded-For).
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("email", "source", name="signin_failures_pkey"),
    )


def downgrade() -> None:
    op.drop_table("signin_failures")
    op.create_table(
        "signin_failures",
        sa.Column("email", sa.Text, primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=False),
    )
