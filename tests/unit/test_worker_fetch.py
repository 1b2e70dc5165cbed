"""The worker's fetches: answered at the first record by default, or gathered for a while."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.settings import Settings
from streams.app import FETCH_GATHER_BYTES, FetchingConsumerThread, create_worker_app


@pytest.mark.parametrize(("wait", "min_bytes", "max_wait"), [("0", 1, 1500), ("10", None, 10)])
async def test_the_worker_consumer_fetches_as_its_setting_says(
    tmp_path: Path, wait: str, min_bytes: int | None, max_wait: int
) -> None:
    settings = Settings.from_env(
        {
            "CHORUS_DATA_DIR": str(tmp_path),
            "CHORUS_KAFKA": "127.0.0.1:9",  # never reached: nothing here connects
            "CHORUS_WORKER_FETCH_WAIT_MS": wait,
        }
    )
    app = create_worker_app(settings)
    thread = getattr(app.consumer, "_thread", None)  # Faust's ThreadDelegateConsumer's
    assert isinstance(thread, FetchingConsumerThread)
    consumer = thread._create_worker_consumer(app.transport)
    try:
        # The names aiokafka's fetcher is built from when the consumer starts: an upgrade that
        # renames them fails here, not silently.
        assert consumer._fetch_min_bytes == (min_bytes or FETCH_GATHER_BYTES)
        assert consumer._fetch_max_wait_ms == max_wait
    finally:
        await consumer.stop()
        thread.thread_loop.close()  # the consumer thread's own loop, made with it
