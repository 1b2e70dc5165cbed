"""Password resets: an operator starts one (admin/account_edits.py), the user ends it with the
one-time token (commands/password_resets.py)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

#: How long a reset token works.
RESET_TTL = timedelta(hours=24)
#: Not an argon2 hash: no password matches it (auth/passwords.py), so the old one stops at once.
RESET_PENDING_HASH = "!password-reset"


def new_reset_token() -> str:
    """A one-time token of 256 random bits (shown once, never stored)."""
    return secrets.token_urlsafe(32)


def reset_token_hash(token: str) -> str:
    """What is stored of a reset token: its SHA-256 (a token is too random to need a slow hash)."""
    return hashlib.sha256(token.encode()).hexdigest()
