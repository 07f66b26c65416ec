"""The queue's promises with real worker processes, real signals and real databases."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import stockq
from stockq import db
from stockq.queue import api
from stockq.queue.repository import COPY_THRESHOLD, JobRepository
from tests.support import testjobs
from tests.support.testjobs import Noop, Record, SleepPython, Stuck

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture
def spawn(
    db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    monkeypatch.setenv("STOCKQ_DATABASE_URL", db_url)
    testjobs.create_runs_table(db_url)
    procs: list[subprocess.Popen[str]] = []

    def start(*args: str, lease: int = 30) -> subprocess.Popen[str]:
        env = {**os.environ, "STOCKQ_DATABASE_URL": db_url, "STOCKQ_JOBS": "tests.support.testjobs",
               "STOCKQ_LEASE_SECONDS": str(lease), "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}  # fmt: skip
        proc = subprocess.Popen(
            [sys.executable, "-m", "stockq", "queue", "work", "--sleep=0.1", *args],
            env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if proc.stdout:
            proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()


def wait_for(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def repo(db_url: str) -> JobRepository:
    return JobRepository(db.get_engine(db_url))


def test_four_workers_run_two_thousand_jobs_exactly_once(
    db_url: str, spawn: Callable[..., subprocess.Popen[str]]
) -> None:
    api.dispatch_many([Record(key=f"job-{i}") for i in range(2000)])
    workers = [spawn("--stop-when-empty", "-q") for _ in range(4)]
    for proc in workers:
        assert proc.wait(timeout=240) == 0, proc.stderr.read() if proc.stderr else ""
    runs = testjobs.runs(db_url)
    keys = [r.key for r in runs]
    assert len(keys) == 2000 and len(set(keys)) == 2000
    assert all(r.finished is not None and r.attempt == 1 for r in runs)
    assert len({r.pid for r in runs}) >= 2  # the work was actually shared
    assert repo(db_url).counts() == [] and repo(db_url).failed() == []


def test_sigkilled_worker_job_runs_again_after_the_lease(
    db_url: str, spawn: Callable[..., subprocess.Popen[str]]
) -> None:
    Record(key="victim", first_seconds=60, seconds=0).dispatch()
    first = spawn("--tries=3", "-q", lease=2)
    wait_for(lambda: len(testjobs.runs(db_url)) == 1)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    killed_at = time.time()
    second = spawn("--tries=3", "-q", lease=2)
    wait_for(lambda: any(r.finished for r in testjobs.runs(db_url)), timeout=30)
    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=15) == 0
    run1, run2 = testjobs.runs(db_url)
    assert (run1.attempt, run1.finished, run1.pid) == (1, None, first.pid)
    assert (run2.attempt, run2.pid) == (2, second.pid) and run2.finished is not None
    assert run2.started >= killed_at
    assert repo(db_url).counts() == [] and repo(db_url).failed() == []


def test_sigterm_lets_the_current_job_finish(db_url: str, spawn: Callable[..., subprocess.Popen[str]]) -> None:
    Record(key="current", seconds=1.5).dispatch()
    Record(key="next").dispatch()
    worker = spawn("-q")
    wait_for(lambda: len(testjobs.runs(db_url)) == 1)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=20) == 0
    (run,) = testjobs.runs(db_url)
    assert run.key == "current" and run.finished is not None
    (counts,) = repo(db_url).counts()
    assert counts.pending == 1 and counts.reserved == 0  # the next job was not started and not held


def test_timeout_is_recorded_and_the_worker_keeps_serving(
    db_url: str, spawn: Callable[..., subprocess.Popen[str]]
) -> None:
    SleepPython(seconds=60).dispatch()
    Noop().dispatch()
    t0 = time.monotonic()
    worker = spawn("--timeout=1", "--stop-when-empty")
    assert worker.wait(timeout=30) == 0
    assert time.monotonic() - t0 < 20
    out = worker.stdout.read() if worker.stdout else ""
    assert "tests.Noop" in out and "DONE" in out
    (failed,) = repo(db_url).failed()
    assert "has timed out after 1 seconds" in failed.exception


def test_job_that_ignores_the_timeout_is_recorded_then_the_worker_exits_124(
    db_url: str, spawn: Callable[..., subprocess.Popen[str]]
) -> None:
    Stuck(seconds=60).dispatch()
    worker = spawn("--timeout=1", "--stop-when-empty", "-q")
    assert worker.wait(timeout=30) == 124
    (failed,) = repo(db_url).failed()
    assert "did not stop" in failed.exception
    assert repo(db_url).counts() == []


def test_queue_restart_stops_a_running_worker(db_url: str, spawn: Callable[..., subprocess.Popen[str]]) -> None:
    from stockq.queue import commands

    worker = spawn("--queue=import", lease=4)
    wait_for(lambda: len(repo(db_url).workers()) == 1)
    (info,) = repo(db_url).workers()
    assert info.pid == worker.pid and info.queues == "import"
    with open(f"/proc/{worker.pid}/cmdline", "rb") as cmdline:
        assert b"stockq queue:work --queue=import" in cmdline.read()
    commands.restart(repo(db_url))
    assert worker.wait(timeout=15) == 0
    assert repo(db_url).workers() == []


def test_sigusr2_pauses_and_sigcont_resumes(db_url: str, spawn: Callable[..., subprocess.Popen[str]]) -> None:
    worker = spawn("-q", lease=4)
    wait_for(lambda: len(repo(db_url).workers()) == 1)
    worker.send_signal(signal.SIGUSR2)
    time.sleep(0.5)
    Record(key="while-paused").dispatch()
    time.sleep(1.5)
    assert testjobs.runs(db_url) == []
    worker.send_signal(signal.SIGCONT)
    wait_for(lambda: len(testjobs.runs(db_url)) == 1, timeout=15)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=15) == 0


def test_idle_worker_on_postgresql_starts_a_new_job_within_milliseconds(
    pg_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("STOCKQ_DATABASE_URL", pg_url)
    testjobs.create_runs_table(pg_url)
    env = {
        **os.environ,
        "STOCKQ_DATABASE_URL": pg_url,
        "STOCKQ_JOBS": "tests.support.testjobs",
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "stockq", "queue", "work", "--sleep=30", "-q"], env=env, cwd=tmp_path,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for(lambda: len(repo(pg_url).workers()) == 1)
        time.sleep(1.0)  # the worker is now waiting on LISTEN, with 30 s of --sleep ahead
        latencies = []
        for i in range(5):
            t0 = time.time()
            Record(key=f"k{i}").dispatch()
            wait_for(lambda n=i: len(testjobs.runs(pg_url)) == n + 1, timeout=10)
            latencies.append(testjobs.runs(pg_url)[-1].started - t0)
        assert max(latencies) < 1.0, latencies
        # A small batch (one INSERT per job) and a COPY batch wake it too, once their rows are committed (the
        # COPY takes long enough for a worker woken before its commit to find nothing).
        for size in (3, 40 * COPY_THRESHOLD):
            done = len(testjobs.runs(pg_url))
            t0 = time.time()
            stockq.dispatch_many([Record(key=f"b{size}-{i}") for i in range(size)])
            wait_for(lambda n=done + size: len(testjobs.runs(pg_url)) == n, timeout=10)
            assert testjobs.runs(pg_url)[done].started - t0 < 1.0, size
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=15) == 0


def test_a_job_longer_than_the_lease_keeps_its_lease_and_runs_once(
    db_url: str, spawn: Callable[..., subprocess.Popen[str]]
) -> None:
    Record(key="long", seconds=5).dispatch()
    runner = spawn("--stop-when-empty", "--timeout=30", "-q", lease=2)
    wait_for(lambda: len(testjobs.runs(db_url)) == 1)
    thief = spawn("--max-time=7", "--timeout=30", "-q", lease=2)  # polls while the lease would have expired
    assert runner.wait(timeout=60) == 0
    assert thief.wait(timeout=60) == 0
    (run,) = testjobs.runs(db_url)
    assert run.finished is not None and run.attempt == 1
    assert repo(db_url).counts() == [] and repo(db_url).failed() == []
