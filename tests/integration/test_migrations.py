"""Schema migrations against the real PostgreSQL of the test session."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from db import tables
from db.engines import current_revision, make_engine, migrate


def test_migrate_creates_the_schema_and_a_second_run_keeps_data(fresh_database_url: str) -> None:
    assert current_revision(fresh_database_url) is None
    migrate(fresh_database_url)
    head = current_revision(fresh_database_url)
    assert head is not None

    user_id = str(uuid.uuid4())
    engine = make_engine(fresh_database_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.insert(tables.users).values(
                    user_id=user_id, email="ada@example.com", display_name="Ada", password_hash="x"
                )
            )
        migrate(fresh_database_url)
        with engine.connect() as conn:
            found = conn.execute(
                sa.select(tables.users.c.email).where(tables.users.c.user_id == user_id)
            ).scalar_one()
    finally:
        engine.dispose()
    assert found == "ada@example.com"
    assert current_revision(fresh_database_url) == head


def test_the_catalogue_is_what_the_migrations_make(fresh_database_url: str) -> None:
    migrate(fresh_database_url)
    engine = make_engine(fresh_database_url)
    try:
        with engine.connect() as conn:
            differences = _differences(conn)
            created = set(sa.inspect(conn).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()
    assert differences == []
    assert created == set(tables.metadata.tables)


def _differences(conn: sa.Connection) -> list[Any]:
    """What autogenerate would write to bring the database to the catalogue (nothing, we hope)."""
    context = MigrationContext.configure(
        conn, opts={"compare_type": True, "compare_server_default": True}
    )
    ignored = {"alembic_version"}
    return [
        diff
        for diff in compare_metadata(context, tables.metadata)
        if not (diff[0] == "remove_table" and diff[1].name in ignored)
    ]
