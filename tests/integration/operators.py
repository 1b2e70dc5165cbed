"""Operators for tests of the admin service on a real stack."""

from __future__ import annotations

import re
import subprocess
import uuid
from pathlib import Path

import httpx
import pyotp

from admin.operators import add_operator as add_operator_row
from config.settings import Settings
from devstack.processes import chorus_argv
from schemas.topics import Topics
from tests.stack import ChorusStack


def add_operator(stack: ChorusStack) -> tuple[str, str, pyotp.TOTP]:
    """`chorus admin add-operator`, as an operator would run it: its e-mail, password and TOTP."""
    email = f"ops-{uuid.uuid4().hex[:8]}@example.com"
    made = subprocess.run(
        chorus_argv("admin", "add-operator", email),
        env=stack.env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    password = re.search(r"password:\s+(\S+)", made.stdout)
    uri = re.search(r"TOTP URI:\s+(otpauth://\S+)", made.stdout)
    assert password and uri, made.stdout
    totp = pyotp.parse_uri(uri.group(1))
    assert isinstance(totp, pyotp.TOTP)
    again = subprocess.run(
        chorus_argv("admin", "add-operator", email.upper()),
        env=stack.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert again.returncode == 2 and "already exists" in again.stderr
    return email, password.group(1), totp


#: What the tests' operators choose at their first sign-in (the printed password works once).
OWN_PASSWORD = "an operator's own passphrase"


def first_sign_in(email: str, printed: str, totp: pyotp.TOTP) -> dict[str, str]:
    """The body of an operator's first sign-in: the printed password and a new one."""
    return {"email": email, "password": printed, "code": totp.now(), "new_password": OWN_PASSWORD}


def operator_client(stack: ChorusStack, admin_url: str) -> httpx.Client:
    email, password, totp = add_operator(stack)
    http = httpx.Client(base_url=admin_url, timeout=30)
    session = http.post("/v1/admin/sessions", json=first_sign_in(email, password, totp))
    assert session.status_code == 201, session.text
    http.headers["Authorization"] = f"Bearer {session.json()['token']}"
    return http


def signed_in_operator(database_url: str, admin_url: str) -> tuple[httpx.Client, str]:
    """A new operator (added in-process, as `add-operator` does) signed in with a TOTP code:
    a client carrying their token, and their id."""
    made = add_operator_row(database_url, f"ops-{uuid.uuid4().hex[:8]}@example.com")
    totp = pyotp.parse_uri(made.provisioning_uri)
    assert isinstance(totp, pyotp.TOTP)
    http = httpx.Client(base_url=admin_url, timeout=30)
    session = http.post("/v1/admin/sessions", json=first_sign_in(made.email, made.password, totp))
    assert session.status_code == 201, session.text
    http.headers["Authorization"] = f"Bearer {session.json()['token']}"
    return http, made.operator_id


def in_process_admin(
    database_url: str, kafka: str, topics: Topics, data_dir: Path, secret: str, **ports: int
) -> Settings:
    """Settings of an admin app run in the test's process (`tests.asgi.started`)."""
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        kafka_bootstrap=kafka,
        topics=topics,
        secret=secret,
        **ports,
    )
