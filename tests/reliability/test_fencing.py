"""What a worker does after it fenced itself (its heartbeat could not renew the leases in time).

Found by the SQLite chaos run with a 2 s lease: under write contention a heartbeat came late, the worker fenced,
and afterwards (1) a job that had already succeeded ran a second time, and (2) the interrupted job stayed reserved
by the live worker, whose heartbeat kept renewing its lease, so no worker ever ran it again. These in-process tests
reproduce both deterministically: the heartbeat fails while a job runs until the fence interrupts it.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
import sqlalchemy.exc

from stockq import db
from stockq.queue.models import jobs as jobs_table
from stockq.queue.registry import default_registry
from stockq.queue.repository import Heartbeat, JobRepository
from stockq.queue.worker import Worker, WorkerOptions
from tests.reliability import jobs as rjobs
from tests.support.testjobs import Noop

# Fencing starts 3.75 s after the last renewal; the lease lasts 6 s from it and the next heartbeat comes at most
# 1.5 s after the fence, so the heartbeat always renews the lease before it could expire.
LEASE = 6
pytestmark = pytest.mark.slow


class OutageRepository(JobRepository):
    """The heartbeat fails while ``rjobs.heartbeat_broken`` is set, as during a database outage."""

    def heartbeat(self, worker_id: str, *, current_job: str | None, status: str, jobs_processed: int) -> Heartbeat:
        if rjobs.heartbeat_broken:
            raise sqlalchemy.exc.OperationalError("UPDATE queue_workers", {}, Exception("simulated outage"))
        return super().heartbeat(worker_id, current_job=current_job, status=status, jobs_processed=jobs_processed)


def _rows(url: str) -> dict[str, str | None]:
    with db.get_engine(url).connect() as conn:
        return {r.uuid: r.reserved_by for r in conn.execute(sa.select(jobs_table.c.uuid, jobs_table.c.reserved_by))}


def _worker(url: str, logs: list[str], **options: object) -> Worker:
    repo = OutageRepository(db.get_engine(url), lease_seconds=LEASE)
    return Worker(repo, default_registry, WorkerOptions(sleep=0.05, tries=0, **options), on_log=logs.append)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _reset() -> None:
    rjobs.heartbeat_broken = False
    rjobs.fenced_runs.clear()


def test_a_fence_does_not_drop_acknowledgements_of_finished_jobs(db_url: str) -> None:
    first, second = Noop().dispatch(database_url=db_url), Noop().dispatch(database_url=db_url)
    fenced = rjobs.FencedOnce(seconds=6).dispatch(database_url=db_url)
    logs: list[str] = []
    _worker(db_url, logs, stop_when_empty=True).run()
    assert any("Leases could not be renewed" in line for line in logs), logs  # the fence did happen
    # The fenced job is handed back at once (its attempt counted) and runs again; the finished ones do not.
    assert rjobs.fenced_runs == [(fenced, 1), (fenced, 2)]
    rows = _rows(db_url)
    assert first not in rows
    assert second not in rows, "the second Noop succeeded, yet its row is still queued and will run again"


def test_a_fenced_job_runs_again_while_its_worker_lives(db_url: str) -> None:
    fenced = rjobs.FencedOnce(seconds=6).dispatch(database_url=db_url)
    logs: list[str] = []
    _worker(db_url, logs, max_time=8).run()
    assert any("Leases could not be renewed" in line for line in logs), logs
    assert rjobs.fenced_runs[:1] == [(fenced, 1)]
    assert (fenced, 2) in rjobs.fenced_runs, f"never re-run; row: {_rows(db_url)}"
