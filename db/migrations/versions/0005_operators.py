"""Operators of the admin service, and their own sign-in throttle.

Revision ID: 0005
Revises: 0004

Operators are not users: no team, no events, no foreign key to `users`.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

NOW = sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "operators",
        sa.Column("operator_id", postgresql.UUID(as_uuid=False), primary_key=True),
        sa.Column("email", sa.Text, nullable=False, unique=True),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("totp_secret", sa.Text, nullable=False),
        # The time step of the last TOTP code accepted: a code is good for one sign-in only.
        sa.Column("last_totp_step", sa.BigInteger, nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.text("now()"),
        ),
    )
    op.create_table(
        "operator_signin_failures",
        sa.Column("email", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("email", "source", name="operator_signin_failures_pkey"),
    )


def downgrade() -> None:
    op.drop_table("operator_signin_failures")
    op.drop_table("operators")
