"""Request bodies of the admin service: strict, as the public API's (schemas/bodies.py)."""

from __future__ import annotations

from typing import Annotated

import msgspec

from schemas.fields import Email, OfferedPassword

TotpCode = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{6}$", description="A current TOTP code.")]


class OperatorCredentials(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`POST /v1/admin/sessions`."""

    email: Email
    password: OfferedPassword
    code: TotpCode
