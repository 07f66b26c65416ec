"""Dispatch from Python: ``Job(...).dispatch()``, ``stockq.dispatch(job)``, ``stockq.dispatch_many(jobs)``."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, TypeVar

import sqlalchemy as sa
import sqlalchemy.exc
from sqlalchemy.engine import Connection

from stockq import db, errors, schema
from stockq.queue.direct import DirectStatement
from stockq.queue.models import jobs
from stockq.queue.notify import CHANNEL
from stockq.queue.repository import JobRepository, NewJob
from stockq.queue.sql import epoch_now
from stockq.settings import Settings

if TYPE_CHECKING:
    from stockq.queue.job import Job

T = TypeVar("T")


_repositories: dict[str, JobRepository] = {}
_by_settings: dict[tuple[str, int, str], JobRepository] = {}
# PostgreSQL: the single-dispatch statement of each repository's database, on connections of its own.
_single_inserts: dict[JobRepository, DirectStatement] = {}


def _close_repositories() -> None:
    for repo in {*_repositories.values(), *_by_settings.values()}:
        repo.close()
    for insert in _single_inserts.values():
        insert.close()
    _repositories.clear()
    _by_settings.clear()
    _single_inserts.clear()


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


def _single_insert_statement() -> sa.Insert:
    """PostgreSQL's single dispatch: the row, and the notification that wakes idle workers, in one statement.

    pg_notify and set_config sit in FROM, so each runs exactly once, before the row is inserted. The
    transaction-local ``stockq.insert_notified = on`` tells the jobs table's statement trigger (migration 0007)
    that this statement has notified already: it skips its PL/pgSQL function, ~45 µs of the ~300 µs a durable
    single insert costs the server. The kept connection is in autocommit, so the setting ends with this statement
    and every other insert is still notified by the trigger.
    """
    now = epoch_now()
    queue = sa.bindparam("b_queue", type_=jobs.c.queue.type)
    row = sa.select(
        sa.bindparam("b_uuid", type_=jobs.c.uuid.type),
        queue,
        sa.bindparam("b_payload", type_=jobs.c.payload.type),
        sa.literal_column("0"),
        sa.literal_column("0"),
        now + sa.bindparam("b_delay", type_=sa.BigInteger()),
        now,
    ).select_from(
        sa.func.pg_notify(sa.literal_column(f"'{CHANNEL}'"), queue),
        sa.func.set_config(sa.literal_column("'stockq.insert_notified'"), sa.literal_column("'on'"), sa.true()),
    )
    columns = ["uuid", "queue", "payload", "attempts", "exceptions", "available_at", "created_at"]
    return sa.insert(jobs).from_select(columns, row)


_SINGLE_INSERT = _single_insert_statement()


def _push_one(database_url: str | None, item: NewJob) -> str:
    repo = repository(database_url)
    if not repo.is_postgresql:
        return repo.push(item)
    insert = _single_inserts.get(repo)
    if insert is None:
        insert = _single_inserts.setdefault(repo, DirectStatement(repo.engine, _SINGLE_INSERT))
    insert.execute({"b_uuid": item.uuid, "b_queue": item.queue, "b_payload": item.payload, "b_delay": item.delay})
    return item.uuid


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
    return _retry_once_if_disconnected(lambda: _push_one(database_url, item))


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
