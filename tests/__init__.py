"""The tests: `unit` (pure), `integration` (real Kafka and PostgreSQL), `e2e` (whole stack)."""
