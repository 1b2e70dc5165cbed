"""Path parameters: ids that must be UUIDs."""

from __future__ import annotations

import uuid

from starlette.requests import Request

from web.errors import Problem


def path_uuid(request: Request, name: str) -> str:
    """A path parameter that must be a UUID; anything else names no resource (404)."""
    try:
        return str(uuid.UUID(str(request.path_params[name])))
    except ValueError as exc:
        raise Problem(404, "not_found", f"no such {name.removesuffix('_id')}") from exc
