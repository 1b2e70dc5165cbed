"""What the local servers of a development stack share: process groups, ports, logs, state files.

`LocalServer` is the lifecycle both the Kafka broker and the PostgreSQL cluster follow: a data
directory that outlives the process, ports remembered there over restarts, a log appended to
and bounded, and a failure that quotes the end of that log.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from contextlib import suppress
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from adapters.errors import InfraError
from config.settings import read_json, write_json

HOST = "127.0.0.1"
LOG_TAIL_LINES = 40
# Past this size the previous log moves to <name>.1 at the next start.
MAX_LOG_BYTES = 20 * 1024 * 1024
PORTS_FILE = "ports.json"


class LocalServer(ABC):
    """A server whose state lives in `data_dir`, so a later start brings back the same one.

    Subclasses start and stop the process; this class remembers the ports, names the log and
    words the failures.
    """

    #: What the server is called in messages ("Kafka broker", "PostgreSQL").
    what: str

    def __init__(self, data_dir: Path, reserved: Iterable[int] = ()) -> None:
        self.data_dir = Path(data_dir).resolve()
        # Ports promised to others (the services `chorus up` starts next): never picked.
        self.reserved = frozenset(reserved)

    @property
    @abstractmethod
    def log_path(self) -> Path:
        """The server's log, appended over restarts."""

    @abstractmethod
    def start(self, timeout: float = 60) -> str:
        """Start the server and wait until it answers; returns the address clients use."""

    @abstractmethod
    def stop(self, timeout: float = 30) -> None:
        """Stop the server this object started; no-op otherwise."""

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def choose_ports(self, wanted: dict[str, int | None]) -> dict[str, int]:
        """A port per name (`port`, `controller_port`): the given one, else the last start's
        while still free and not reserved, else a new free one not reserved; remembered in the
        data directory."""
        remembered = read_json(self.data_dir / PORTS_FILE)
        chosen: dict[str, int | None] = {}
        for name, port in wanted.items():
            if port:
                if not port_is_free(port):
                    label = name.replace("_", " ")
                    raise InfraError(f"the {self.what} {label} {HOST}:{port} is already in use")
                chosen[name] = port
            else:
                last = remembered.get(name)
                chosen[name] = None
                if isinstance(last, int) and last not in self.reserved and port_is_free(last):
                    chosen[name] = last
        ports: dict[str, int] = {}
        for name, port in chosen.items():
            taken = {p for p in chosen.values() if p} | set(ports.values()) | self.reserved
            ports[name] = port or free_port(avoid=taken)
        if len(set(ports.values())) < len(ports):
            raise InfraError(f"the {self.what} ports must differ: {ports}")
        write_json(self.data_dir / PORTS_FILE, dict(ports))
        return ports

    def failure(self, what: str, detail: str = "") -> InfraError:
        """The error of a start that failed: what happened, then the end of the log."""
        try:
            tail = tail_text(self.log_path.read_text(errors="replace"))
        except OSError:
            tail = "(no log)"
        return InfraError(
            f"the {self.what} in {self.data_dir} {what}{detail}; {self.log_path} ends:\n{tail}"
        )


# --- processes -------------------------------------------------------------------------------


def signal_group(pgid: int, sig: signal.Signals) -> None:
    """Send `sig` to a process group; one that is gone already is no error."""
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def launch_group(
    argv: Sequence[str],
    log: IO[bytes],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start `argv` in a session (and process group) of its own, its output appended to `log`.

    A terminal's Ctrl-C then reaches only the supervisor, which stops its children in order,
    and `stop_group` can signal all the child's descendants at once.
    """
    return subprocess.Popen(
        argv,
        cwd=cwd,
        env=None if env is None else dict(env),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop_group(process: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM the group `process` leads (started with a session of its own), SIGKILL after
    `timeout` s; then SIGKILL what is left of the group (grandchildren outliving the leader)."""
    signal_group(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        signal_group(process.pid, signal.SIGKILL)
        process.wait()
    signal_group(process.pid, signal.SIGKILL)


def cmdline(pid: int) -> str:
    """The command line of a live process, or "" if it is gone (or a zombie)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace")


# --- ports -----------------------------------------------------------------------------------


def free_port(avoid: int | set[int] | None = None) -> int:
    """A port on 127.0.0.1 that nothing listens on now (the kernel's pick), none of `avoid`."""
    avoided = {avoid} if isinstance(avoid, int) else avoid or set()
    while True:
        with socket.socket() as sock:
            sock.bind((HOST, 0))
            port = int(sock.getsockname()[1])
        if port not in avoided:
            return port


def port_is_free(port: int) -> bool:
    """True when a server could listen on 127.0.0.1:`port`."""
    with socket.socket() as sock:
        # Like the servers' listeners: connections of a previous run in TIME_WAIT do not count.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


# --- files -----------------------------------------------------------------------------------


def rotate_log(log: Path) -> None:
    """Move a log past MAX_LOG_BYTES aside (to `<name>.1`), so logs stay bounded over restarts."""
    with suppress(FileNotFoundError):
        if log.stat().st_size > MAX_LOG_BYTES:
            log.replace(log.with_name(log.name + ".1"))


def tail_text(text: str, lines: int = LOG_TAIL_LINES) -> str:
    """The last `lines` lines of `text`."""
    return "\n".join(text.rstrip("\n").splitlines()[-lines:])


def read_int(path: Path) -> int | None:
    """The whole number a small file holds (a pid), or None."""
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None
