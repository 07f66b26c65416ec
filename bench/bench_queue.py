"""Queue benchmark: dispatch (single, bulk), drain with 1 and 4 worker processes, idle pick-up latency.

    python bench/bench_queue.py [--quick] [--pg-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

Each figure is the median of 3 runs in fresh databases (a SQLite file, a new PostgreSQL database). Drain: idle workers
(default settings, -q) are running; the clock starts when a bulk dispatch commits and stops when the jobs table is
empty (every job run and acknowledged).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import benchjobs  # noqa: E402

import stockq  # noqa: E402
from stockq import db, schema  # noqa: E402
from stockq.queue import api  # noqa: E402

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@contextmanager
def fresh_database(backend: str, pg_admin_url: str) -> Iterator[str]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{tmp}/bench.db"
            schema.upgrade(db.get_engine(url))
            yield url
            db.dispose_engines()
        return
    name = f"stockq_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.engine.make_url(pg_admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        schema.upgrade(db.get_engine(url))
        yield url
    finally:
        db.dispose_engines()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def worker_env(url: str) -> dict[str, str]:
    return {**os.environ, "STOCKQ_DATABASE_URL": url, "STOCKQ_JOBS": "benchjobs",
            "PYTHONPATH": os.pathsep.join([str(BENCH), os.environ.get("PYTHONPATH", "")])}  # fmt: skip


def start_workers(url: str, count: int, *extra: str) -> list[subprocess.Popen[bytes]]:
    """Start ``count`` idle workers and wait until every one has registered."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "stockq", "queue", "work", "-q", "--sleep=0.05", *extra],
            env=worker_env(url),
            stdout=subprocess.DEVNULL,
        )
        for _ in range(count)
    ]
    engine = db.get_engine(url)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            if conn.execute(sa.text("SELECT count(*) FROM queue_workers")).scalar_one() >= count:
                return procs
        time.sleep(0.05)
    raise SystemExit("workers did not start")


def stop_workers(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        if proc.wait(timeout=60) != 0:
            raise SystemExit(f"worker exited {proc.returncode}")


def wait_until_drained(url: str) -> float:
    engine = db.get_engine(url)
    while True:
        with engine.connect() as conn:
            if conn.execute(sa.text("SELECT 1 FROM jobs LIMIT 1")).first() is None:
                return time.perf_counter()
        time.sleep(0.005)


def median_of(runs: int, measure: Callable[[], float]) -> float:
    return statistics.median(measure() for _ in range(runs))


def single_dispatch(backend: str, pg: str, n: int) -> float:
    with fresh_database(backend, pg) as url:
        t0 = time.perf_counter()
        for _ in range(n):
            api.dispatch(benchjobs.Noop(), database_url=url)
        return n / (time.perf_counter() - t0)


def bulk_dispatch(backend: str, pg: str, n: int) -> float:
    with fresh_database(backend, pg) as url:
        items = [benchjobs.Noop() for _ in range(n)]
        t0 = time.perf_counter()
        stockq.dispatch_many(items, database_url=url)
        return n / (time.perf_counter() - t0)


def drain(backend: str, pg: str, n: int, workers: int) -> float:
    """Jobs per second from the commit of a bulk dispatch to an empty jobs table, with idle workers waiting."""
    with fresh_database(backend, pg) as url:
        procs = start_workers(url, workers)
        try:
            stockq.dispatch_many([benchjobs.Noop() for _ in range(n)], database_url=url)
            t0 = time.perf_counter()
            elapsed = wait_until_drained(url) - t0
        finally:
            stop_workers(procs)
        with db.get_engine(url).connect() as conn:
            failed = conn.execute(sa.text("SELECT count(*) FROM failed_jobs")).scalar_one()
        if failed:
            raise SystemExit(f"drain failed {failed} jobs")
        return n / elapsed


def pickup_latency(pg: str, samples: int) -> tuple[float, float]:
    with fresh_database("postgresql", pg) as url:
        benchjobs.probes.metadata.create_all(db.get_engine(url))
        proc = subprocess.Popen([sys.executable, "-m", "stockq", "queue", "work", "-q", "--sleep=30"],
                                env=worker_env(url), stdout=subprocess.DEVNULL)  # fmt: skip
        try:
            time.sleep(2.0)
            engine = db.get_engine(url)
            for i in range(samples):
                benchjobs.LatencyProbe(sent=time.time()).dispatch(database_url=url)
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline:
                    with engine.connect() as conn:
                        if conn.execute(sa.text("SELECT count(*) FROM bench_probes")).scalar_one() > i:
                            break
                    time.sleep(0.002)
                time.sleep(0.02)  # idle again before the next probe
            with engine.connect() as conn:
                latencies = sorted(conn.execute(sa.text("SELECT latency FROM bench_probes")).scalars())
        finally:
            proc.terminate()
            proc.wait()
        p50 = latencies[len(latencies) // 2] * 1000
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
        return p50, p99


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument("--pg-url", default=os.environ.get("STOCKQ_BENCH_PG_URL", DEFAULT_PG))
    args = parser.parse_args()
    n_drain, n_single, n_bulk, samples = (1_000, 200, 1_000, 30) if args.quick else (10_000, 2_000, 10_000, 200)
    runs = 3

    rows = []
    for backend in ("sqlite", "postgresql"):
        single = median_of(runs, lambda b=backend: single_dispatch(b, args.pg_url, n_single))
        bulk = median_of(runs, lambda b=backend: bulk_dispatch(b, args.pg_url, n_bulk))
        drain1 = median_of(runs, lambda b=backend: drain(b, args.pg_url, n_drain, 1))
        drain4 = median_of(runs, lambda b=backend: drain(b, args.pg_url, n_drain, 4))
        rows.append((backend, single, bulk, drain1, drain4))
    p50, p99 = pickup_latency(args.pg_url, samples)

    print(f"\nstockq queue benchmark — {platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()},"
          f" SQLAlchemy {sa.__version__}; median of {runs}; drain of {n_drain:,} no-op jobs\n")  # fmt: skip
    print("| database | single dispatch/s | bulk dispatch/s | drain/s, 1 worker | drain/s, 4 workers |")
    print("|---|---:|---:|---:|---:|")
    for backend, single, bulk, drain1, drain4 in rows:
        print(f"| {backend} | {single:,.0f} | {bulk:,.0f} | {drain1:,.0f} | {drain4:,.0f} |")
    print(f"\nIdle pick-up latency (PostgreSQL, LISTEN/NOTIFY, {samples} samples): p50 {p50:.1f} ms, p99 {p99:.1f} ms")


if __name__ == "__main__":
    main()
