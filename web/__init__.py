"""Starlette glue every HTTP service shares: errors, bodies, callers, health, metrics, OpenAPI."""
