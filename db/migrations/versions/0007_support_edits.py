"""Operators' support edits: disabled and erased accounts, password resets, the audit outbox.

Revision ID: 0007
Revises: 0006

`audit_log` is the audit topic's outbox: each support edit writes its record here in the
transaction that makes the edit, and the admin service publishes the rows in `seq` order
(admin/audit.py).
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

NOW = sa.text("now()")


def upgrade() -> None:
    op.add_column("users", sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("users", sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "password_resets",
        # SHA-256 of the one-time token: the token itself is shown once and never stored.
        sa.Column("token_hash", sa.Text, primary_key=True),
        sa.Column(
            "user_id",
            postgresql.UUID(as_uuid=False),
            sa.ForeignKey("users.user_id"),
            nullable=False,
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Index("password_resets_by_user", "user_id"),
    )
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("record", postgresql.JSONB, nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Index("audit_log_unpublished", "seq", postgresql_where=sa.text("published_at IS NULL")),
    )


def downgrade() -> None:
    op.drop_table("audit_log")
    op.drop_table("password_resets")
    op.drop_column("users", "erased_at")
    op.drop_column("users", "disabled_at")
