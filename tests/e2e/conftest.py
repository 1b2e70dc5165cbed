"""The e2e tests use the same real-process stack as the integration tests."""

from tests.integration.conftest import migrated_database_url, stack

__all__ = ["migrated_database_url", "stack"]
