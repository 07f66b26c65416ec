from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from stockq import db
from stockq.queue.registry import default_registry
from stockq.queue.repository import JobRepository
from stockq.queue.worker import JobEvent, Worker, WorkerOptions
from tests.support import testjobs


@pytest.fixture
def repo(db_url: str, monkeypatch: pytest.MonkeyPatch) -> JobRepository:
    monkeypatch.setenv("STOCKQ_DATABASE_URL", db_url)
    testjobs.create_runs_table(db_url)
    return JobRepository(db.get_engine(db_url), lease_seconds=30)


@pytest.fixture
def run_worker(repo: JobRepository) -> Iterator[Callable[..., tuple[int, list[JobEvent], Worker]]]:
    """Run an in-process worker with the given options; returns (exit code, events, worker)."""

    def run(**options: object) -> tuple[int, list[JobEvent], Worker]:
        events: list[JobEvent] = []
        opts = {"stop_when_empty": True, "sleep": 0.05, **options}
        worker = Worker(repo, default_registry, WorkerOptions(**opts), on_event=events.append)  # type: ignore[arg-type]
        code = worker.run()
        return code, events, worker

    yield run
