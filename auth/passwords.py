"""Password hashes (argon2id), for users' accounts and operators alike."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# argon2-cffi's PasswordHasher hashes with argon2id by default.
HASHER = PasswordHasher()
# A hash to verify against when the e-mail is unknown, so both cases take the same time.
DUMMY_HASH = HASHER.hash("not a real password")


def password_matches(stored_hash: str, password: str) -> bool:
    """Whether `password` is the one `stored_hash` was made from (False for a broken hash)."""
    try:
        return HASHER.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False
