"""A worker over --memory exits 12 after its job; a supervisor-style loop restarts it until the queue is empty."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

import stockq
from stockq import db
from stockq.queue.repository import JobRepository
from tests.reliability import jobs as rjobs
from tests.reliability.conftest import Spawner

pytestmark = pytest.mark.slow

MEMORY_MB = 110  # a fresh worker holds ~65-75 MB (RssAnon); two 30 MB hogs pass the limit
HOG_MB = 30


def _runs_by_pid(path: Path) -> dict[int, list[str]]:
    by_pid: dict[int, list[str]] = defaultdict(list)
    for line in path.read_text().splitlines():
        kind, uuid, _attempt, pid, _at = line.split()
        if kind == "end":
            by_pid[int(pid)].append(uuid)
    return by_pid


def test_memory_limit_exit_12_and_supervisor_restart_drain_the_queue(
    db_url: str, spawn: Spawner, tmp_path: Path
) -> None:
    runs_file = tmp_path / "runs.txt"
    batch: list[stockq.Job] = []
    for _ in range(6):
        batch.append(rjobs.FileHog(path=str(runs_file), mb=HOG_MB))
        batch.extend(rjobs.FileRecord(path=str(runs_file), seconds=0) for _ in range(3))
    uuids = stockq.dispatch_many(batch, database_url=db_url)
    hogs = {u for u, job in zip(uuids, batch, strict=True) if isinstance(job, rjobs.FileHog)}
    repo = JobRepository(db.get_engine(db_url))

    exits: list[tuple[int, int]] = []  # (pid, exit code), as supervisor would see them
    while len(exits) < 20:
        proc = spawn(db_url, f"--memory={MEMORY_MB}", "--stop-when-empty", "-q")
        code = proc.wait(timeout=60)
        exits.append((proc.pid, code))
        if code != 12:  # supervisor restarts on 12 (and on anything else); we stop at the clean exit
            break
    codes = [code for _, code in exits]
    print(f"\nmemory: worker exits={codes} jobs={len(uuids)} hogs={len(hogs)} x {HOG_MB} MB, --memory={MEMORY_MB}")
    assert codes[-1] == 0 and set(codes[:-1]) == {12} and len(codes) >= 3, codes
    assert repo.counts() == [] and repo.failed() == []
    by_pid = _runs_by_pid(runs_file)
    ran = [u for runs in by_pid.values() for u in runs]
    assert sorted(ran) == sorted(uuids), "every job ran exactly once across the restarts"
    for pid, code in exits:
        if code == 12:  # it stopped right after the job that took it over the limit: a hog, never a later job
            assert by_pid[pid] and by_pid[pid][-1] in hogs


def test_memory_exit_does_not_leave_the_next_job_reserved(sqlite_url: str, spawn: Spawner, tmp_path: Path) -> None:
    runs_file = tmp_path / "runs.txt"
    rjobs.FileHog(path=str(runs_file), mb=HOG_MB * 3).dispatch(database_url=sqlite_url)
    stockq.dispatch_many([rjobs.FileRecord(path=str(runs_file), seconds=0) for _ in range(5)], database_url=sqlite_url)
    proc = spawn(sqlite_url, f"--memory={MEMORY_MB}", "-q")
    assert proc.wait(timeout=60) == 12
    (counts,) = JobRepository(db.get_engine(sqlite_url)).counts()
    assert (counts.pending, counts.reserved) == (5, 0)  # prefetched rows were handed back at exit
