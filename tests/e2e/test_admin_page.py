"""The admin page on the real stack, in Debian's Chromium: an operator signs in with a TOTP code,
finds a user, disables them with a reason, sees the audit entry and the metrics plots."""

from __future__ import annotations

import os
import re
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pyotp
import pytest
from playwright.sync_api import Page, expect

from admin.operators import add_operator
from tests.e2e.browser import chromium, tone_wav
from tests.stack import ChorusStack

pytestmark = pytest.mark.e2e
PLOTS = 18  # nine panels, each over the last hour and the last day


def _start_stack(stack: ChorusStack) -> tuple[str, str]:
    """The worker, commands and media services, and the admin service sampling them: the
    commands and admin URLs."""
    worker = stack.start("worker")
    stack.wait_worker_ready(worker)
    commands, media = stack.start("commands"), stack.start("media")
    stack.wait_worker_ready(media)
    ports = {
        f"CHORUS_{name}_PORT": str(urlsplit(url).port)
        for name, url in (("WORKER", worker), ("COMMANDS", commands), ("MEDIA", media))
    }
    return commands, stack.start("admin", env=ports)


def _samples(page: Page) -> int:
    """How many samples the metrics page says it keeps."""
    found = re.search(r"\((\d+) samples kept\)", page.content())
    assert found, "the metrics page does not say how many samples it keeps"
    return int(found.group(1))


def _sign_in(page: Page, admin: str, email: str, password: str, totp: pyotp.TOTP) -> None:
    page.goto(f"{admin}/admin")
    expect(page).to_have_url(f"{admin}/admin/sign-in")
    page.fill("#email", email)
    page.fill("#password", password)
    page.fill("#new_password", "an operator's own passphrase")  # the printed one works once
    page.fill("#code", totp.now())
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{admin}/admin/accounts")


def test_an_operator_disables_a_user_and_sees_the_audit_entry_and_metrics(
    stack: ChorusStack, tmp_path: Path
) -> None:
    commands, admin = _start_stack(stack)
    alice = stack.client(commands).sign_up("alice")
    bob = stack.client(commands).sign_up("bob")
    team_id = alice.new_team(bob)
    call = alice.post(f"/v1/teams/{team_id}/calls", {"invitees": [bob.user_id]}, Prefer="wait=10")
    assert call.status_code == 200, call.text
    made = add_operator(stack.database_url, f"ops-{uuid.uuid4().hex[:8]}@example.com")
    totp = pyotp.parse_uri(made.provisioning_uri)
    assert isinstance(totp, pyotp.TOTP)
    expect.set_options(timeout=20_000)

    with chromium(tone_wav(tmp_path / "tone.wav")) as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        _sign_in(page, admin, made.email, made.password, totp)
        session = next(c for c in page.context.cookies() if c["name"] == "chorus_admin_session")
        assert session["httpOnly"] and session["sameSite"] == "Strict"

        page.fill("#email", alice.email.upper())
        page.click("#find-form button[type=submit]")
        expect(page).to_have_url(f"{admin}/admin/accounts/{alice.user_id}")
        expect(page.locator("h1")).to_have_text(f"Account {alice.email}")
        expect(page.locator(f'a[href="/admin/teams/{team_id}"]')).to_be_visible()

        page.fill("#disable-reason", "chargeback, asked by the bank")
        page.click("#disable-form button[type=submit]")
        expect(page.locator(".notice")).to_have_text("Account disabled (audit record 1).")
        # Every service refuses the disabled user's token within seconds.
        deadline = time.monotonic() + 5.0
        while alice.post("/v1/teams", {"name": "After"}).status_code != 401:
            assert time.monotonic() < deadline, "the disabled user's token still works"
            time.sleep(0.1)

        page.click("text=Audit log")
        row = page.locator("#audit tr", has_text="account.disable")
        expect(row).to_have_count(1)
        expect(row).to_contain_text("chargeback, asked by the bank")
        expect(row).to_contain_text(alice.user_id)
        expect(row.locator(".ok")).to_have_text("ok")

        page.click("text=Metrics")
        expect(page.locator("svg.plot")).to_have_count(PLOTS)
        # The sampler takes one sample at start and one every 10 s: plots draw lines from two.
        deadline = time.monotonic() + 60.0
        while _samples(page) < 3:
            assert time.monotonic() < deadline, "the admin service takes no samples"
            time.sleep(1.0)
            page.reload()
        active = page.locator("#panel-calls_active tr", has_text="active calls now")
        expect(active.locator("td").nth(1)).to_have_text("1")
        expect(page.locator("#panel-calls_active svg.plot polyline").first).to_be_visible()
        page.screenshot(path=str(tmp_path / "admin-metrics.png"), full_page=True)
        if os.environ.get("CHORUS_SCREENSHOT"):
            page.screenshot(path=os.environ["CHORUS_SCREENSHOT"], full_page=True)
