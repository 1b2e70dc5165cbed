"""The catalogue: every table the migrations make, as they make it, and who writes it.

Every service, the worker, replay and the tests address tables only through this module;
`tests/integration/test_migrations.py` checks it against the migrations (Alembic's
`compare_metadata`), so the two cannot drift apart. A table has one writer, named above it.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

metadata = sa.MetaData()

UUID = postgresql.UUID(as_uuid=False)
JSONB = postgresql.JSONB
NOW = sa.text("now()")


def _created_at(name: str = "created_at") -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False, server_default=NOW)


# Accounts and teams (revision 0001).

# Written by the commands service's sign-up (commands/accounts.py) and password reset
# (commands/password_resets.py), and by the admin service's support edits (admin/edits.py),
# which also set `disabled_at` and `erased_at` (revision 0007).
users = sa.Table(
    "users",
    metadata,
    sa.Column("user_id", UUID, primary_key=True),
    sa.Column("email", sa.Text, nullable=False, unique=True),
    sa.Column("display_name", sa.Text, nullable=False),
    sa.Column("password_hash", sa.Text, nullable=False),
    _created_at(),
    sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True),
)

# Written by the commands service's team endpoints (commands/teams.py).
teams = sa.Table(
    "teams",
    metadata,
    sa.Column("team_id", UUID, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("owner_id", UUID, sa.ForeignKey("users.user_id"), nullable=False),
    _created_at(),
)

# Written by the commands service's team endpoints (commands/teams.py).
memberships = sa.Table(
    "memberships",
    metadata,
    sa.Column("team_id", UUID, sa.ForeignKey("teams.team_id"), primary_key=True),
    sa.Column("user_id", UUID, sa.ForeignKey("users.user_id"), primary_key=True),
    sa.Column("role", sa.Text, nullable=False),
    _created_at("joined_at"),
    sa.Index("memberships_by_user", "user_id"),
)

# Written by the commands service's idempotency keeper (commands/idempotency.py).
idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("user_id", UUID, primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("request_hash", sa.Text, nullable=False),
    sa.Column("command_id", UUID, nullable=False),
    sa.Column("response", JSONB, nullable=True),
    _created_at(),
    # Keys past their lifetime are pruned (commands/retention.py).
    sa.Index("idempotency_keys_by_age", "created_at", postgresql_using="brin"),
)

# Written by the commands service when it accepts a call (commands/client_commands.py).
call_directory = sa.Table(
    "call_directory",
    metadata,
    sa.Column("call_id", UUID, primary_key=True),
    sa.Column("team_id", UUID, sa.ForeignKey("teams.team_id"), nullable=False),
    _created_at(),
)

# Written by the commands service's sign-in throttle (commands/accounts.py); per e-mail and
# source address since revision 0004. `failures` counts attempts, taken before the check.
signin_failures = sa.Table(
    "signin_failures",
    metadata,
    sa.Column("email", sa.Text, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("email", "source", name="signin_failures_pkey"),
)

# Operators of the admin service (revision 0005).

# Written by `chorus admin add-operator` (admin/operators.py), and by the admin service's sign-in
# (admin/sessions.py), which only moves `last_totp_step` on.
operators = sa.Table(
    "operators",
    metadata,
    sa.Column("operator_id", UUID, primary_key=True),
    sa.Column("email", sa.Text, nullable=False, unique=True),
    sa.Column("password_hash", sa.Text, nullable=False),
    sa.Column("totp_secret", sa.Text, nullable=False),
    # The time step of the last TOTP code accepted: a code is good for one sign-in only.
    sa.Column("last_totp_step", sa.BigInteger, nullable=True),
    # The printed password of a new operator works once: that sign-in must set a new one.
    sa.Column("password_one_time", sa.Boolean, nullable=False, server_default=sa.false()),
    _created_at(),
)

# Written by the admin service's sign-in throttle (admin/sessions.py), as signin_failures.
operator_signin_failures = sa.Table(
    "operator_signin_failures",
    metadata,
    sa.Column("email", sa.Text, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("email", "source", name="operator_signin_failures_pkey"),
)

# Support edits (revision 0007).

# Written by the admin service's password reset (admin/edits.py); a row is used (deleted) by the
# commands service's public reset route (commands/password_resets.py).
password_resets = sa.Table(
    "password_resets",
    metadata,
    # SHA-256 of the one-time token: the token itself is shown once and never stored.
    sa.Column("token_hash", sa.Text, primary_key=True),
    sa.Column("user_id", UUID, sa.ForeignKey("users.user_id"), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    _created_at(),
    sa.Index("password_resets_by_user", "user_id"),
)

# The audit topic's outbox, written by the admin service (admin/audit.py): a record is inserted
# in the transaction of its edit and never changed; `published_at` is set once it is on the topic.
audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("record", JSONB, nullable=False),
    sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
    sa.Index("audit_log_unpublished", "seq", postgresql_where=sa.text("published_at IS NULL")),
)

# Command outcomes (revision 0002).

# Written by the worker's outcome recorder (streams/outcomes.py); the commands service only
# inserts a placeholder 'pending' row, which the recorder's decision replaces (commands/pending.py).
command_outcomes = sa.Table(
    "command_outcomes",
    metadata,
    sa.Column("command_id", UUID, primary_key=True),
    sa.Column("team_id", UUID, nullable=False),
    # A user id, or a principal such as "system:presence-timer" for timer commands.
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("position", sa.Text, nullable=False),
    # Where the command was appended (c<partition>.<offset>), for `?after=` on reads.
    sa.Column("command_position", sa.Text, nullable=True),
    sa.Column("events", JSONB, nullable=False),
    _created_at("decided_at"),
    sa.Index("command_outcomes_by_position", "command_position"),
    # Outcomes past their lifetime are pruned (commands/retention.py).
    sa.Index("command_outcomes_by_age", "decided_at", postgresql_using="brin"),
)

# Read models (revision 0003). All four are written by the worker's projector through the
# read-model store (streams/readmodels/store.py); `chorus rebuild` (streams/readmodels/rebuild.py)
# fills shadow copies of them and swaps those in. Constraint and index names are PostgreSQL's
# defaults, which the rebuild's shadow copies follow.

# Each team's position: the seq of its last applied event (the guard against applying twice).
rm_positions = sa.Table(
    "rm_positions",
    metadata,
    sa.Column("team_id", UUID, nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.PrimaryKeyConstraint("team_id", name="rm_positions_pkey"),
)

# `body` is exactly the contract JSON of a member.
rm_members = sa.Table(
    "rm_members",
    metadata,
    sa.Column("team_id", UUID, nullable=False),
    sa.Column("user_id", UUID, nullable=False),
    sa.Column("body", JSONB, nullable=False),
    sa.PrimaryKeyConstraint("team_id", "user_id", name="rm_members_pkey"),
)

# `body` is exactly the contract JSON of a call.
rm_calls = sa.Table(
    "rm_calls",
    metadata,
    sa.Column("call_id", UUID, nullable=False),
    sa.Column("team_id", UUID, nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    # The contract's fixed-width time string: it sorts as the instants do.
    sa.Column("started_at", sa.Text, nullable=False),
    sa.Column("body", JSONB, nullable=False),
    sa.PrimaryKeyConstraint("call_id", name="rm_calls_pkey"),
    sa.Index("rm_calls_team_id_state_idx", "team_id", "state"),
)

# Each team's recent changes, for live queries to resume from.
rm_changes = sa.Table(
    "rm_changes",
    metadata,
    sa.Column("team_id", UUID, nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("data", JSONB, nullable=False),
    sa.PrimaryKeyConstraint("team_id", "seq", name="rm_changes_pkey"),
)

#: The read-model tables, in the order writers lock them (positions first).
READ_MODELS = (rm_positions, rm_members, rm_calls, rm_changes)

# Quarantine (revision 0006).

# Written by the worker's projector (streams/projector.py), in the transaction that moves the
# team's position past the event: one row per event record the read-model tables refused.
# `record` is the record exactly as read from the log; text is stored through schemas/text.py.
quarantine = sa.Table(
    "quarantine",
    metadata,
    sa.Column("team_id", UUID, nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("event_id", sa.Text, nullable=True),
    sa.Column("type", sa.Text, nullable=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("record", sa.LargeBinary, nullable=False),
    _created_at("quarantined_at"),
    sa.PrimaryKeyConstraint("team_id", "seq", name="quarantine_pkey"),
)
