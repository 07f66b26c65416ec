"""Dispatch from Python: ``Job(...).dispatch()``, ``stockq.dispatch(job)``, ``stockq.dispatch_many(jobs)``."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, TypeVar

import sqlalchemy.exc
from sqlalchemy.engine import Connection

from stockq import db, errors, schema
from stockq.queue.repository import JobRepository, NewJob
from stockq.settings import Settings

if TYPE_CHECKING:
    from stockq.queue.job import Job

T = TypeVar("T")


_repositories: dict[str, JobRepository] = {}
_by_settings: dict[tuple[str, int, str], JobRepository] = {}


def _close_repositories() -> None:
    for repo in {*_repositories.values(), *_by_settings.values()}:
        repo.close()
    _repositories.clear()
    _by_settings.clear()


db.on_dispose(_close_repositories)


def repository(database_url: str | None = None, *, settings: Settings | None = None) -> JobRepository:
    """The job repository of the configured database (STOCKQ_DATABASE_URL unless given); one per process and
    database, so that its kept connections are reused."""
    cached = _repositories.get(database_url) if database_url is not None and settings is None else None
    if cached is not None:
        return cached
    settings = settings or Settings.from_env()
    url = database_url or settings.database_url
    key = (db.normalize_url(url), settings.lease_seconds, settings.connection_name)
    repo = _by_settings.get(key)
    if repo is None:
        engine = db.get_engine(url)
        schema.ensure_current(engine)
        repo = _by_settings.setdefault(
            key, JobRepository(engine, lease_seconds=settings.lease_seconds, connection_name=settings.connection_name)
        )
    if database_url is not None:
        _repositories[database_url] = repo
    return repo


def new_job(job: Job, *, queue: str | None = None, delay: int = 0) -> NewJob:
    if delay < 0:
        raise errors.InvalidInput("The delay cannot be negative")
    uuid, encoded = job.encoded(delay=delay)
    return NewJob(uuid=uuid, queue=queue or job.queue, payload=encoded, delay=delay)


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
    if conn is not None:
        return _repository_for(conn).push(item, conn=conn)
    return _retry_once_if_disconnected(lambda: repository(database_url).push(item))


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
    if conn is not None:
        _repository_for(conn).push_many(items, conn=conn)
    else:
        _retry_once_if_disconnected(lambda: repository(database_url).push_many(items))
    return [item.uuid for item in items]


def _retry_once_if_disconnected(operation: Callable[[], T]) -> T:
    """A pooled connection that the server dropped (restart, idle timeout) fails once and is discarded; the
    insert did not happen, so trying again on a fresh connection cannot queue the job twice."""
    try:
        return operation()
    except sqlalchemy.exc.DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        return operation()


def _repository_for(conn: Connection) -> JobRepository:
    return JobRepository(conn.engine)
