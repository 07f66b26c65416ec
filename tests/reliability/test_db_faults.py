"""Database faults while 4 workers drain: a PostgreSQL restart, dropped connections, a locked SQLite file.

The jobs (FileRecord) write their runs to a file, not to the database, so that the record survives the fault and
the only database user is the queue itself. Workers run with --tries=1: any re-run or any queue error caused by
the fault would show up as a failed job.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

import stockq
from stockq import db, schema
from stockq.queue.repository import JobRepository
from tests.reliability import jobs as rjobs
from tests.reliability.conftest import FileRun, Spawner, file_runs, wait_for

pytestmark = pytest.mark.slow

PG_BIN = Path(os.environ.get("STOCKQ_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
LEASE = 15  # fencing starts after 7.5 s without renewal; every fault below is shorter
WORKERS = 4


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class OwnPostgres:
    """A PostgreSQL server in a temporary data directory, which the test may stop and start."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.data = base / "data"
        self.port = _free_port()
        self.log = base / "server.log"

    def _run(self, *args: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, *args], check=True, capture_output=True, timeout=120)

    def init(self) -> None:
        self._run(str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")

    def pg_ctl(self, *args: str) -> None:
        options = f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", *args)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"


@pytest.fixture
def own_postgres() -> Iterator[OwnPostgres]:
    if not (PG_BIN / "initdb").exists():
        pytest.skip(f"no PostgreSQL server binaries in {PG_BIN}")
    base = Path(tempfile.mkdtemp(prefix="stockq-pg-"))
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
    server = OwnPostgres(base)
    server.init()
    server.pg_ctl("start")
    try:
        yield server
    finally:
        db.dispose_engines()
        try:
            server.pg_ctl("stop", "-m", "immediate")
        finally:
            shutil.rmtree(base, ignore_errors=True)


def _drain_with_fault(
    database_url: str,
    spawn: Spawner,
    tmp_path: Path,
    fault: Callable[[], None],
    *,
    jobs: int,
    seconds: float,
    expect_worker_log: bool = True,
) -> tuple[int, float, list[FileRun]]:
    """Dispatch ``jobs`` FileRecord jobs, start 4 workers, run ``fault`` once a tenth of the jobs ran, and wait for
    the drain. Asserts every job ran exactly once, nothing failed, and no worker exited. Returns (jobs run before
    the fault ended, seconds the drain took, the runs)."""
    runs_file = tmp_path / "runs.txt"
    uuids = stockq.dispatch_many(
        [rjobs.FileRecord(path=str(runs_file), seconds=seconds) for _ in range(jobs)], database_url=database_url
    )
    db.dispose_engines()  # the workers, not this process, must live through the fault
    t0 = time.monotonic()
    workers = [spawn(database_url, "--tries=1", "--timeout=30", lease=LEASE) for _ in range(WORKERS)]
    repo = JobRepository(db.get_engine(database_url))
    # Busy workers: all four registered (past their start-up schema check) and jobs running.
    wait_for(lambda: len(repo.workers()) == WORKERS, timeout=60, what="workers registered")
    wait_for(lambda: len(file_runs(runs_file)) >= jobs // 10, timeout=60, what="first jobs")
    db.dispose_engines()
    fault()
    db.dispose_engines()  # this process's pooled connections did not survive the fault either
    ran_by_fault_end = len([r for r in file_runs(runs_file) if r.finished is not None])
    repo = JobRepository(db.get_engine(database_url))
    wait_for(lambda: sum(c.size for c in repo.counts()) == 0, timeout=120, what="drain")
    elapsed = time.monotonic() - t0
    exited = [proc.poll() for proc in workers]
    assert exited == [None] * WORKERS, "a worker exited during the fault instead of recovering:\n" + "\n".join(
        spawn.stderr_of(proc.pid) for proc in workers if proc.poll() is not None
    )
    for proc in workers:
        proc.send_signal(signal.SIGTERM)
    for proc in workers:
        assert proc.wait(timeout=30) == 0, spawn.stderr_of(proc.pid)
    failed = {f.uuid: f.exception.splitlines()[-1] for f in repo.failed()}
    assert failed == {}
    runs = file_runs(runs_file)
    assert sorted(r.uuid for r in runs) == sorted(uuids), "every job ran exactly once"
    assert all(r.attempt == 1 and r.finished is not None for r in runs)
    assert ran_by_fault_end < jobs, "the fault must hit while jobs were still queued"
    if expect_worker_log:
        logs = [spawn.stderr_of(proc.pid) for proc in workers]
        assert any("Database unavailable" in log or "Heartbeat failed" in log for log in logs), "fault not seen"
    return ran_by_fault_end, elapsed, runs


def test_postgresql_restart_mid_drain(own_postgres: OwnPostgres, spawn: Spawner, tmp_path: Path) -> None:
    admin = sa.create_engine(own_postgres.url(), isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql("CREATE DATABASE stockq")
    admin.dispose()
    url = own_postgres.url("stockq")
    schema.upgrade(db.create(url))
    outage: list[float] = []

    def restart() -> None:
        t = time.monotonic()
        own_postgres.pg_ctl("stop", "-m", "fast")
        time.sleep(2)
        own_postgres.pg_ctl("start")
        outage.append(time.monotonic() - t)

    before, elapsed, _runs = _drain_with_fault(url, spawn, tmp_path, restart, jobs=400, seconds=0.02)
    print(f"\npg restart: outage={outage[0]:.1f}s jobs=400 done_before_restart_end={before} drain={elapsed:.1f}s")


def test_postgresql_connections_terminated_mid_drain(pg_url: str, spawn: Spawner, tmp_path: Path) -> None:
    killer = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    terminated: list[int] = []

    def terminate_all() -> None:
        for _ in range(4):
            with killer.connect() as conn:
                terminated.append(
                    len(
                        conn.exec_driver_sql(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                        ).all()
                    )
                )
            time.sleep(0.7)

    _before, elapsed, _runs = _drain_with_fault(pg_url, spawn, tmp_path, terminate_all, jobs=400, seconds=0.02)
    killer.dispose()
    print(f"\npg_terminate_backend: rounds=4 backends_terminated={sum(terminated)} drain={elapsed:.1f}s")
    assert sum(terminated) >= 8  # the workers' connections (queue, heartbeat, LISTEN) were really cut


LOCKER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=60)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("COMMIT")
"""


def test_sqlite_file_locked_by_another_process(sqlite_url: str, spawn: Spawner, tmp_path: Path) -> None:
    path = sa.engine.make_url(sqlite_url).database
    assert path is not None
    window: list[float] = []

    def lock_for_three_seconds() -> None:
        locker = subprocess.Popen([sys.executable, "-c", LOCKER, path, "3"], stdout=subprocess.PIPE, text=True)
        assert locker.stdout is not None and locker.stdout.readline().strip() == "locked"
        window.append(time.time())
        assert locker.wait(timeout=60) == 0
        window.append(time.time())

    # Workers wait on the lock (busy timeout), so they log nothing: the proof that they were blocked is that no
    # job started while the lock was held, beyond the one each worker had already reserved.
    before, elapsed, runs = _drain_with_fault(
        sqlite_url, spawn, tmp_path, lock_for_three_seconds, jobs=300, seconds=0.02, expect_worker_log=False
    )
    locked_at, unlocked_at = window
    started_while_locked = [r for r in runs if locked_at + 0.1 < r.started < unlocked_at - 0.1]
    print(
        f"\nsqlite locked: held={unlocked_at - locked_at:.1f}s done_before_unlock={before} "
        f"started_while_locked={len(started_while_locked)} drain={elapsed:.1f}s"
    )
    assert unlocked_at - locked_at >= 2.9
    assert len(started_while_locked) <= WORKERS
