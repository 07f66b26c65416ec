"""Real worker processes for the reliability suites."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
JOB_MODULES = "tests.reliability.jobs,tests.support.testjobs"


def worker_env(database_url: str, *, lease: int, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "STOCKQ_DATABASE_URL": database_url,
        "STOCKQ_JOBS": JOB_MODULES,
        "STOCKQ_LEASE_SECONDS": str(lease),
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        **extra,
    }


@dataclass
class Spawner:
    """Starts `stockq queue work` processes and kills whatever is left at teardown."""

    cwd: Path
    procs: list[subprocess.Popen[str]]
    logs: dict[int, Path] = field(default_factory=dict)

    def __call__(
        self, database_url: str, *args: str, lease: int = 10, capture: bool = False, **env: str
    ) -> subprocess.Popen[str]:
        """Start a worker. ``capture``: pipe its output; otherwise stderr (the worker's log lines) goes to
        ``stderr_of(proc)`` and stdout is discarded."""
        out = subprocess.PIPE if capture else subprocess.DEVNULL
        err = subprocess.PIPE if capture else open(self.cwd / f"worker-{len(self.procs)}.err", "w")
        proc = subprocess.Popen(
            [sys.executable, "-m", "stockq", "queue", "work", "--sleep=0.1", *args],
            env=worker_env(database_url, lease=lease, **env), cwd=self.cwd, stdout=out, stderr=err, text=True,
        )  # fmt: skip
        if not capture:
            err.close()  # type: ignore[union-attr]
            self.logs[proc.pid] = self.cwd / f"worker-{len(self.procs)}.err"
        self.procs.append(proc)
        return proc

    def stderr_of(self, pid: int) -> str:
        path = self.logs.get(pid)
        return path.read_text() if path and path.exists() else ""


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Spawner]:
    spawner = Spawner(cwd=tmp_path, procs=[])
    yield spawner
    for proc in spawner.procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream:
                stream.close()


def wait_for(condition: Callable[[], bool], timeout: float = 30, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout} s")
        time.sleep(0.05)


@dataclass(frozen=True)
class FileRun:
    uuid: str
    attempt: int
    pid: int
    started: float
    finished: float | None


def file_runs(path: Path) -> list[FileRun]:
    """The runs FileRecord jobs appended to ``path``: one per start line, with its end if it came."""
    if not path.exists():
        return []
    started: dict[tuple[str, int, int], float] = {}
    ended: dict[tuple[str, int, int], float] = {}
    for line in path.read_text().splitlines():
        kind, uuid, attempt, pid, at = line.split()
        key = (uuid, int(attempt), int(pid))
        (started if kind == "start" else ended)[key] = float(at)
    return [FileRun(u, a, p, t, ended.get((u, a, p))) for (u, a, p), t in started.items()]
