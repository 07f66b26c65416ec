"""Peer queues measured beside stockq: procrastinate, pgqueuer (psycopg and asyncpg), huey (SQLite).

Every system is measured the same way (see ``measure_drain``):

- single dispatch/s: N jobs dispatched one at a time, each its own committed insert, from one client process;
- bulk dispatch/s: 10,000 jobs with the system's batch API (one call; huey has none, so a loop of enqueues);
- drain/s: one worker process (the system's own worker, started as a separate process with its documented
  high-throughput settings) is already running and idle (it has run a warm-up job); the clock starts when a bulk
  dispatch of N no-op jobs has committed and stops when the system's queue table shows no job left to run
  (polled every 10 ms with a cheap ``LIMIT 1`` query).

Each figure is measured in a fresh database (``CREATE DATABASE`` on PostgreSQL, a new file on SQLite) that is
dropped afterwards; run_all reports the median of 3. Each peer module lists its measurements; ``interleaved`` runs
them in rounds (every measurement of every system once per round, like figures next to each other), so that a
change of load during a run falls on every system alike instead of on whichever was measured then.
"""

from __future__ import annotations

import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import psycopg

BENCH = Path(__file__).resolve().parent.parent
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
POLL_SECONDS = 0.01
DRAIN_TIMEOUT = 600.0
_logs: dict[int, IO[bytes]] = {}


@dataclass(frozen=True)
class Sizes:
    """How many jobs each measurement uses."""

    single: int
    bulk: int
    drain: int
    runs: int = 3

    @classmethod
    def for_run(cls, quick: bool) -> Sizes:
        return cls(single=200, bulk=1_000, drain=1_000) if quick else cls(single=2_000, bulk=10_000, drain=10_000)


@dataclass(frozen=True)
class PeerFigures:
    """One row of the peers table: dispatch rates (per driver) and drain rates (per worker setting)."""

    system: str
    single: float | None
    bulk: float | None
    drain: dict[str, float]  # setting label -> jobs/s


@dataclass(frozen=True)
class Measurement:
    """One figure of one system, measured by calling ``run`` (a rate: jobs/s)."""

    system: str
    figure: str  # "single", "bulk" or "drain:<setting>"
    run: Callable[[], float]


FIGURE_ORDER = ("single", "bulk", "drain")


def interleaved(
    measurements: list[Measurement], runs: int, log: Callable[[str], None] = lambda _m: None
) -> dict[tuple[str, str], list[float]]:
    """Run every measurement once per round, ``runs`` rounds; the same figure of all systems back to back (all
    single dispatches, then bulk, then drains). Returns the rates per (system, figure)."""
    ordered = sorted(measurements, key=lambda m: FIGURE_ORDER.index(m.figure.split(":", 1)[0]))
    samples: dict[tuple[str, str], list[float]] = {(m.system, m.figure): [] for m in ordered}
    for round_no in range(1, runs + 1):
        for m in ordered:
            log(f"round {round_no}/{runs}: {m.system}: {m.figure}")
            samples[(m.system, m.figure)].append(m.run())
    return samples


def figures_of(system: str, samples: dict[tuple[str, str], list[float]]) -> PeerFigures:
    """A system's row from interleaved samples: the median of each figure."""
    medians = {
        figure: statistics.median(measured)
        for (name, figure), rates in samples.items()
        if name == system and (measured := [r for r in rates if not math.isnan(r)])
    }
    return PeerFigures(
        system=system,
        single=medians.get("single"),
        bulk=medians.get("bulk"),
        drain={f.removeprefix("drain:"): rate for f, rate in medians.items() if f.startswith("drain:")},
    )


def libpq_url(url: str) -> str:
    """``postgresql+psycopg://…`` (SQLAlchemy) → ``postgresql://…`` (libpq, asyncpg)."""
    scheme, rest = url.split("://", 1)
    return f"{scheme.split('+', 1)[0]}://{rest}"


@contextmanager
def fresh_pg_database(admin_url: str, prefix: str) -> Iterator[str]:
    """A new, empty PostgreSQL database (libpq URL), dropped on exit."""
    admin = libpq_url(admin_url)
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = admin.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def wait_until(condition: Callable[[], bool], *, timeout: float = DRAIN_TIMEOUT, what: str = "condition") -> float:
    """Poll ``condition`` every POLL_SECONDS; the perf_counter time at which it first held."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return time.perf_counter()
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(POLL_SECONDS)


def pg_table_has_rows(url: str, query: str) -> Callable[[], bool]:
    """A cheap poll: True while ``query`` (a ``SELECT 1 … LIMIT 1``) returns a row; one connection kept open."""
    conn = psycopg.connect(url, autocommit=True)

    def check() -> bool:
        return conn.execute(query).fetchone() is not None

    check.close = conn.close  # type: ignore[attr-defined]
    return check


def spawn_worker(module: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """``python -m peers.<module> worker …`` as a separate process (bench/ on PYTHONPATH)."""
    full_env = {**os.environ, **(env or {})}
    full_env["PYTHONPATH"] = os.pathsep.join(p for p in (str(BENCH), full_env.get("PYTHONPATH", "")) if p)
    # stderr goes to a file, not a pipe: a worker that logs every job would block once a pipe's buffer is full.
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(
        [sys.executable, "-m", f"peers.{module}", "worker", *args], env=full_env, stdout=subprocess.DEVNULL, stderr=log
    )
    _logs[proc.pid] = log
    return proc


def stop_worker(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    log = _logs.pop(proc.pid, None)
    if log is not None:
        log.close()


def worker_log(proc: subprocess.Popen[bytes]) -> str:
    """The end of a worker's stderr."""
    log = _logs.get(proc.pid)
    if log is None:
        return ""
    log.seek(0)
    return log.read()[-3000:].decode(errors="replace")


def check_alive(proc: subprocess.Popen[bytes], name: str) -> None:
    if proc.poll() is not None:
        raise SystemExit(f"{name} worker exited with {proc.returncode}:\n{worker_log(proc)}")


def measure_drain(
    *,
    name: str,
    start_worker: Callable[[], subprocess.Popen[bytes]],
    dispatch_bulk: Callable[[int], None],
    pending: Callable[[], bool],
    n: int,
    stop: Callable[[subprocess.Popen[bytes]], None] = stop_worker,
) -> float:
    """Jobs/s from the commit of a bulk dispatch of ``n`` jobs to an empty queue, with an idle worker waiting.

    The worker first runs one warm-up job, so that start-up (imports, connections, LISTEN) is not timed."""
    proc = start_worker()
    try:
        dispatch_bulk(1)

        def warmed() -> bool:
            check_alive(proc, name)
            return not pending()

        wait_until(warmed, timeout=120, what=f"{name} warm-up job")
        time.sleep(0.3)  # back to idle
        dispatch_bulk(n)
        t0 = time.perf_counter()
        t1 = wait_until(lambda: not pending(), what=f"{name} drain")
        check_alive(proc, name)
    finally:
        stop(proc)
    return n / (t1 - t0)


def timed_rate(n: int, action: Callable[[], None]) -> float:
    t0 = time.perf_counter()
    action()
    return n / (time.perf_counter() - t0)


def median_of(runs: int, measure: Callable[[], float]) -> float:
    return statistics.median(measure() for _ in range(runs))
