"""Request bodies of the admin service: strict, as the public API's (schemas/bodies.py); every
support edit requires a reason."""

from __future__ import annotations

from typing import Annotated

import msgspec

from schemas.audit import Reason
from schemas.fields import DisplayName, Email, Id, OfferedPassword, Password

TotpCode = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{6}$", description="A current TOTP code.")]


class OperatorCredentials(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`POST /v1/admin/sessions`."""

    email: Email
    password: OfferedPassword
    code: TotpCode
    # Required at the first sign-in (the printed password works once); a new password then.
    new_password: Password | None = None


class Reasoned(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A support edit that takes nothing but the operator's reason."""

    reason: Reason


class AccountChanges(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`PATCH /v1/admin/accounts/{user_id}`: a new display name, e-mail, or both."""

    reason: Reason
    display_name: DisplayName | None = None
    email: Email | None = None


class NewOwner(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`POST /v1/admin/teams/{team_id}/owner`: the member who owns the team from now on."""

    user_id: Id
    reason: Reason
