"""Janus AudioBridge as the peer: a private Janus started for the run, and a small HTTP API client.

The launcher copies `/etc/janus` to a folder of its own, keeps only the AudioBridge plugin and
the plain HTTP transport (on 127.0.0.1, a free port), and runs `janus -F <folder>` with an RTP
port range. The client speaks the Janus HTTP API: one session per participant, attach the
AudioBridge, `join` with the participant's SDP offer as `jsep`, the answer from the long-poll.
"""

from __future__ import annotations

import re
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from devstack.processes import Child
from devstack.server import free_port

SYSTEM_CONFIG = Path("/etc/janus")
PLUGIN = "libjanus_audiobridge.so"
TRANSPORT = "libjanus_http.so"
LIBRARY = Path("/usr/lib/x86_64-linux-gnu/janus")


def _others(folder: Path, keep: str) -> str:
    names = sorted(p.name for p in folder.glob("*.so"))
    return ",".join(name for name in names if name != keep)


def write_config(folder: Path, port: int) -> None:
    """A private copy of /etc/janus: AudioBridge and HTTP on 127.0.0.1:`port` only."""
    shutil.copytree(SYSTEM_CONFIG, folder, dirs_exist_ok=True)
    main = folder / "janus.jcfg"
    text = main.read_text()
    text = re.sub(r'configs_folder = "[^"]*"', f'configs_folder = "{folder}"', text)
    blocks = {
        "plugins": _others(LIBRARY / "plugins", PLUGIN),
        "transports": _others(LIBRARY / "transports", TRANSPORT),
        "loggers": _others(LIBRARY / "loggers", ""),
        "events": _others(LIBRARY / "events", ""),
    }
    for block, disabled in blocks.items():
        text = re.sub(rf"^{block}: \{{", f'{block}: {{\n\tdisable = "{disabled}"', text, flags=re.M)
    main.write_text(text)
    http = folder / "janus.transport.http.jcfg"
    text = http.read_text()
    text = re.sub(r"^(\s*)port = \d+", rf"\g<1>port = {port}", text, count=1, flags=re.M)
    text = re.sub(r'^(\s*)#ip = "[^"]*"', r'\g<1>ip = "127.0.0.1"', text, count=1, flags=re.M)
    http.write_text(text)
    # No demo room: the benchmark creates its own.
    (folder / "janus.plugin.audiobridge.jcfg").write_text("general: {\n}\n")


class JanusServer:
    """A Janus process of the run's own; `start` returns its HTTP API URL once it answers."""

    def __init__(self, workdir: Path, rtp_ports: tuple[int, int] = (40000, 44999)) -> None:
        self.folder = workdir / "janus"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/janus"
        low, high = rtp_ports
        self.child = Child(
            name="janus",
            # -s 0: no session timeout (the benchmark's sessions sit idle while they measure).
            argv=["janus", "-F", str(self.folder), "-r", f"{low}-{high}", "-s", "0", "-d", "3"],
            env={},
            log_path=workdir / "janus.log",
            health_url=f"{self.url}/info",
        )

    @property
    def pid(self) -> int:
        assert self.child.process is not None
        return self.child.process.pid

    def start(self, timeout: float = 30.0) -> str:
        if shutil.which("janus") is None:
            raise RuntimeError("janus is missing: apt-get install janus (make setup does)")
        write_config(self.folder, self.port)
        self.child.start()
        deadline = time.monotonic() + timeout
        while not self.child.healthy():
            if self.child.exit_code() is not None or time.monotonic() > deadline:
                self.child.stop()
                raise RuntimeError(f"janus did not start:\n{self.child.log_tail(40)}")
            time.sleep(0.1)
        return self.url

    def stop(self) -> None:
        self.child.stop(timeout=10)


def _transaction() -> str:
    return uuid.uuid4().hex[:12]


class JanusError(RuntimeError):
    """Janus answered a request with an error."""


class AudioBridgeHandle:
    """One Janus session with the AudioBridge attached: one participant, or the room admin."""

    def __init__(self, http: httpx.AsyncClient, url: str) -> None:
        self._http = http
        self._url = url
        self.session = 0
        self.handle = 0

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = await self._http.post(f"{self._url}{path}", json=body)
        answer.raise_for_status()
        data: dict[str, Any] = answer.json()
        if data.get("janus") == "error":
            raise JanusError(str(data.get("error")))
        return data

    async def attach(self) -> None:
        created = await self._post("", {"janus": "create", "transaction": _transaction()})
        self.session = int(created["data"]["id"])
        attached = await self._post(
            f"/{self.session}",
            {
                "janus": "attach",
                "plugin": "janus.plugin.audiobridge",
                "transaction": _transaction(),
            },
        )
        self.handle = int(attached["data"]["id"])

    async def request(self, body: dict[str, Any], jsep: dict[str, str] | None = None) -> str:
        """Send a plugin message; its transaction (the answer may come on the long-poll)."""
        transaction = _transaction()
        message: dict[str, Any] = {"janus": "message", "body": body, "transaction": transaction}
        if jsep is not None:
            message["jsep"] = jsep
        data = await self._post(f"/{self.session}/{self.handle}", message)
        result = data.get("plugindata", {}).get("data", {})
        if result.get("error"):
            raise JanusError(str(result["error"]))
        return transaction

    async def event_with_jsep(self, transaction: str, timeout: float = 15.0) -> dict[str, Any]:
        """Long-poll the session until the event of `transaction` that carries a jsep."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            answer = await self._http.get(f"{self._url}/{self.session}", params={"maxev": 5})
            answer.raise_for_status()
            events = answer.json()
            for event in events if isinstance(events, list) else [events]:
                plugin = event.get("plugindata", {}).get("data", {})
                if plugin.get("error"):
                    raise JanusError(str(plugin["error"]))
                if event.get("transaction") == transaction and "jsep" in event:
                    jsep: dict[str, Any] = event["jsep"]
                    return jsep
        raise JanusError(f"no answer from Janus in {timeout} s")

    async def destroy(self) -> None:
        await self._post(f"/{self.session}", {"janus": "destroy", "transaction": _transaction()})


async def create_room(http: httpx.AsyncClient, url: str, room: int) -> None:
    """An AudioBridge room mixing at 48 kHz (Janus's default is 16 kHz)."""
    admin = AudioBridgeHandle(http, url)
    await admin.attach()
    body = {"request": "create", "room": room, "sampling_rate": 48000, "record": False}
    await admin.request(body)
    await admin.destroy()


async def join(http: httpx.AsyncClient, url: str, room: int, sdp: str, display: str) -> str:
    """Join `room` with an SDP offer; the SDP answer (the session stays open)."""
    participant = AudioBridgeHandle(http, url)
    await participant.attach()
    body = {"request": "join", "room": room, "display": display}
    transaction = await participant.request(body, jsep={"type": "offer", "sdp": sdp})
    jsep = await participant.event_with_jsep(transaction)
    return str(jsep["sdp"])
