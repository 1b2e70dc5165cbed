"""The browser client on the real stack, in headless Chromium: two people of one team see each
other come online, talk over WebRTC, mute, end; a dropped live stream resumes without loss."""

from __future__ import annotations

import os
import statistics
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.e2e.browser import SILENCE, SOUND, chromium, tone_wav, wait_power
from tests.stack import ChorusStack, Client

pytestmark = pytest.mark.e2e
PASSWORD = "correct horse battery"
CALLS_MEASURED = 10


def _start_stack(stack: ChorusStack) -> tuple[str, str, str]:
    """The worker, the services and the web entry point; the commands, queries and web URLs."""
    stack.wait_worker_ready(stack.start("worker"))
    commands, queries, media = (stack.start(s) for s in ("commands", "queries", "media"))
    stack.wait_worker_ready(media)  # caught up with the log: it takes rooms
    ports = {
        name: str(urlsplit(url).port)
        for name, url in (("COMMANDS", commands), ("QUERIES", queries), ("MEDIA", media))
    }
    web = stack.start("web", env={f"CHORUS_{name}_PORT": port for name, port in ports.items()})
    return commands, queries, web


def _sign_in(page: Page, web: str, email: str, hash_: str = "") -> None:
    page.goto(f"{web}/{hash_}")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("#sign-in")
    expect(page.locator("#whoami")).to_have_text(email)


def _row(page: Page, user_id: str | None) -> Locator:
    return page.locator(f'#roster li[data-user="{user_id}"]')


def _participant(page: Page, user_id: str | None) -> Locator:
    return page.locator(f'#participants li[data-user="{user_id}"]')


def test_two_people_talk_in_the_browser(stack: ChorusStack, tmp_path: Path) -> None:
    commands, queries, web = _start_stack(stack)
    api = stack.client(queries)
    ann, bob = Client(commands).sign_up("Ann"), Client(commands).sign_up("Bob")
    for person in (ann, bob):
        person.http.close()
    expect.set_options(timeout=15_000)

    with chromium(tone_wav(tmp_path / "tone.wav")) as browser:
        pages = []
        for _ in range(2):
            context = browser.new_context(permissions=["microphone"])
            pages.append(context.new_page())
        a, b = pages

        # A wrong password says so; the right one signs in; the owner makes a team, adds Bob.
        a.goto(f"{web}/")
        a.fill("#email", ann.email)
        a.fill("#password", "not the password")
        a.click("#sign-in")
        expect(a.locator("#message")).to_have_text("Wrong e-mail or password.")
        _sign_in(a, web, ann.email)
        a.fill("#team-name", "Platform")
        a.click("#create-team button")
        expect(a.locator("#team")).to_be_visible()
        team_id = a.evaluate("window.chorus.state.teamId")
        a.fill("#member-email", bob.email)
        a.click("#add-member button")
        expect(_row(a, bob.user_id)).to_have_attribute("data-status", "offline")

        # Bob opens the team link; both see each other come online, live.
        _sign_in(b, web, bob.email, f"#team={team_id}")
        expect(_row(a, bob.user_id)).to_have_attribute("data-status", "available")
        expect(_row(b, ann.user_id)).to_have_attribute("data-status", "available")
        expect(b.locator("#connection")).to_have_text("Live")

        # A reload keeps Bob signed in (the tokens are kept), on the same team.
        b.reload()
        expect(_row(b, ann.user_id)).to_have_attribute("data-status", "available")

        _network_drop(a, b, ann.user_id)

        # One (double) click on Bob: exactly one call; Bob sees it ring and joins with one click.
        a.locator(f'#roster li[data-user="{bob.user_id}"] button').dblclick()
        expect(a.locator("#call")).to_be_visible()
        b.click("#incoming .ring button")
        expect(b.locator("#call")).to_be_visible()
        api.token = ann.token
        active = api.get(f"/v1/teams/{team_id}/calls?state=active").json()["calls"]
        assert len(active) == 1, active

        # Each hears the other's tone; both are speaking; the panel shows the connection time.
        for page in (a, b):
            expect(page.locator("#call-status")).to_contain_text("Connected: audio in")
            assert wait_power(page, lambda p: p > SOUND) > SOUND
        for page in (a, b):
            for person in (ann, bob):
                expect(_participant(page, person.user_id)).to_have_attribute(
                    "data-speaking", "true"
                )
        if os.environ.get("CHORUS_SCREENSHOT"):
            a.screenshot(path=os.environ["CHORUS_SCREENSHOT"], full_page=True)

        # Bob mutes: Ann hears silence, and the mixer stops hearing Bob.
        b.click("#mute")
        assert wait_power(a, lambda p: p < SILENCE) < SILENCE
        expect(_participant(a, bob.user_id)).to_have_attribute("data-speaking", "false")
        expect(_participant(a, bob.user_id)).to_contain_text("muted")
        expect(_participant(b, ann.user_id)).to_have_attribute("data-speaking", "true")
        assert wait_power(b, lambda p: p > SOUND) > SOUND

        # Ann ends it; Bob sees it end.
        a.click("#end")
        expect(b.locator("#call")).to_be_hidden()
        expect(b.locator("#message")).to_have_text("The call has ended.")
        expect(a.locator("#call")).to_be_hidden()

        times = [_one_call(a, b, bob.user_id) for _ in range(CALLS_MEASURED)]
    p50 = statistics.median(times)
    p95 = statistics.quantiles(times, n=20)[-1]
    # A measurement, reported (goal: p50 under 300 ms), not a pass/fail bound: each call above
    # already failed the test unless audio arrived.
    print(f"click-to-audio over {len(times)} calls: p50 {p50:.0f} ms, p95 {p95:.0f} ms")


def _network_drop(a: Page, b: Page, ann_id: str | None) -> None:
    """Bob's live stream is cut; Ann changes status meanwhile; Bob resumes and sees it once."""
    resumed_from: list[str | None] = []
    b.on(
        "request",
        lambda r: (
            resumed_from.append(r.headers.get("last-event-id")) if r.url.endswith("/live") else None
        ),
    )
    b.route("**/live", lambda route: route.abort("internetdisconnected"))
    b.evaluate("window.chorus.dropLive()")
    expect(b.locator("#connection")).to_contain_text("reconnecting")
    a.select_option("#status", "busy")
    expect(_row(a, ann_id)).to_have_attribute("data-status", "busy")
    expect(_row(b, ann_id)).to_have_attribute("data-status", "available")  # not yet: cut off
    b.unroute("**/live")
    expect(b.locator("#connection")).to_have_text("Live")
    expect(_row(b, ann_id)).to_have_attribute("data-status", "busy")
    applied = b.evaluate("window.chorus.state.applied")
    assert len(applied) == len(set(applied)), applied  # no change applied twice
    assert sum(1 for i in applied if i.startswith("snapshot:")) == 1, applied  # resumed, no reset
    assert resumed_from and resumed_from[-1] is not None, resumed_from
    a.select_option("#status", "available")
    expect(_row(b, ann_id)).to_have_attribute("data-status", "available")


def _one_call(a: Page, b: Page, bob_id: str | None) -> float:
    """Ann clicks Bob, Bob joins, Ann hears him: the page's own click-to-audio time, in ms."""
    a.locator(f'#roster li[data-user="{bob_id}"] button').click()
    b.click("#incoming .ring button")
    expect(a.locator("#call-status")).to_contain_text("Connected: audio in")
    elapsed = float(a.evaluate("window.chorus.call.connectedMs"))
    a.click("#end")
    expect(b.locator("#call")).to_be_hidden()
    expect(a.locator("#call")).to_be_hidden()
    return elapsed
