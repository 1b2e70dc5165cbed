"""Operators: made by `chorus admin add-operator`, each with a password and a TOTP secret."""

from __future__ import annotations

import hmac
import secrets
import time
import uuid
from dataclasses import dataclass

import msgspec
import pyotp
from sqlalchemy.dialects.postgresql import insert

from auth.passwords import HASHER
from db.engines import make_engine
from db.tables import operators
from schemas.fields import Email

#: The name an authenticator app shows next to the codes.
TOTP_ISSUER = "Chorus admin"
#: Codes of the step before and after the current one are taken too (clocks drift).
TOTP_DRIFT_STEPS = 1


class OperatorError(Exception):
    """An operator cannot be added (a malformed e-mail, or one that is taken)."""


@dataclass(frozen=True)
class NewOperator:
    """What `add-operator` shows once: nothing here but the id is stored in the clear."""

    operator_id: str
    email: str
    password: str
    provisioning_uri: str


def add_operator(database_url: str, email: str) -> NewOperator:
    """Store a new operator with a random password and TOTP secret; OperatorError if taken."""
    try:
        email = msgspec.convert(email, Email).lower()
    except msgspec.ValidationError as exc:
        raise OperatorError(f"not an e-mail address: {email!r}") from exc
    password = secrets.token_urlsafe(18)
    totp_secret = pyotp.random_base32()
    operator_id = str(uuid.uuid4())
    row = {
        "operator_id": operator_id,
        "email": email,
        "password_hash": HASHER.hash(password),
        "totp_secret": totp_secret,
        "password_one_time": True,  # the first sign-in replaces it (admin/sessions.py)
    }
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            inserted = conn.execute(
                insert(operators)
                .values(row)
                .on_conflict_do_nothing()
                .returning(operators.c.operator_id)
            ).first()
    finally:
        engine.dispose()
    if inserted is None:
        raise OperatorError(f"an operator with the e-mail {email} already exists")
    uri = pyotp.TOTP(totp_secret).provisioning_uri(name=email, issuer_name=TOTP_ISSUER)
    return NewOperator(operator_id, email, password, uri)


def totp_step(totp_secret: str, code: str, now: float | None = None) -> int | None:
    """The time step whose code `code` is (within the allowed drift), or None."""
    totp = pyotp.TOTP(totp_secret)
    current = int((time.time() if now is None else now) // totp.interval)
    for step in range(current - TOTP_DRIFT_STEPS, current + TOTP_DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None
