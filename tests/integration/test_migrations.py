"""Schema migrations against the real PostgreSQL of the test session."""

from __future__ import annotations

import uuid

from sqlalchemy import text

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
                text(
                    "INSERT INTO users (user_id, email, display_name, password_hash)"
                    " VALUES (:id, 'ada@example.com', 'Ada', 'x')"
                ),
                {"id": user_id},
            )
        migrate(fresh_database_url)
        with engine.connect() as conn:
            found = conn.execute(
                text("SELECT email FROM users WHERE user_id = :id"), {"id": user_id}
            ).scalar_one()
    finally:
        engine.dispose()
    assert found == "ada@example.com"
    assert current_revision(fresh_database_url) == head
