"""Job classes the queue tests dispatch; workers import them through STOCKQ_JOBS=tests.support.testjobs.

Jobs that record write to a side table `test_runs` (created by `create_runs_table`) so that a test can see which
process ran which job, when, and how often.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any, ClassVar

import sqlalchemy as sa

import stockq
from stockq import db
from stockq.settings import Settings

runs_metadata = sa.MetaData()
test_runs = sa.Table(
    "test_runs",
    runs_metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(64), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("started", sa.Float, nullable=False),
    sa.Column("finished", sa.Float, nullable=True),
)
hook_calls: list[tuple[str, str]] = []


def create_runs_table(url: str) -> None:
    runs_metadata.create_all(db.get_engine(url))


def runs(url: str) -> list[Any]:
    with db.get_engine(url).connect() as conn:
        return list(conn.execute(sa.select(test_runs).order_by(test_runs.c.id)))


def _engine() -> sa.Engine:
    return db.get_engine(Settings.from_env().database_url)


class Noop(stockq.Job):
    name = "tests.Noop"

    def handle(self) -> None:
        pass


class Record(stockq.Job):
    """Records its start and end in test_runs; sleeps ``seconds`` in between."""

    name = "tests.Record"

    def handle(self) -> None:
        engine = _engine()
        with engine.begin() as conn:
            run_id = conn.execute(
                sa.insert(test_runs)
                .values(key=self.key, attempt=self.attempts, pid=os.getpid(), started=time.time())
                .returning(test_runs.c.id)
            ).scalar_one()
        seconds = getattr(self, "first_seconds", None) if self.attempts == 1 else None
        time.sleep(seconds if seconds is not None else getattr(self, "seconds", 0))
        with engine.begin() as conn:
            conn.execute(sa.update(test_runs).where(test_runs.c.id == run_id).values(finished=time.time()))


class Explode(stockq.Job):
    name = "tests.Explode"
    tries = 3
    backoff: ClassVar[list[int]] = [0]

    def handle(self) -> None:
        raise RuntimeError(f"boom {getattr(self, 'tag', '')}".strip())

    def failed(self, exc: BaseException) -> None:
        hook_calls.append((self.job_uuid or "", str(exc)))


class SleepPython(stockq.Job):
    """Busy in Python code for ``seconds`` (interruptible by the timeout)."""

    name = "tests.SleepPython"

    def handle(self) -> None:
        deadline = time.monotonic() + self.seconds
        while time.monotonic() < deadline:
            time.sleep(0.01)


class Stuck(stockq.Job):
    """Ignores the timeout interruption, as code stuck inside a C call would."""

    name = "tests.Stuck"

    def handle(self) -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        time.sleep(self.seconds)


class ReleaseSelf(stockq.Job):
    name = "tests.ReleaseSelf"
    tries = 5

    def handle(self) -> None:
        if self.attempts < 2:
            self.release(0)


class FailSelf(stockq.Job):
    name = "tests.FailSelf"
    tries = 5

    def handle(self) -> None:
        self.fail(ValueError("refused by handler"))


class Hog(stockq.Job):
    """Holds ``mb`` megabytes for the rest of the process (to trip --memory)."""

    name = "tests.Hog"
    kept: ClassVar[list[bytearray]] = []

    def handle(self) -> None:
        block = bytearray(self.mb * 1024 * 1024)
        for i in range(0, len(block), 4096):
            block[i] = 1
        Hog.kept.append(block)


class LeakKey(stockq.Job):
    """Fails with an error that carries a secret, as an HTTP client's error would."""

    name = "tests.LeakKey"

    def handle(self) -> None:
        raise RuntimeError(f"GET https://shop.example/api/products?ws_key={self.key} failed")
