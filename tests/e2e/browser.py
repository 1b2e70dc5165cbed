"""Debian's Chromium, headless, driven by Playwright, with a fake microphone playing a tone."""

from __future__ import annotations

import wave
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
SOUND = 1e-4  # mean received power of a tone, well above Opus's silence
SILENCE = 1e-6


def tone_wav(path: Path, hz: float = 440.0, seconds: float = 2.0, rate: int = 48000) -> Path:
    """A looping sine tone at -10 dBFS, 16-bit mono."""
    t = np.arange(int(seconds * rate)) / rate
    samples = (0.3 * np.sin(2 * np.pi * hz * t) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())
    return path


@contextmanager
def chromium(microphone: Path) -> Iterator[Browser]:
    """Headless Chromium whose microphone plays `microphone` (never a downloaded browser)."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            # Playwright mutes audio by default; received levels need it playing.
            ignore_default_args=["--mute-audio"],
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                # This machine's closed network refuses Chromium's background connections.
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={microphone}",
                "--autoplay-policy=no-user-gesture-required",
            ],
        )
        try:
            yield browser
        finally:
            browser.close()


def received(page: Page) -> dict[str, float]:
    """The page's received audio so far (inbound-rtp energy and seconds)."""
    stats: dict[str, float] = page.evaluate("window.chorus.call.link.received()")
    return stats


def received_power(page: Page, window_ms: int = 600) -> float:
    """Mean power of the audio the page received over the next `window_ms`."""
    first = received(page)
    page.wait_for_timeout(window_ms)  # a measuring window, not a wait for an event
    second = received(page)
    seconds = second["duration"] - first["duration"]
    assert seconds > 0, "no audio samples arrived in the window"
    return (second["energy"] - first["energy"]) / seconds


def wait_power(page: Page, ok: Any, timeout: float = 15.0) -> float:
    """Measure the received power until `ok(power)`; the last measurement."""
    deadline = page.evaluate("performance.now()") + timeout * 1000
    power = received_power(page)
    while not ok(power) and page.evaluate("performance.now()") < deadline:
        power = received_power(page)
    return power
