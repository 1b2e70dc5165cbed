"""The database: one catalogue of tables, the Alembic migrations that make them, and engines."""
