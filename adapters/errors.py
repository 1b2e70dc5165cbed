"""Errors of the infrastructure layer (Kafka, PostgreSQL, the local stack)."""

from __future__ import annotations


class InfraError(RuntimeError):
    """A broker, database or tool that Chorus needs is missing, misconfigured or failed."""
