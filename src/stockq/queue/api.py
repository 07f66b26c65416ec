"""Dispatch from Python: ``Job(...).dispatch()``, ``stockq.dispatch(job)``, ``stockq.dispatch_many(jobs)``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from sqlalchemy.engine import Connection

from stockq import db, errors, schema
from stockq.queue.repository import JobRepository, NewJob
from stockq.settings import Settings

if TYPE_CHECKING:
    from stockq.queue.job import Job


def repository(database_url: str | None = None, *, settings: Settings | None = None) -> JobRepository:
    """The job repository of the configured database (STOCKQ_DATABASE_URL unless given)."""
    settings = settings or Settings.from_env()
    engine = db.get_engine(database_url or settings.database_url)
    schema.ensure_current(engine)
    return JobRepository(engine, lease_seconds=settings.lease_seconds, connection_name=settings.connection_name)


def new_job(job: Job, *, queue: str | None = None, delay: int = 0) -> NewJob:
    if delay < 0:
        raise errors.InvalidInput("The delay cannot be negative")
    envelope = job.envelope(delay=delay)
    return NewJob(uuid=envelope.uuid, queue=queue or job.queue, payload=envelope.encode(), delay=delay)


def dispatch(
    job: Job,
    *,
    queue: str | None = None,
    delay: int = 0,
    database_url: str | None = None,
    conn: Connection | None = None,
) -> str:
    """Queue one job and return its uuid. With ``conn`` the job is inserted in that open transaction, so it
    becomes visible only if the transaction commits."""
    item = new_job(job, queue=queue, delay=delay)
    repo = repository(database_url) if conn is None else _repository_for(conn)
    return repo.push(item, conn=conn)


def dispatch_many(
    jobs: Iterable[Job],
    *,
    queue: str | None = None,
    delay: int = 0,
    database_url: str | None = None,
    conn: Connection | None = None,
) -> list[str]:
    """Queue many jobs in one statement; returns their uuids in order."""
    items = [new_job(job, queue=queue, delay=delay) for job in jobs]
    repo = repository(database_url) if conn is None else _repository_for(conn)
    repo.push_many(items, conn=conn)
    return [item.uuid for item in items]


def _repository_for(conn: Connection) -> JobRepository:
    return JobRepository(conn.engine)
