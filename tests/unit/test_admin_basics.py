"""The admin service's pieces that need no server: tokens' scope, TOTP codes, settings, CLI."""

from __future__ import annotations

from pathlib import Path

import jwt
import pyotp
import pytest
import uvicorn

from admin.operators import OperatorError, add_operator, totp_step
from auth.tokens import OPERATOR_SCOPE, InvalidToken, encode_token, new_identity, verify_token
from cli.main import build_parser
from config.settings import Settings

SECRET = "the-service-secret-of-at-least-32-bytes"
USER = "2f1b7c0e-4a4e-4b8a-9a57-0d3f3c1e2b11"


def test_a_user_token_carries_no_scope_and_when_it_was_signed() -> None:
    token = encode_token(SECRET, new_identity(USER, 60, now=1_900_000_000.1239))
    claims = jwt.decode(
        token, SECRET, algorithms=["HS256"], options={"verify_exp": False, "verify_iat": False}
    )
    assert set(claims) == {"sub", "exp", "iss", "iat"}
    assert claims["iat"] == 1_900_000_000.123  # to the millisecond, as revocations are
    identity = verify_token(SECRET, token)
    assert identity.scope is None and identity.issued_at == 1_900_000_000.123


def test_a_token_signed_before_tokens_had_iat_is_good_until_its_user_is_revoked() -> None:
    token = jwt.encode({"sub": USER, "exp": 2**40, "iss": "chorus"}, SECRET)
    assert verify_token(SECRET, token).issued_at == 0.0


@pytest.mark.parametrize("iat", ["yesterday", True, None])
def test_a_signed_token_with_a_malformed_iat_is_refused(iat: object) -> None:
    token = jwt.encode({"sub": USER, "exp": 2**40, "iss": "chorus", "iat": iat}, SECRET)
    with pytest.raises(InvalidToken):
        verify_token(SECRET, token)


def test_an_operator_token_carries_the_operator_scope() -> None:
    token = encode_token(SECRET, new_identity(USER, 60, scope=OPERATOR_SCOPE))
    identity = verify_token(SECRET, token)
    assert (identity.user_id, identity.scope) == (USER, "operator")


@pytest.mark.parametrize("scope", [7, "", ["operator"]])
def test_a_signed_token_with_a_malformed_scope_is_refused(scope: object) -> None:
    token = jwt.encode({"sub": USER, "exp": 2**40, "iss": "chorus", "scope": scope}, SECRET)
    with pytest.raises(InvalidToken, match="scope"):
        verify_token(SECRET, token)


def test_a_totp_code_is_taken_within_one_step_of_drift_and_names_its_step() -> None:
    secret = pyotp.random_base32()
    totp = pyotp.TOTP(secret)
    now = 1_900_000_000.0
    step = int(now // 30)
    for drift in (-1, 0, 1):
        assert totp_step(secret, totp.generate_otp(step + drift), now) == step + drift
    for drift in (-3, -2, 2, 3):
        assert totp_step(secret, totp.generate_otp(step + drift), now) is None
    wrong = f"{(int(totp.generate_otp(step)) + 1) % 1_000_000:06d}"
    assert totp_step(secret, wrong, now) is None


def test_the_admin_service_listens_on_loopback_and_8005_unless_told(tmp_path: Path) -> None:
    defaults = Settings.from_env({"CHORUS_DATA_DIR": str(tmp_path), "CHORUS_HOST": "0.0.0.0"})
    assert (defaults.admin_host, defaults.admin_port) == ("127.0.0.1", 8005)
    told = defaults.with_(admin_host="10.0.0.5", admin_port=9005)
    again = Settings.from_env(told.as_env())
    assert (again.admin_host, again.admin_port, again.host) == ("10.0.0.5", 9005, "0.0.0.0")


def test_chorus_admin_serves_and_add_operator_adds() -> None:
    parser = build_parser()
    serve = parser.parse_args(["admin", "--port", "9005"])
    add = parser.parse_args(["admin", "add-operator", "ops@example.com"])
    assert serve.port == 9005 and serve.admin_command is None
    assert add.admin_command == "add-operator" and add.email == "ops@example.com"
    assert add.handler is not serve.handler


@pytest.mark.parametrize(
    ("env", "argv", "listens"),
    [
        ({"CHORUS_HOST": "0.0.0.0"}, [], ("127.0.0.1", 8005)),
        ({"CHORUS_ADMIN_HOST": "10.0.0.5", "CHORUS_ADMIN_PORT": "9005"}, [], ("10.0.0.5", 9005)),
        ({}, ["--host", "::1", "--port", "9105"], ("::1", 9105)),
    ],
)
def test_chorus_admin_listens_on_loopback_unless_told(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    argv: list[str],
    listens: tuple[str, int],
) -> None:
    served: list[tuple[str, int]] = []

    def run(app: object, *, host: str, port: int, **options: object) -> None:
        served.append((host, port))

    monkeypatch.setattr(uvicorn, "run", run)
    settings = Settings.from_env({"CHORUS_DATA_DIR": str(tmp_path), "CHORUS_SECRET": "s", **env})
    args = build_parser().parse_args(["admin", *argv])

    assert args.handler(args, settings) == 0
    assert served == [listens]


def test_add_operator_refuses_what_is_not_an_e_mail() -> None:
    with pytest.raises(OperatorError, match="not an e-mail"):
        add_operator("postgresql+psycopg://nowhere/none", "not-an-email")
