"""Path parameters: ids that must be UUIDs."""

from __future__ import annotations

import re
import uuid

from starlette.requests import Request

from web.errors import Problem

# The form str(uuid.UUID(...)) writes, which most clients send back as it is.
_CANONICAL = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def path_uuid(request: Request, name: str) -> str:
    """A path parameter that must be a UUID; anything else names no resource (404)."""
    raw = str(request.path_params[name])
    if _CANONICAL.fullmatch(raw) is not None:
        return raw
    try:
        return str(uuid.UUID(raw))
    except ValueError as exc:
        raise Problem(404, "not_found", f"no such {name.removesuffix('_id')}") from exc
