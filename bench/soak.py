"""Soak: N jobs over W worker processes on PostgreSQL, with throughput, dispatch-to-start latency and worker RSS.

    python bench/soak.py [--jobs 100000] [--workers 4] [--pg-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]
                         [--rate 0] [--quick]

A fresh database is created on the server (and dropped afterwards). The workers start first and run one warm-up
job each; then the jobs are dispatched in chunks of 1,000 (--rate 0: as fast as possible, a backlog soak; --rate R:
R jobs per second, so that latency is measured below saturation). Each job (tests.reliability.jobs.Soak) carries its
dispatch time in its payload and appends (uuid, dispatched_at, started) to a per-process file: latency is started -
dispatched_at. Throughput is jobs / (first dispatch -> jobs table empty). RSS is each worker's VmRSS (and RssAnon,
the heap --memory watches) read from /proc/<pid>/status by this process after the warm-up and after the drain.
The run also checks exactly-once: every uuid appears once in the files and failed_jobs is empty.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.reliability import jobs as rjobs  # noqa: E402

import stockq  # noqa: E402
from stockq import db, schema  # noqa: E402
from stockq.queue.repository import JobRepository  # noqa: E402

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
CHUNK = 1000


@dataclass(frozen=True)
class Memory:
    vm_rss_mb: float
    rss_anon_mb: float


def read_memory(pid: int) -> Memory:
    """VmRSS and RssAnon of a process, in MB, from /proc/<pid>/status."""
    fields: dict[str, float] = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "RssAnon"):
                fields[name] = int(rest.split()[0]) / 1024
    return Memory(vm_rss_mb=fields["VmRSS"], rss_anon_mb=fields["RssAnon"])


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def queued(repo: JobRepository) -> int:
    return sum(c.size for c in repo.counts())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--pg-url", default=os.environ.get("STOCKQ_TEST_PG_URL", DEFAULT_PG))
    parser.add_argument("--rate", type=float, default=0, help="jobs per second to dispatch (0: all at once)")
    parser.add_argument("--quick", action="store_true", help="2,000 jobs: check that the script works")
    args = parser.parse_args()
    total = 2000 if args.quick else args.jobs

    admin = sa.create_engine(args.pg_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    name = f"stockq_soak_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.engine.make_url(args.pg_url).set(database=name).render_as_string(hide_password=False)
    soak_dir = Path(tempfile.mkdtemp(prefix="stockq-soak-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        schema.upgrade(db.create(url))
        repo = JobRepository(db.get_engine(url))
        env = {
            **os.environ, "STOCKQ_DATABASE_URL": url, "STOCKQ_JOBS": "tests.reliability.jobs",
            "STOCKQ_SOAK_DIR": str(soak_dir), "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        }  # fmt: skip
        command = [sys.executable, "-m", "stockq", "queue", "work", "-q", "--tries=1"]
        for _ in range(args.workers):
            procs.append(
                subprocess.Popen(command, env=env, cwd=soak_dir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            )
        while len(repo.workers()) < args.workers:
            time.sleep(0.1)
        warmup = stockq.dispatch_many(
            [rjobs.Soak(dispatched_at=time.time()) for _ in range(args.workers * 4)], database_url=url
        )
        while queued(repo):
            time.sleep(0.05)
        time.sleep(0.5)
        rss_start = {p.pid: read_memory(p.pid) for p in procs}

        uuids: list[str] = []
        t0 = time.time()
        interval = CHUNK / args.rate if args.rate > 0 else 0.0
        while len(uuids) < total:
            n = min(CHUNK, total - len(uuids))
            if args.rate > 0:
                n = max(1, min(n, int(args.rate * 0.05)))
            uuids += stockq.dispatch_many([rjobs.Soak(dispatched_at=time.time()) for _ in range(n)], database_url=url)
            if interval:
                time.sleep(max(0.0, t0 + len(uuids) / args.rate - time.time()))
        dispatched = time.time()
        while queued(repo):
            time.sleep(0.01)
        drained = time.time()
        rss_end = {p.pid: read_memory(p.pid) for p in procs}
        failed = len(repo.failed())
        exited = [p.poll() for p in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        db.dispose_engines()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    starts: dict[str, float] = {}
    executions = 0
    latencies: list[float] = []
    wanted = set(uuids)
    for path in soak_dir.glob("*.txt"):
        for line in path.read_text().splitlines():
            job_uuid, dispatched_at, started = line.split()
            if job_uuid in wanted:
                executions += 1
                starts[job_uuid] = float(started)
                latencies.append(float(started) - float(dispatched_at))
    for path in soak_dir.glob("*.txt"):
        path.unlink()
    soak_dir.rmdir()
    _ = warmup

    elapsed = drained - t0
    mode = f"{args.rate:g} jobs/s offered" if args.rate > 0 else "backlog (all dispatched at once)"
    print(f"stockq soak on PostgreSQL: {total:,} jobs, {args.workers} workers, {mode}, {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.2f}")  # fmt: skip
    print()
    print("| figure | value |")
    print("|---|---|")
    print(f"| throughput (first dispatch -> queue empty) | {total / elapsed:,.0f} jobs/s ({elapsed:.1f} s) |")
    print(f"| dispatch time | {dispatched - t0:.1f} s |")
    print(f"| latency dispatch -> start p50 | {statistics.median(latencies) * 1000:,.1f} ms |")
    print(f"| latency dispatch -> start p99 | {percentile(latencies, 0.99) * 1000:,.1f} ms |")
    print(f"| latency dispatch -> start max | {max(latencies) * 1000:,.1f} ms |")
    print(f"| executions / distinct / missing | {executions:,} / {len(starts):,} / {total - len(starts):,} |")
    print(f"| failed_jobs | {failed} |")
    print(f"| workers still running at the end | {sum(1 for e in exited if e is None)} of {args.workers} |")
    print()
    print("| worker pid | VmRSS start | VmRSS end | RssAnon start | RssAnon end |")
    print("|---|---|---|---|---|")
    for pid, start in rss_start.items():
        end = rss_end[pid]
        print(f"| {pid} | {start.vm_rss_mb:.1f} MB | {end.vm_rss_mb:.1f} MB | {start.rss_anon_mb:.1f} MB | "
              f"{end.rss_anon_mb:.1f} MB |")  # fmt: skip
    ok = executions == total and len(starts) == total and failed == 0
    print()
    print("exactly once: yes" if ok else "exactly once: NO")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
