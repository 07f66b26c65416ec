"""Jobs the queue benchmarks dispatch (workers import them through STOCKQ_JOBS=benchjobs)."""

from __future__ import annotations

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
