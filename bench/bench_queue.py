"""Queue benchmark: dispatch (single, bulk), drain with 1/2/4/8 worker processes, idle pick-up latency, and a
SQLite crash check.

    python bench/bench_queue.py [--quick] [--pg-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

Each figure is the median of 3 runs in fresh databases (a SQLite file, a new PostgreSQL database). Drain is
measured exactly as for the peers (bench/peers/__init__.py): idle workers (default settings, -q; on SQLite
--sleep=0.01, the polling interval huey gets) are running and have run one warm-up job; the clock starts when a
bulk dispatch of N no-op jobs has committed and stops when the jobs table is empty (polled every 10 ms). The no-op
jobs append their uuid to a per-process file, so every drain also checks that each job ran exactly once (and that
failed_jobs is empty).
"""

from __future__ import annotations

import argparse
import collections
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import sqlalchemy as sa

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import benchjobs  # noqa: E402
from peers import Measurement, interleaved, libpq_url  # noqa: E402

import stockq  # noqa: E402
from stockq import db, schema  # noqa: E402
from stockq.queue import api  # noqa: E402

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
POLL_SECONDS = 0.01
WORKER_COUNTS = (1, 2, 4, 8)
PROFILE_FLAGS: list[str] = os.environ.get("STOCKQ_BENCH_PROFILE_FLAGS", "").split()


@dataclass(frozen=True)
class DrainRun:
    """One drain: its rate and what the execution logs say about exactly-once."""

    rate: float
    dispatched: int
    executions: int
    missing: int  # dispatched jobs that never ran
    duplicates: int  # extra executions of jobs that ran more than once
    failed: int

    @property
    def exactly_once(self) -> bool:
        return self.missing == 0 and self.duplicates == 0 and self.failed == 0 and self.executions == self.dispatched


@dataclass(frozen=True)
class CrashCheck:
    """A SQLite worker SIGKILLed mid-drain, then restarted."""

    dispatched: int
    ran_before_kill: int
    lost: int  # dispatched, never ran, and neither queued nor in failed_jobs: gone
    reruns: int  # jobs run twice (the killed worker ran them but could not acknowledge them)
    failed_unrun: int  # in failed_jobs without having run (their attempt was counted when the killed worker took them)

    @property
    def no_job_lost(self) -> bool:
        return self.lost == 0


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


def worker_env(url: str, log_dir: str | None = None, **extra: str) -> dict[str, str]:
    env = {**os.environ, "STOCKQ_DATABASE_URL": url, "STOCKQ_JOBS": "benchjobs",
           "PYTHONPATH": os.pathsep.join([str(BENCH), os.environ.get("PYTHONPATH", "")]), **extra}  # fmt: skip
    if log_dir is not None:
        env["STOCKQ_BENCH_LOG_DIR"] = log_dir
    return env


def worker_command(url: str) -> list[str]:
    """stockq's worker with its default settings; quiet, and on SQLite polling every 10 ms (as huey does here)."""
    command = [sys.executable, "-m", "stockq", "queue", "work", "-q"]
    if url.startswith("sqlite"):
        command.append("--sleep=0.01")
    return command


def start_workers(url: str, count: int, log_dir: str, **extra_env: str) -> list[subprocess.Popen[bytes]]:
    """Start ``count`` workers and wait until every one has registered."""
    procs = [
        subprocess.Popen(worker_command(url), env=worker_env(url, log_dir, **extra_env), stdout=subprocess.DEVNULL)
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


def wait_until_drained(url: str, timeout: float = 600) -> float:
    """perf_counter time at which the jobs table was first seen empty."""
    engine = db.get_engine(url)
    deadline = time.monotonic() + timeout
    with engine.connect() as conn:
        while time.monotonic() < deadline:
            if conn.execute(sa.text("SELECT 1 FROM jobs LIMIT 1")).first() is None:
                return time.perf_counter()
            conn.rollback()  # a fresh snapshot for the next poll
            time.sleep(POLL_SECONDS)
    raise SystemExit("jobs were not drained in time")


def executions(log_dir: str) -> collections.Counter[str]:
    """How many times each job uuid ran, from the CountedNoop logs."""
    counts: collections.Counter[str] = collections.Counter()
    for path in Path(log_dir).glob("*.log"):
        counts.update(line for line in path.read_text().splitlines() if line)
    return counts


def failed_count(url: str) -> int:
    with db.get_engine(url).connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM failed_jobs")).scalar_one())


def single_dispatch(backend: str, pg: str, n: int) -> float:
    """Jobs/s dispatched one at a time (each its own committed insert)."""
    with fresh_database(backend, pg) as url:
        api.dispatch(benchjobs.Noop(), database_url=url)  # engine and repository warm, as for the peers
        t0 = time.perf_counter()
        for _ in range(n):
            api.dispatch(benchjobs.Noop(), database_url=url)
        return n / (time.perf_counter() - t0)


def single_insert_reference(pg: str, n: int) -> float:
    """Rows/s of a plain durable single insert: one prepared INSERT of the same row into stockq's jobs table per
    autocommit transaction, notifying like stockq's, with psycopg's ``execute(prepare=True)``. A reference, not a
    floor: stockq's dispatch sends its prepared statement at the libpq level, which costs less client CPU."""
    with fresh_database("postgresql", pg) as url:
        _, payload = benchjobs.Noop().encoded()
        insert = (
            "INSERT INTO jobs (uuid, queue, payload, attempts, exceptions, available_at, created_at) "
            "SELECT %s, 'default', %s, 0, 0, 0, 0 FROM pg_notify('stockq_jobs', 'default')"
        )
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            conn.execute(insert, (str(uuid.uuid4()), payload), prepare=True)
            t0 = time.perf_counter()
            for _ in range(n):
                conn.execute(insert, (str(uuid.uuid4()), payload), prepare=True)
            return n / (time.perf_counter() - t0)


def bulk_dispatch(backend: str, pg: str, n: int) -> float:
    """Jobs/s of one dispatch_many of ``n`` jobs (building the job objects included)."""
    with fresh_database(backend, pg) as url:
        api.dispatch(benchjobs.Noop(), database_url=url)
        t0 = time.perf_counter()
        stockq.dispatch_many([benchjobs.Noop() for _ in range(n)], database_url=url)
        return n / (time.perf_counter() - t0)


def drain(backend: str, pg: str, n: int, workers: int) -> DrainRun:
    """Jobs/s from the commit of a bulk dispatch to an empty jobs table, with idle (warmed-up) workers waiting;
    every execution is logged, so the run also says whether each job ran exactly once."""
    with fresh_database(backend, pg) as url, tempfile.TemporaryDirectory() as log_dir:
        procs = start_workers(url, workers, log_dir)
        try:
            warm = stockq.dispatch_many([benchjobs.CountedNoop() for _ in range(workers)], database_url=url)
            wait_until_drained(url, timeout=120)
            time.sleep(0.3)  # back to idle
            uuids = stockq.dispatch_many([benchjobs.CountedNoop() for _ in range(n)], database_url=url)
            t0 = time.perf_counter()
            elapsed = wait_until_drained(url) - t0
        finally:
            stop_workers(procs)
        counts = executions(log_dir)
        for done in warm:
            counts.pop(done, None)
        missing = sum(1 for u in uuids if u not in counts)
        duplicates = sum(c - 1 for c in counts.values() if c > 1)
        return DrainRun(
            rate=n / elapsed, dispatched=n, executions=sum(counts.values()), missing=missing,
            duplicates=duplicates, failed=failed_count(url),
        )  # fmt: skip


def sqlite_crash_check(n: int, lease_seconds: int = 2) -> CrashCheck:
    """Start a SQLite worker draining ``n`` jobs, SIGKILL it mid-drain, restart it, and check that no job is lost:
    every dispatched job either ran (possibly twice) or is still in jobs or failed_jobs (retryable). The worker
    runs with its default settings (--tries=1), except short leases so that the jobs the killed worker held come
    back quickly."""
    with fresh_database("sqlite", DEFAULT_PG) as url, tempfile.TemporaryDirectory() as log_dir:
        uuids = stockq.dispatch_many([benchjobs.CountedNoop() for _ in range(n)], database_url=url)
        env = {"STOCKQ_LEASE_SECONDS": str(lease_seconds)}
        procs = start_workers(url, 1, log_dir, **env)
        deadline = time.monotonic() + 120
        while sum(executions(log_dir).values()) < n // 3 and time.monotonic() < deadline:
            time.sleep(0.005)
        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait()
        ran_before = sum(executions(log_dir).values())
        with db.get_engine(url).begin() as conn:  # the killed worker cannot unregister itself
            conn.execute(sa.text("DELETE FROM queue_workers"))
        restarted = start_workers(url, 1, log_dir, **env)
        try:
            wait_until_drained(url, timeout=120)
        finally:
            stop_workers(restarted)
        counts = executions(log_dir)
        with db.get_engine(url).connect() as conn:
            queued = set(conn.execute(sa.text("SELECT uuid FROM jobs")).scalars())
            failed = set(conn.execute(sa.text("SELECT uuid FROM failed_jobs")).scalars())
        lost = sum(1 for u in uuids if u not in counts and u not in queued and u not in failed)
        return CrashCheck(
            dispatched=n, ran_before_kill=ran_before, lost=lost,
            reruns=sum(c - 1 for c in counts.values() if c > 1), failed_unrun=len(failed - set(counts)),
        )  # fmt: skip


def pickup_latency(pg: str, samples: int) -> tuple[float, float]:
    """Idle pick-up latency (dispatch → handle starts) in ms on PostgreSQL: p50, p99."""
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


@dataclass(frozen=True)
class QueueSizes:
    single: int
    bulk: int
    drain: int
    latency_samples: int
    crash_jobs: int
    runs: int = 3

    @classmethod
    def for_run(cls, quick: bool) -> QueueSizes:
        if quick:
            return cls(single=200, bulk=1_000, drain=1_000, latency_samples=30, crash_jobs=1_000)
        return cls(single=2_000, bulk=10_000, drain=10_000, latency_samples=200, crash_jobs=5_000)


@dataclass(frozen=True)
class QueueFigures:
    """Everything run_all reports for stockq."""

    pg_single: float
    pg_single_reference: float
    pg_bulk: float
    pg_drain: dict[int, float]  # workers -> jobs/s
    pg_exactly_once: dict[int, bool]
    sqlite_single: float
    sqlite_bulk: float
    sqlite_drain: float
    sqlite_exactly_once: bool
    latency_p50_ms: float
    latency_p99_ms: float
    crash: CrashCheck


STOCKQ_PG = "stockq, PostgreSQL"
STOCKQ_SQLITE = "stockq, SQLite"
SINGLE_REFERENCE = "reference: one prepared INSERT per commit"


def _drain_figure(workers: int) -> str:
    return f"drain:{workers} worker{'s' if workers > 1 else ''}"


def measurements(pg: str, sizes: QueueSizes, drains: dict[tuple[str, int], list[DrainRun]]) -> list[Measurement]:
    """stockq's interleavable figures (and the single-dispatch reference); every drain run is also kept in
    ``drains`` for its exactly-once check."""

    def drain_rate(backend: str, workers: int) -> Callable[[], float]:
        def run() -> float:
            result = drain(backend, pg, sizes.drain, workers)
            drains.setdefault((backend, workers), []).append(result)
            return result.rate

        return run

    return [
        Measurement(STOCKQ_PG, "single", lambda: single_dispatch("postgresql", pg, sizes.single)),
        Measurement(SINGLE_REFERENCE, "single", lambda: single_insert_reference(pg, sizes.single)),
        Measurement(STOCKQ_SQLITE, "single", lambda: single_dispatch("sqlite", pg, sizes.single)),
        Measurement(STOCKQ_PG, "bulk", lambda: bulk_dispatch("postgresql", pg, sizes.bulk)),
        Measurement(STOCKQ_SQLITE, "bulk", lambda: bulk_dispatch("sqlite", pg, sizes.bulk)),
        *(Measurement(STOCKQ_PG, _drain_figure(w), drain_rate("postgresql", w)) for w in WORKER_COUNTS),
        Measurement(STOCKQ_SQLITE, _drain_figure(1), drain_rate("sqlite", 1)),
    ]


def measure(
    pg: str, sizes: QueueSizes, *, log: Callable[[str], None] = print, also: Sequence[Measurement] = ()
) -> tuple[QueueFigures, dict[tuple[str, str], list[float]]]:
    """Every stockq figure, each the median of sizes.runs runs, interleaved with ``also`` (the peers' figures);
    returns stockq's figures and every sample."""
    drains: dict[tuple[str, int], list[DrainRun]] = {}
    samples = interleaved([*measurements(pg, sizes, drains), *also], sizes.runs, log)
    log("stockq: pick-up latency")
    p50, p99 = pickup_latency(pg, sizes.latency_samples)
    log("stockq: SQLite crash check")
    crash = sqlite_crash_check(sizes.crash_jobs)

    def median(system: str, figure: str) -> float:
        return statistics.median(samples[(system, figure)])

    return QueueFigures(
        pg_single=median(STOCKQ_PG, "single"), pg_single_reference=median(SINGLE_REFERENCE, "single"),
        pg_bulk=median(STOCKQ_PG, "bulk"),
        pg_drain={w: median(STOCKQ_PG, _drain_figure(w)) for w in WORKER_COUNTS},
        pg_exactly_once={w: all(r.exactly_once for r in drains[("postgresql", w)]) for w in WORKER_COUNTS},
        sqlite_single=median(STOCKQ_SQLITE, "single"), sqlite_bulk=median(STOCKQ_SQLITE, "bulk"),
        sqlite_drain=median(STOCKQ_SQLITE, _drain_figure(1)),
        sqlite_exactly_once=all(r.exactly_once for r in drains[("sqlite", 1)]),
        latency_p50_ms=p50, latency_p99_ms=p99, crash=crash,
    ), samples  # fmt: skip


def markdown(figures: QueueFigures, sizes: QueueSizes) -> str:
    """stockq's own figures as markdown (run_all adds the peers and the ratios)."""
    once = all(figures.pg_exactly_once.values()) and figures.sqlite_exactly_once
    lines = [
        f"stockq queue — median of {sizes.runs}; single dispatch {sizes.single:,} jobs, bulk {sizes.bulk:,}, "
        f"drain {sizes.drain:,} no-op jobs",
        "",
        "| database | single dispatch/s | bulk dispatch/s | "
        + " | ".join(f"drain/s, {w} worker{'s' if w > 1 else ''}" for w in WORKER_COUNTS)
        + " |",
        "|---|---:|---:|" + "---:|" * len(WORKER_COUNTS),
        f"| PostgreSQL | {figures.pg_single:,.0f} | {figures.pg_bulk:,.0f} | "
        + " | ".join(f"{figures.pg_drain[w]:,.0f}" for w in WORKER_COUNTS)
        + " |",
        f"| SQLite | {figures.sqlite_single:,.0f} | {figures.sqlite_bulk:,.0f} | {figures.sqlite_drain:,.0f} |"
        + " - |" * (len(WORKER_COUNTS) - 1),
        "",
        f"Every job ran exactly once in every drain: {'yes' if once else 'NO'}.",
        f"Single dispatch reference on PostgreSQL (one prepared INSERT of the same row per autocommit transaction "
        f"with psycopg's execute, notifying like stockq's): {figures.pg_single_reference:,.0f}/s; "
        f"stockq's single dispatch is "
        f"{figures.pg_single / figures.pg_single_reference:.2f}x it.",
        f"Idle pick-up latency (PostgreSQL, {sizes.latency_samples} samples): p50 {figures.latency_p50_ms:.1f} ms, "
        f"p99 {figures.latency_p99_ms:.1f} ms.",
        f"SQLite crash check ({figures.crash.dispatched:,} jobs, worker SIGKILLed after "
        f"{figures.crash.ran_before_kill:,}, restarted): no job lost on a crash: "
        f"{'yes' if figures.crash.no_job_lost else 'NO'} ({figures.crash.lost} lost, {figures.crash.reruns} re-run, "
        f"{figures.crash.failed_unrun} moved to failed_jobs unrun, retryable with queue:retry).",
    ]
    return "\n".join(lines)


def profile_drain(pg: str, n: int, output: Path) -> str:
    """Drain ``n`` no-op jobs on PostgreSQL with one worker (--stop-when-empty) under pyinstrument; the text
    report goes to ``output``. Returns a summary line (the profiled rate, and the rate of the same drain without
    the profiler, worker start-up included in both)."""
    rates = []
    for profiled in (False, True):
        with fresh_database("postgresql", pg) as url:
            stockq.dispatch_many([benchjobs.Noop() for _ in range(n)], database_url=url)
            command = [sys.executable, "-m", "stockq", "queue", "work", "-q", "--stop-when-empty"]
            if profiled:
                command = [sys.executable, "-m", "pyinstrument", "-r", "text", "--no-color", "-o", str(output),
                           "-p", "processor_options.filter_threshold=0.005", *PROFILE_FLAGS, "-m", *command[2:]]  # fmt: skip
            t0 = time.perf_counter()
            subprocess.run(command, env=worker_env(url), stdout=subprocess.DEVNULL, check=True)
            rates.append(n / (time.perf_counter() - t0))
            with db.get_engine(url).connect() as conn:
                left = conn.execute(sa.text("SELECT count(*) FROM jobs")).scalar_one()
            if left or failed_count(url):
                raise SystemExit(f"profile drain left {left} jobs, {failed_count(url)} failed")
    return (
        f"{n:,} no-op jobs, one worker, --stop-when-empty (start-up included): {rates[0]:,.0f} jobs/s without the "
        f"profiler, {rates[1]:,.0f} jobs/s under pyinstrument; report in {output}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument("--pg-url", default=os.environ.get("STOCKQ_BENCH_PG_URL", DEFAULT_PG))
    parser.add_argument(
        "--profile", type=int, metavar="N", help="only profile one worker draining N jobs on PostgreSQL (pyinstrument)"
    )
    parser.add_argument(
        "--profile-output", type=Path, default=Path(tempfile.gettempdir()) / "stockq-worker-profile.txt"
    )
    args = parser.parse_args()
    if args.profile:
        print(profile_drain(args.pg_url, args.profile, args.profile_output))
        return
    sizes = QueueSizes.for_run(args.quick)
    figures, _ = measure(args.pg_url, sizes, log=lambda m: print(m, file=sys.stderr))
    print(
        f"\n{platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}, SQLAlchemy {sa.__version__}\n"
    )
    print(markdown(figures, sizes))


if __name__ == "__main__":
    main()
