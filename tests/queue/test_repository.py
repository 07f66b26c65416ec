from __future__ import annotations

import json

import sqlalchemy as sa

from stockq.queue import api
from stockq.queue.models import failed_jobs, jobs
from stockq.queue.repository import JobRepository
from tests.support.testjobs import Noop


def _push(repo: JobRepository, n: int = 1, *, queue: str = "default", delay: int = 0) -> list[str]:
    return repo_dispatch(repo, [Noop(i=i) for i in range(n)], queue=queue, delay=delay)


def repo_dispatch(repo: JobRepository, items: list[Noop], *, queue: str, delay: int = 0) -> list[str]:
    new = [api.new_job(job, queue=queue, delay=delay) for job in items]
    repo.push_many(new)
    return [n.uuid for n in new]


def test_reserve_is_fifo_and_counts_the_attempt(repo: JobRepository) -> None:
    uuids = _push(repo, 3)
    got = repo.reserve("default", "w1", limit=2)
    assert [j.uuid for j in got] == uuids[:2]
    assert all(j.attempts == 1 for j in got)
    assert [j.uuid for j in repo.reserve("default", "w2", limit=5)] == uuids[2:]
    assert repo.reserve("default", "w3") == []


def test_delayed_jobs_wait_and_other_queues_are_untouched(repo: JobRepository) -> None:
    _push(repo, 1, delay=3600)
    _push(repo, 1, queue="import")
    assert repo.reserve("default", "w1") == []
    counts = {c.queue: c for c in repo.counts()}
    assert counts["default"].delayed == 1 and counts["default"].pending == 0
    assert counts["import"].pending == 1


def test_only_the_lease_holder_can_acknowledge(repo: JobRepository) -> None:
    _push(repo, 1)
    (job,) = repo.reserve("default", "w1")
    assert repo.delete([job.id], "w2") == 0
    assert not repo.release(job.id, "w2", delay=0, after_exception=True)
    assert not repo.fail(job.id, "w2", "nope")
    assert repo.delete([job.id], "w1") == 1


def test_expired_lease_goes_to_another_worker_and_the_first_loses_it(repo: JobRepository) -> None:
    _push(repo, 1)
    (job,) = repo.reserve("default", "w1")
    with repo.engine.begin() as conn:
        conn.execute(sa.update(jobs).values(lease_expires_at=jobs.c.lease_expires_at - 3600))
    (again,) = repo.reserve("default", "w2")
    assert again.id == job.id
    assert again.attempts == 2
    assert repo.delete([job.id], "w1") == 0
    assert repo.delete([job.id], "w2") == 1


def test_renewed_lease_is_not_taken(repo: JobRepository) -> None:
    _push(repo, 1)
    repo.reserve("default", "w1")
    with repo.engine.begin() as conn:
        conn.execute(sa.update(jobs).values(lease_expires_at=jobs.c.lease_expires_at - 3600))
    assert repo.renew_leases("w1") == 1
    assert repo.reserve("default", "w2") == []


def test_release_keeps_the_id_and_fail_moves_atomically(repo: JobRepository) -> None:
    (uuid,) = _push(repo, 1)
    (job,) = repo.reserve("default", "w1")
    assert repo.release(job.id, "w1", delay=0, after_exception=True)
    (again,) = repo.reserve("default", "w1")
    assert again.id == job.id and again.exceptions == 1 and again.attempts == 2
    assert repo.fail(again.id, "w1", "RuntimeError: boom\nTraceback...")
    with repo.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(jobs)).scalar() == 0
        row = conn.execute(sa.select(failed_jobs)).one()
    assert row.uuid == uuid and row.connection == "database" and row.queue == "default"
    assert json.loads(row.payload)["uuid"] == uuid
    assert "boom" in row.exception


def test_unreserve_returns_unstarted_jobs_without_counting_an_attempt(repo: JobRepository) -> None:
    _push(repo, 2)
    got = repo.reserve("default", "w1", limit=2)
    assert repo.unreserve([j.id for j in got], "w1") == 2
    again = repo.reserve("default", "w2", limit=2)
    assert [j.attempts for j in again] == [1, 1]


def test_retry_puts_the_payload_back_and_forgets_the_failure(repo: JobRepository) -> None:
    (uuid,) = _push(repo, 1)
    (job,) = repo.reserve("default", "w1")
    repo.fail(job.id, "w1", "boom")
    assert repo.retry(uuid) == "default"
    assert repo.retry(uuid) is None
    assert repo.failed() == []
    (again,) = repo.reserve("default", "w1")
    assert again.uuid == uuid and again.attempts == 1


def test_clear_keeps_jobs_that_live_workers_run(repo: JobRepository) -> None:
    _push(repo, 3)
    _push(repo, 2, queue="import")
    repo.reserve("default", "w1")
    deleted, kept = repo.clear(["default"])
    assert (deleted, kept) == (2, 1)
    assert repo.clear(None) == (2, 1)


def test_bulk_dispatch_is_one_statement_for_thousands(repo: JobRepository) -> None:
    uuids = _push(repo, 5000)
    assert len(set(uuids)) == 5000
    assert repo.counts(["default"])[0].pending == 5000


def test_dispatch_inside_a_caller_transaction_commits_with_it(repo: JobRepository) -> None:
    with repo.engine.connect() as conn:
        trans = conn.begin()
        api.dispatch(Noop(), conn=conn)
        trans.rollback()
    assert repo.counts(["default"])[0].pending == 0
    with repo.engine.begin() as conn:
        api.dispatch(Noop(), conn=conn)
    assert repo.counts(["default"])[0].pending == 1


def test_bulk_dispatch_through_copy_keeps_the_callers_transaction_and_delays(repo: JobRepository) -> None:
    jobs_now = [Noop(i=i) for i in range(120)]
    with repo.engine.connect() as conn:
        trans = conn.begin()
        api.dispatch_many(jobs_now, conn=conn)
        trans.rollback()
    assert repo.counts() == []
    with repo.engine.begin() as conn:
        api.dispatch_many(jobs_now, conn=conn, delay=3600)
    (counts,) = repo.counts()
    assert counts.delayed == 120 and counts.pending == 0
    uuids = api.dispatch_many([Noop(i=i) for i in range(60)], database_url=str(repo.engine.url.render_as_string(False)))
    got = repo.reserve("default", "w", limit=100)
    assert [j.uuid for j in got] == uuids


def test_a_dead_workers_rows_count_the_attempt_when_reclaimed(repo: JobRepository) -> None:
    _push(repo, 2)
    repo.reserve("default", "dead", limit=2)
    with repo.engine.begin() as conn:
        conn.execute(sa.update(jobs).values(lease_expires_at=jobs.c.lease_expires_at - 3600))
    again = repo.reserve("default", "w2", limit=2)
    assert [j.attempts for j in again] == [2, 2]
