"""The project's own PostgreSQL cluster, with SQLAlchemy 2 and psycopg 3."""

from __future__ import annotations

import os
import signal
import stat
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.exc import ProgrammingError

from adapters.errors import InfraError
from devstack.database import LocalPostgres, create_database, drop_database
from devstack.server import cmdline


def _engine(url: str) -> Engine:
    return create_engine(url, connect_args={"connect_timeout": 5})


def _write_note(url: str, body: str) -> None:
    engine = _engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text("CREATE TABLE IF NOT EXISTS notes (id serial PRIMARY KEY, body text)")
            )
            conn.execute(text("INSERT INTO notes (body) VALUES (:body)"), {"body": body})
    finally:
        engine.dispose()


def _read_notes(url: str) -> list[str]:
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text("SELECT body FROM notes ORDER BY id")).scalars())
    finally:
        engine.dispose()


def _postmaster_pid(database: LocalPostgres) -> int:
    return int((database.cluster_dir / "postmaster.pid").read_text().split("\n", 1)[0])


def test_a_row_is_written_and_read_back(fresh_database_url: str) -> None:
    _write_note(fresh_database_url, "héllo, wörld")
    assert _read_notes(fresh_database_url) == ["héllo, wörld"]
    engine = _engine(fresh_database_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SHOW server_encoding")).scalar_one() == "UTF8"
            assert conn.execute(text("SELECT current_user")).scalar_one() == "chorus"
    finally:
        engine.dispose()


def test_fresh_databases_are_isolated(database_url: str) -> None:
    first = create_database(database_url, f"iso_{uuid.uuid4().hex[:12]}")
    second = create_database(database_url, f"iso_{uuid.uuid4().hex[:12]}")
    try:
        _write_note(first, "only in the first")
        assert _read_notes(first) == ["only in the first"]
        with pytest.raises(ProgrammingError, match="notes"):
            _read_notes(second)
    finally:
        for url in (first, second):
            drop_database(database_url, str(make_url(url).database))


def test_creating_an_existing_database_fails_unless_allowed(database_url: str) -> None:
    name = f"twice_{uuid.uuid4().hex[:12]}"
    url = create_database(database_url, name)
    try:
        assert create_database(database_url, name, exist_ok=True) == url
        with pytest.raises(ProgrammingError, match="already exists"):
            create_database(database_url, name)
    finally:
        drop_database(database_url, name)


def test_a_restarted_cluster_keeps_its_data_port_and_password(tmp_path: Path) -> None:
    database = LocalPostgres(tmp_path / "postgres")
    try:
        url = database.start()
        parsed = make_url(url)
        assert (parsed.drivername, parsed.username, parsed.host) == (
            "postgresql+psycopg",
            "chorus",
            "127.0.0.1",
        )
        assert (parsed.port, parsed.database) == (database.port, "chorus")
        assert stat.S_IMODE(database.password_path.stat().st_mode) == 0o600
        _write_note(url, "before the restart")
        database.stop()
        assert not (database.cluster_dir / "postmaster.pid").exists()

        assert database.start() == url
        assert _read_notes(url) == ["before the restart"]
    finally:
        database.stop()


def test_a_killed_server_and_a_stale_pid_file_do_not_block_the_next_start(tmp_path: Path) -> None:
    database = LocalPostgres(tmp_path / "postgres")
    try:
        url = database.start()
        _write_note(url, "survives kill -9")
        pid = _postmaster_pid(database)
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while cmdline(pid) and time.monotonic() < deadline:
            time.sleep(0.05)

        # A new process would find the killed server's postmaster.pid: crash recovery follows.
        again = LocalPostgres(tmp_path / "postgres")
        assert again.start() == url
        assert _read_notes(url) == ["survives kill -9"]
        again.stop()

        # A pid file naming a live process that is not a postgres server (pid reuse).
        (database.cluster_dir / "postmaster.pid").write_text(f"{os.getpid()}\n")
        third = LocalPostgres(tmp_path / "postgres")
        assert third.start() == url
        third.stop()
    finally:
        database.stop()


def test_a_running_server_of_the_same_cluster_is_not_started_twice(tmp_path: Path) -> None:
    first = LocalPostgres(tmp_path / "postgres")
    try:
        first.start()
        second = LocalPostgres(tmp_path / "postgres")
        with pytest.raises(InfraError, match=r"of an earlier run still uses"):
            second.start()
        second.stop()
        engine = _engine(first.url)
        try:
            with engine.connect() as conn:
                assert conn.execute(text("SELECT 1")).scalar_one() == 1
        finally:
            engine.dispose()
    finally:
        first.stop()


def test_missing_binaries_say_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import devstack.database as database_module

    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(database_module, "POSTGRES_ROOT", tmp_path / "none")
    with pytest.raises(InfraError, match="apt-get install postgresql"):
        LocalPostgres(tmp_path / "postgres").start()
