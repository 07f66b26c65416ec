"""Jobs the queue benchmarks dispatch (workers import them through STOCKQ_JOBS=benchjobs)."""

from __future__ import annotations

import os
import time

import sqlalchemy as sa

import stockq
from stockq import db
from stockq.settings import Settings

probes = sa.Table(
    "bench_probes",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("latency", sa.Float, nullable=False),
)


class Noop(stockq.Job):
    name = "bench.Noop"

    def handle(self) -> None:
        pass


class LatencyProbe(stockq.Job):
    """Records how long after its dispatch its handle() started."""

    name = "bench.LatencyProbe"

    def handle(self) -> None:
        latency = time.time() - self.sent
        with db.get_engine(Settings.from_env().database_url).begin() as conn:
            conn.execute(sa.insert(probes).values(latency=latency))


_execution_log: int | None = None


class CountedNoop(stockq.Job):
    """A no-op that appends its uuid to ``$STOCKQ_BENCH_LOG_DIR/<pid>.log`` (one O_APPEND write, unbuffered, so
    that a SIGKILL loses no line): the benchmark counts executions per job from these files."""

    name = "bench.CountedNoop"

    def handle(self) -> None:
        global _execution_log
        if _execution_log is None:
            path = os.path.join(os.environ["STOCKQ_BENCH_LOG_DIR"], f"{os.getpid()}.log")
            _execution_log = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.write(_execution_log, f"{self.job_uuid}\n".encode())
