"""A local PostgreSQL cluster kept in a data directory, run with the distribution's binaries."""

from __future__ import annotations

import os
import pwd
import secrets
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable, Sequence
from contextlib import suppress
from pathlib import Path

from sqlalchemy import URL, create_engine, make_url, text
from sqlalchemy.pool import NullPool

from adapters.errors import InfraError
from devstack.server import HOST, LocalServer, cmdline, rotate_log, tail_text

SUPERUSER = "chorus"
DATABASE = "chorus"
SERVER_USER = "postgres"
INSTALL_HINT = "install PostgreSQL first, e.g. `apt-get install postgresql`"
TOOLS = ("initdb", "pg_ctl", "postgres")
# Debian and Ubuntu keep each major version's server binaries off PATH, under <root>/<major>/bin.
POSTGRES_ROOT = Path("/usr/lib/postgresql")
# A Unix socket path longer than this (sun_path, with its NUL) cannot be bound.
MAX_SOCKET_PATH = 107
STALE_BACKENDS_WAIT = 10.0


def postgres_bin_dir() -> Path:
    """The folder of initdb, pg_ctl and postgres: from PATH, else the newest Debian install."""
    on_path = shutil.which("initdb")
    candidates = [Path(on_path).resolve().parent] if on_path else []
    installed = POSTGRES_ROOT.glob("*/bin")
    candidates += sorted(installed, key=_major_version, reverse=True)
    for folder in candidates:
        if all((folder / tool).is_file() for tool in TOOLS):
            return folder
    raise InfraError(f"PostgreSQL's initdb and pg_ctl were not found: {INSTALL_HINT}")


def create_database(url: str, name: str, *, exist_ok: bool = False) -> str:
    """Create database `name` on the server of `url`; returns the URL of the new database."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with engine.connect() as conn:
            found = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            ).scalar()
            if found is not None and exist_ok:
                return make_url(url).set(database=name).render_as_string(hide_password=False)
            quoted = engine.dialect.identifier_preparer.quote_identifier(name)
            conn.exec_driver_sql(f"CREATE DATABASE {quoted}")
    finally:
        engine.dispose()
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str, name: str) -> None:
    """Drop database `name` (if it exists) on the server of `url`, closing its connections."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with engine.connect() as conn:
            quoted = engine.dialect.identifier_preparer.quote_identifier(name)
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")
    finally:
        engine.dispose()


class LocalPostgres(LocalServer):
    """A PostgreSQL cluster in `data_dir`, created on first start and kept over restarts.

    Run as root, the server runs as the `postgres` OS user (PostgreSQL refuses root).
    """

    what = "PostgreSQL server"

    def __init__(
        self, data_dir: Path, port: int | None = None, reserved: Iterable[int] = ()
    ) -> None:
        super().__init__(data_dir, reserved)
        self._wanted_port = port
        self._port: int | None = None
        self._started = False

    # --- what callers see ------------------------------------------------------------------

    @property
    def cluster_dir(self) -> Path:
        """PGDATA: owned by the server's OS user."""
        return self.data_dir / "cluster"

    @property
    def log_path(self) -> Path:
        """The server's log, appended over restarts."""
        return self.data_dir / "postgres.log"

    @property
    def password_path(self) -> Path:
        """The superuser's password (mode 0600), made at the first start."""
        return self.data_dir / "password"

    @property
    def port(self) -> int | None:
        """The port of the last start, or None before the first."""
        return self._port

    @property
    def running(self) -> bool:
        """True while the server this object started runs."""
        return self._started and self._live_postmaster() is not None

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of the `chorus` database as superuser `chorus`."""
        if self._port is None:
            raise InfraError(f"the PostgreSQL cluster in {self.data_dir} was not started")
        return self._url(DATABASE)

    def start(self, timeout: float = 60) -> str:
        """Create the cluster once, start the server and the `chorus` database; returns its URL."""
        if self._started:
            return self.url
        bin_dir = postgres_bin_dir()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        owner = _server_owner()
        if owner is not None:
            _grant_search(self.data_dir, owner)
        password = self._password()
        if not (self.cluster_dir / "PG_VERSION").is_file():
            self._initdb(bin_dir, owner, password)
        self._clear_stale_pid()
        self._port = self.choose_ports({"port": self._wanted_port})["port"]
        self._pg_ctl_start(bin_dir, owner, timeout)
        self._started = True
        create_database(self._url("postgres"), DATABASE, exist_ok=True)
        return self.url

    def stop(self, timeout: float = 60) -> None:
        """Stop the server this object started (`pg_ctl stop -m fast`); no-op otherwise."""
        if not self._started:
            return
        self._started = False
        owner = _server_owner()
        pg_ctl = str(postgres_bin_dir() / "pg_ctl")
        argv = [pg_ctl, "-D", str(self.cluster_dir), "-m", "fast", "-w"]
        done = _run_as(owner, [*argv, "-t", str(max(1, int(timeout))), "stop"])
        pid = self._live_postmaster()
        if done.returncode != 0 and pid is not None:
            # pg_ctl cannot reach the cluster (an ancestor's permissions changed under it) or
            # the fast shutdown hangs: signal the postmaster directly, harder each time.
            _stop_postmaster(pid, timeout)

    # --- start-up steps --------------------------------------------------------------------

    def _password(self) -> str:
        """The superuser password, made once and kept in a 0600 file."""
        if self.password_path.is_file():
            return self.password_path.read_text().strip()
        if (self.cluster_dir / "PG_VERSION").is_file():
            raise InfraError(f"{self.password_path} is missing; the cluster's password is lost")
        value = secrets.token_urlsafe(24)
        fd = os.open(self.password_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(value + "\n")
        return value

    def _initdb(self, bin_dir: Path, owner: pwd.struct_passwd | None, password: str) -> None:
        # Into a side folder, renamed when complete: an interrupted initdb leaves no cluster
        # that looks usable (and that initdb would refuse to overwrite).
        work = self.data_dir / "cluster.init"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(mode=0o700)
        pwfile = work.parent / "initdb.pw"
        _write_private(pwfile, password, owner)
        _chown(work, owner)
        argv = [str(bin_dir / "initdb"), "-D", str(work), "-U", SUPERUSER]
        argv += ["--auth=scram-sha-256", f"--pwfile={pwfile}", "-E", "UTF8"]
        argv += ["--locale=C.UTF-8", "--no-instructions"]
        try:
            done = _run_as(owner, argv)
        finally:
            pwfile.unlink(missing_ok=True)
        if done.returncode != 0:
            output = tail_text(done.stdout + done.stderr)
            raise InfraError(f"initdb failed for {self.cluster_dir}:\n{output}")
        work.rename(self.cluster_dir)

    def _clear_stale_pid(self) -> None:
        """Remove the lock files of a server that is gone; refuse while it still runs."""
        pid = self._live_postmaster()
        if pid is not None:
            raise InfraError(
                f"a PostgreSQL server (pid {pid}) of an earlier run still uses {self.cluster_dir}; "
                f"stop it first (`kill -INT {pid}`)"
            )
        # Backends of a killed postmaster exit on their own within moments; until then they
        # may still write to the cluster, so a new server must wait for them.
        leftovers = _wait_gone(self.cluster_dir, STALE_BACKENDS_WAIT)
        if leftovers:
            raise InfraError(f"processes {leftovers} still use {self.cluster_dir}; stop them first")
        # PostgreSQL itself ignores these files only when no process has the pid in them; a
        # zombie that nobody reaped yet, or a pid reused after a reboot, would block the start.
        (self.cluster_dir / "postmaster.pid").unlink(missing_ok=True)
        for lock in (self.data_dir / "run").glob(".s.PGSQL.*"):
            lock.unlink(missing_ok=True)

    def _live_postmaster(self) -> int | None:
        """The pid in postmaster.pid when that process is this cluster's server."""
        try:
            pid = int((self.cluster_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None
        return pid if str(self.cluster_dir) in cmdline(pid) else None

    def _pg_ctl_start(self, bin_dir: Path, owner: pwd.struct_passwd | None, timeout: float) -> None:
        assert self._port is not None
        rotate_log(self.log_path)
        self.log_path.touch()
        _chown(self.log_path, owner)
        options = f"-p {self._port} -k {shlex.quote(self._socket_dir(owner))}"
        options += f" -c listen_addresses={HOST}"
        argv = [str(bin_dir / "pg_ctl"), "-D", str(self.cluster_dir), "-l", str(self.log_path)]
        argv += ["-o", options, "-w", "-t", str(max(1, int(timeout))), "start"]
        done = _run_as(owner, argv)
        if done.returncode != 0:
            # pg_ctl gives up waiting after `timeout`; a server still starting must not linger.
            pid = self._live_postmaster()
            if pid is not None:
                _stop_postmaster(pid, 10.0)
            pg_ctl = tail_text(done.stdout + done.stderr)
            raise self.failure("did not start", f" (pg_ctl said: {pg_ctl})")

    def _socket_dir(self, owner: pwd.struct_passwd | None) -> str:
        """A private folder for the Unix socket; '' (none, TCP only) if its path is too long."""
        folder = self.data_dir / "run"
        if len(f"{folder}/.s.PGSQL.{self._port}") > MAX_SOCKET_PATH:
            return ""
        folder.mkdir(mode=0o700, exist_ok=True)
        _chown(folder, owner)
        return str(folder)

    def _url(self, database: str) -> str:
        url = URL.create(
            "postgresql+psycopg",
            username=SUPERUSER,
            password=self.password_path.read_text().strip(),
            host=HOST,
            port=self._port,
            database=database,
        )
        return url.render_as_string(hide_password=False)


# --- helpers -------------------------------------------------------------------------------


def _server_owner() -> pwd.struct_passwd | None:
    """The OS user the server runs as when we are root; None: the current user."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SERVER_USER)
    except KeyError as exc:
        raise InfraError(
            f"running as root, PostgreSQL needs the `{SERVER_USER}` OS user: {INSTALL_HINT}"
        ) from exc


def _run_as(
    owner: pwd.struct_passwd | None, argv: Sequence[str]
) -> subprocess.CompletedProcess[str]:
    prefix = ["runuser", "-u", owner.pw_name, "--"] if owner is not None else []
    # cwd "/": the postgres user may not be allowed into the caller's working directory.
    return subprocess.run(
        [*prefix, *argv], cwd="/", capture_output=True, text=True, check=False, timeout=600
    )


def _grant_search(folder: Path, owner: pwd.struct_passwd) -> None:
    """Let `owner` traverse to `folder`: add o+x (search, not listing) where it is missing.

    Only folders owned by root are changed; any other blocker is reported instead.
    """
    groups = set(os.getgrouplist(owner.pw_name, owner.pw_gid))
    for path in [folder, *folder.parents]:
        st = path.stat()
        if _can_search(st, owner.pw_uid, groups):
            continue
        if st.st_uid != 0:
            raise InfraError(
                f"the `{owner.pw_name}` user cannot reach {folder}: {path} is closed to it; "
                "choose a data directory it can reach"
            )
        os.chmod(path, st.st_mode | 0o001)


def _can_search(st: os.stat_result, uid: int, groups: set[int]) -> bool:
    if st.st_uid == uid:
        return bool(st.st_mode & 0o100)
    if st.st_gid in groups:
        return bool(st.st_mode & 0o010)
    return bool(st.st_mode & 0o001)


def _chown(path: Path, owner: pwd.struct_passwd | None) -> None:
    if owner is not None:
        os.chown(path, owner.pw_uid, owner.pw_gid)


def _write_private(path: Path, content: str, owner: pwd.struct_passwd | None) -> None:
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(content + "\n")
    _chown(path, owner)


def _stop_postmaster(pid: int, timeout: float) -> None:
    """SIGINT (fast shutdown), then SIGQUIT (immediate), then SIGKILL."""
    for sig, wait in ((signal.SIGINT, timeout), (signal.SIGQUIT, 10.0), (signal.SIGKILL, 10.0)):
        with suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not cmdline(pid):
                return
            time.sleep(0.1)


def _wait_gone(folder: Path, timeout: float) -> list[int]:
    """Wait until no live process works in `folder` (a server's processes all do); the rest."""
    deadline = time.monotonic() + timeout
    while True:
        found = _processes_in(folder)
        if not found or time.monotonic() >= deadline:
            return found
        time.sleep(0.1)


def _processes_in(folder: Path) -> list[int]:
    """Live processes whose working directory is `folder` (zombies have none)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with suppress(OSError):
                if os.readlink(entry / "cwd") == str(folder):
                    found.append(int(entry.name))
    return found


def _major_version(bin_dir: Path) -> int:
    try:
        return int(bin_dir.parent.name.split(".")[0])
    except ValueError:
        return -1
