"""Job classes the reliability suites dispatch; workers import them through STOCKQ_JOBS=tests.reliability.jobs.

- ``Chaos`` records every run (uuid, attempt, pid, start, end) in the side table ``chaos_runs``.
- ``FileRecord`` appends its start and end to a file (one line each, O_APPEND) so that the database-fault suites
  see every run even while the database is down.
- ``Soak`` appends (uuid, dispatched_at, started) to a per-process file for bench/soak.py.
- ``LeakRegistered`` / ``LeakInUrl`` / ``LeakChained`` fail with an error that carries the secret in
  STOCKQ_TEST_SECRET (never in their payload, as real jobs carry an integration id, not its key).
"""

from __future__ import annotations

import os
import random
import time
from typing import Any

import sqlalchemy as sa

import stockq
from stockq import db, redact
from stockq.settings import Settings

chaos_metadata = sa.MetaData()
chaos_runs = sa.Table(
    "chaos_runs",
    chaos_metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("uuid", sa.String(36), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("started", sa.Float, nullable=False),
    sa.Column("finished", sa.Float, nullable=True),
)


def create_chaos_table(url: str) -> None:
    chaos_metadata.create_all(db.get_engine(url))


def chaos_runs_of(url: str) -> list[Any]:
    with db.get_engine(url).connect() as conn:
        return list(conn.execute(sa.select(chaos_runs).order_by(chaos_runs.c.id)))


class Chaos(stockq.Job):
    """Records its run, works 1-5 ms, records its end."""

    name = "reliability.Chaos"
    tries = 0  # unlimited: a SIGKILL must never fail a job

    def handle(self) -> None:
        engine = db.get_engine(Settings.from_env().database_url)
        with engine.begin() as conn:
            run_id = conn.execute(
                sa.insert(chaos_runs)
                .values(uuid=self.job_uuid, attempt=self.attempts, pid=os.getpid(), started=time.time())
                .returning(chaos_runs.c.id)
            ).scalar_one()
        time.sleep(random.uniform(0.001, 0.005))
        with engine.begin() as conn:
            conn.execute(sa.update(chaos_runs).where(chaos_runs.c.id == run_id).values(finished=time.time()))


def _append(path: str, line: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


class FileRecord(stockq.Job):
    """Appends ``start`` and ``end`` lines to ``path``; works ``seconds`` in between. Touches no database."""

    name = "reliability.FileRecord"
    path: str

    def handle(self) -> None:
        _append(self.path, f"start {self.job_uuid} {self.attempts} {os.getpid()} {time.time():.6f}\n")
        time.sleep(getattr(self, "seconds", 0.01))
        _append(self.path, f"end {self.job_uuid} {self.attempts} {os.getpid()} {time.time():.6f}\n")


class FileHog(stockq.Job):
    """Keeps ``mb`` megabytes for the rest of the process (to pass --memory), then appends a line to ``path``."""

    name = "reliability.FileHog"
    path: str
    mb: int
    kept: list[bytearray] = []

    def handle(self) -> None:
        block = bytearray(self.mb * 1024 * 1024)
        for i in range(0, len(block), 4096):
            block[i] = 1
        FileHog.kept.append(block)
        time.sleep(getattr(self, "seconds", 0.15))  # longer than the worker's 0.1 s memory-check interval
        _append(self.path, f"end {self.job_uuid} {self.attempts} {os.getpid()} {time.time():.6f}\n")


_soak_fd: int | None = None


class Soak(stockq.Job):
    """Appends ``uuid dispatched_at started`` to $STOCKQ_SOAK_DIR/<pid>.txt (one write per job, no database)."""

    name = "reliability.Soak"
    dispatched_at: float

    def handle(self) -> None:
        global _soak_fd
        started = time.time()
        if _soak_fd is None:
            path = os.path.join(os.environ["STOCKQ_SOAK_DIR"], f"{os.getpid()}.txt")
            _soak_fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.write(_soak_fd, f"{self.job_uuid} {self.dispatched_at:.6f} {started:.6f}\n".encode())


def _secret() -> str:
    return os.environ["STOCKQ_TEST_SECRET"]


class LeakRegistered(stockq.Job):
    """Registers the key (as the integrations code does when it loads a shop), then fails echoing it bare."""

    name = "reliability.LeakRegistered"

    def handle(self) -> None:
        key = _secret()
        redact.register_secret(key)
        raise RuntimeError(f"shop rejected key {key} (401)")


class LeakInUrl(stockq.Job):
    """Fails with the key in a ws_key= query string, never registered."""

    name = "reliability.LeakInUrl"

    def handle(self) -> None:
        raise ConnectionError(f"GET https://shop.example/api/stock_availables?ws_key={_secret()}&limit=5 timed out")


class LeakChained(stockq.Job):
    """Fails with a clean message whose cause (shown in the traceback) carries the registered key."""

    name = "reliability.LeakChained"

    def handle(self) -> None:
        key = _secret()
        redact.register_secret(key)
        try:
            raise ValueError(f"Authorization failed for {key}")
        except ValueError as cause:
            raise RuntimeError("sync failed") from cause


# ---- in-process fencing (test_fencing.py) ---------------------------------------------------------------------
heartbeat_broken = False
fenced_runs: list[tuple[str, int]] = []


class FencedOnce(stockq.Job):
    """First attempt: the database stops answering the heartbeat while the job works ``seconds`` in interruptible
    Python code, so the worker fences it; the database answers again the moment the fence interrupts the job
    (long before the lease could expire). Later attempts finish at once."""

    name = "reliability.FencedOnce"
    tries = 0
    seconds: float

    def handle(self) -> None:
        global heartbeat_broken
        fenced_runs.append((self.job_uuid or "", self.attempts))
        if self.attempts > 1:
            return
        heartbeat_broken = True
        try:
            deadline = time.monotonic() + self.seconds
            while time.monotonic() < deadline:
                time.sleep(0.01)
        finally:
            heartbeat_broken = False
