"""Scale inside a node: `chorus media --workers N` runs N media processes and supervises them.

One aiortc process uses about one core, so a node runs one worker process per core by default.
Each worker is a media node of its own in the directory (`<node-id>-<k>`, the same region), on
port base + k (skipping ports that another Chorus service of these settings uses, so that with
the default ports worker 1 does not take the stream worker's 8003). Placement thus puts each
room wholly on one worker and spreads rooms across them, with no state shared between the
processes. The parent only supervises: it starts the workers, starts again one that died, and
stops them all together (SIGTERM: each drains; SIGKILL of the parent: the kernel kills the
workers too).
"""

from __future__ import annotations

import ctypes
import itertools
import logging
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import FrameType

from config.settings import Settings, SettingsError

log = logging.getLogger(__name__)

RESTART_DELAY = 1.0  # seconds before a dead worker is started again (no restart storm)
STOP_TIMEOUT = 15.0  # seconds a worker gets to drain before it is killed
PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class WorkerSpec:
    """One worker process: its node id, port and command line."""

    node_id: str
    port: int
    argv: list[str]


def worker_plan(settings: Settings, workers: int, options: Sequence[str] = ()) -> list[WorkerSpec]:
    """The workers of a node with these settings (its id, region, base port); `options` are
    passed on to every worker (e.g. the log level)."""
    if workers < 1:
        raise SettingsError(f"media workers must be at least 1, not {workers}")
    if settings.media_public_url and workers > 1:
        raise SettingsError(
            "CHORUS_MEDIA_PUBLIC_URL names one address: run one worker per public address "
            "(--workers 1)"
        )
    node_id = settings.media_node()
    others = {
        settings.commands_port,
        settings.queries_port,
        settings.worker_port,
        settings.web_port,
        settings.admin_port,
    }
    free = (port for port in itertools.count(settings.media_port) if port not in others)
    plan = []
    for k, port in zip(range(workers), free, strict=False):
        argv = [
            *(sys.executable, "-m", "cli.main", "media", "--workers", "1"),
            *("--node-id", f"{node_id}-{k}", "--region", settings.media_region),
            *("--host", settings.host, "--port", str(port), *options),
        ]
        plan.append(WorkerSpec(f"{node_id}-{k}", port, argv))
    return plan


def _die_with_parent() -> None:
    """In the worker, before exec: SIGKILL it when the parent dies (Linux), so that killing the
    node's parent alone leaves no worker serving rooms the directory no longer vouches for."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class Supervisor:
    """Runs one process per spec; a process that exits is started again until `stop`."""

    def __init__(self, specs: Sequence[WorkerSpec], env: Mapping[str, str]) -> None:
        self.specs = list(specs)
        self._env = dict(env)
        self.processes: list[subprocess.Popen[bytes] | None] = [None] * len(self.specs)
        self.restarts = 0
        self._stopping = threading.Event()

    def _launch(self, index: int) -> None:
        self.processes[index] = subprocess.Popen(
            self.specs[index].argv, env=self._env, preexec_fn=_die_with_parent
        )

    def start(self) -> None:
        for index in range(len(self.specs)):
            self._launch(index)

    def request_stop(self) -> None:
        """Make `watch` return (safe from a signal handler)."""
        self._stopping.set()

    def watch(self, poll: float = 0.2) -> None:
        """Until `stop`: start again every worker that exited."""
        died: dict[int, float] = {}
        while not self._stopping.wait(poll):
            for index, process in enumerate(self.processes):
                if process is None or process.poll() is None:
                    continue
                first_seen = died.setdefault(index, time.monotonic())
                if time.monotonic() - first_seen >= RESTART_DELAY and not self._stopping.is_set():
                    log.warning(
                        "media worker %s exited (%s): starting it again",
                        self.specs[index].node_id,
                        process.returncode,
                    )
                    del died[index]
                    self.restarts += 1
                    self._launch(index)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM every worker (each drains its rooms), SIGKILL what is left after `timeout`."""
        self.request_stop()
        live = [p for p in self.processes if p is not None and p.poll() is None]
        for process in live:
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in live:
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def run_workers(settings: Settings, workers: int, options: Sequence[str] = ()) -> int:
    """`chorus media --workers N` with N > 1: supervise the workers until SIGTERM or SIGINT."""
    supervisor = Supervisor(worker_plan(settings, workers, options), settings.child_environment())

    def on_signal(signum: int, frame: FrameType | None) -> None:
        supervisor.request_stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    supervisor.start()
    for spec in supervisor.specs:
        print(f"media worker {spec.node_id}: http://{settings.host}:{spec.port}", flush=True)
    supervisor.watch()
    supervisor.stop()
    return 0
