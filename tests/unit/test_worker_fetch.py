"""The worker's fetches: answered at the first record, never parked long, or gathered."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.settings import Settings
from streams.app import FetchingConsumerThread, create_worker_app


@pytest.mark.parametrize(
    ("env", "max_wait", "min_bytes"),
    [
        ({}, 20, 1),  # not Faust's 1,500 ms
        (
            {"CHORUS_WORKER_FETCH_MAX_WAIT_MS": "10", "CHORUS_WORKER_FETCH_MIN_BYTES": "65536"},
            10,
            65536,
        ),
    ],
)
async def test_the_worker_consumer_fetches_as_its_settings_say(
    tmp_path: Path, env: dict[str, str], max_wait: int, min_bytes: int
) -> None:
    settings = Settings.from_env(
        {
            "CHORUS_DATA_DIR": str(tmp_path),
            "CHORUS_KAFKA": "127.0.0.1:9",  # never reached: nothing here connects
            **env,
        }
    )
    app = create_worker_app(settings)
    thread = getattr(app.consumer, "_thread", None)  # Faust's ThreadDelegateConsumer's
    assert isinstance(thread, FetchingConsumerThread)
    consumer = thread._create_worker_consumer(app.transport)
    try:
        # The names aiokafka's fetcher is built from when the consumer starts: an upgrade that
        # renames them fails here, not silently.
        assert consumer._fetch_max_wait_ms == max_wait
        assert consumer._fetch_min_bytes == min_bytes
    finally:
        await consumer.stop()
        thread.thread_loop.close()  # the consumer thread's own loop, made with it
