"""Text that PostgreSQL can store: what a record already on the log may hold is made storable.

The HTTP edge refuses NUL, control characters and lone surrogates (`schemas.fields`), but a
record written before that, or by another producer, may hold them. PostgreSQL's `jsonb` and
`text` refuse NUL (and UTF-8 cannot encode a lone surrogate), so whatever stores a record's
text (the read models, the command outcomes) stores it through `storable`, which puts U+FFFD
in place of each such character. The projection applies it, so the live projector, a rebuild
and `chorus replay` agree on what a team's read model holds.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

#: What is stored in place of a character PostgreSQL cannot hold.
REPLACEMENT = "\ufffd"

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(value: Any) -> Any:
    """`value` (JSON-like) with NUL and lone surrogates replaced; itself when it has none."""
    try:
        # One C call for the usual case: orjson writes NUL as \u0000, and refuses surrogates.
        if b"\\u0000" not in orjson.dumps(value):
            return value
    except TypeError:  # orjson.JSONEncodeError: a lone surrogate, or not JSON at all
        pass
    return _replaced(value)


def _replaced(value: Any) -> Any:
    if isinstance(value, str):
        return _UNSTORABLE.sub(REPLACEMENT, value)
    if isinstance(value, dict):
        return {_replaced(key): _replaced(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_replaced(item) for item in value]
    return value
