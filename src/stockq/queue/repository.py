"""Every SQL operation on the queue tables, each a named method: the CLI and jobs never touch these tables."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Engine

from stockq import db
from stockq.queue import payload as payloads
from stockq.queue.direct import DirectStatement
from stockq.queue.models import failed_jobs, jobs, queue_signals, queue_workers
from stockq.queue.notify import CHANNEL
from stockq.queue.sql import epoch_now, upsert

RESTART_SIGNAL = "restart"


@dataclass(frozen=True, kw_only=True, slots=True)
class ReservedJob:
    """A row this worker holds a lease on."""

    id: int
    uuid: str
    queue: str
    payload: str
    attempts: int
    exceptions: int
    available_at: int


@dataclass(frozen=True, kw_only=True, slots=True)
class FailedJob:
    id: int
    uuid: str
    connection: str
    queue: str
    payload: str
    exception: str
    failed_at: dt.datetime

    @property
    def display_name(self) -> str:
        """The job's name as queue:failed shows it (also for a payload that cannot be decoded)."""
        return payloads.display_name_of(self.payload)


@dataclass(frozen=True, kw_only=True, slots=True)
class QueueCounts:
    queue: str
    pending: int
    delayed: int
    reserved: int
    oldest_pending_at: int | None

    @property
    def size(self) -> int:
        return self.pending + self.delayed + self.reserved


@dataclass(frozen=True, kw_only=True, slots=True)
class Heartbeat:
    """What one heartbeat found: how many rows the worker holds, and the restart signal's value."""

    held: int
    restart_signal: str | None


@dataclass(frozen=True, kw_only=True, slots=True)
class WorkerInfo:
    id: str
    name: str
    hostname: str
    pid: int
    queues: str
    started_at: int
    heartbeat_at: int
    current_job: str | None
    status: str
    jobs_processed: int


@dataclass(frozen=True, kw_only=True, slots=True)
class NewJob:
    """A job ready to insert: its encoded envelope, the queue and the dispatch delay."""

    uuid: str
    queue: str
    payload: str
    delay: int = 0


# From this many jobs on, PostgreSQL gets them through COPY: one stream instead of a statement per row.
COPY_THRESHOLD = 50


def _copy_jobs(conn: Connection, new_jobs: Sequence[NewJob]) -> None:
    """COPY the jobs into the table on the caller's connection (inside its transaction, if it has one). The
    database clock is read once, so available_at/created_at stay on the database's time like every other write.
    The queues are announced after the COPY (``_ANNOUNCE``)."""
    now = int(conn.execute(sa.select(epoch_now())).scalar_one())
    raw: Any = conn.connection.dbapi_connection
    statement = f"COPY jobs ({', '.join(_JOB_COLUMNS)}) FROM STDIN"
    with db.driver_errors(statement, raw), raw.cursor() as cursor, cursor.copy(statement) as copy:
        for job in new_jobs:
            copy.write_row((job.uuid, job.queue, job.payload, 0, 0, now + job.delay, now))
    conn.execute(_ANNOUNCE, {"b_queues": sorted({job.queue for job in new_jobs})})


def _insert_params(job: NewJob) -> dict[str, Any]:
    return {"b_uuid": job.uuid, "b_queue": job.queue, "b_payload": job.payload, "b_delay": job.delay}


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _reserve_statement(*, expired: bool) -> sa.Update:
    now = epoch_now()
    if expired:
        where = sa.and_(jobs.c.reserved_by.is_not(None), jobs.c.lease_expires_at <= now)
        order: tuple[Any, ...] = (jobs.c.lease_expires_at, jobs.c.id)
    else:
        where = sa.and_(jobs.c.reserved_by.is_(None), jobs.c.available_at <= now)
        order = (jobs.c.available_at, jobs.c.id)
    picked = (
        sa.select(jobs.c.id)
        .where(jobs.c.queue == sa.bindparam("b_queue"), where)
        .order_by(*order)
        .limit(sa.bindparam("b_limit"))
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    return (
        sa.update(jobs)
        .where(jobs.c.id.in_(picked))
        .values(
            reserved_at=now,
            reserved_by=sa.bindparam("b_worker"),
            # Whole seconds: +1 so that a lease never ends before lease_seconds have passed.
            lease_expires_at=now + sa.bindparam("b_lease", type_=sa.BigInteger()) + 1,
            attempts=jobs.c.attempts + 1,
        )
        .returning(
            jobs.c.id, jobs.c.uuid, jobs.c.queue, jobs.c.payload, jobs.c.attempts, jobs.c.exceptions,
            jobs.c.available_at,
        )
    )  # fmt: skip


# Statements are built once: SQLAlchemy then reuses their compiled form from its cache on every execution.
_JOB_COLUMNS = ("uuid", "queue", "payload", "attempts", "exceptions", "available_at", "created_at")


def _insert_job_statement(*, notify: bool) -> sa.Insert:
    """The insert of one job from its bind parameters (executemany for a batch), on the database's clock.

    ``notify`` (PostgreSQL): the notification that wakes idle workers is sent by the same statement; pg_notify sits
    in FROM, so it runs once per row, and PostgreSQL folds a transaction's identical notifications into one. The
    jobs table has no insert trigger (migration 0008): every path that inserts jobs notifies itself. The single
    dispatch runs the notifying statement with ``DirectStatement``.
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
    )
    if notify:
        row = row.select_from(sa.func.pg_notify(sa.literal_column(f"'{CHANNEL}'"), queue))
    return sa.insert(jobs).from_select(list(_JOB_COLUMNS), row)


_INSERT_JOB = _insert_job_statement(notify=False)
_INSERT_JOB_NOTIFYING = _insert_job_statement(notify=True)
_ANNOUNCED = (
    sa.func.unnest(sa.bindparam("b_queues", type_=postgresql.ARRAY(sa.Text()))).table_valued("queue").render_derived()
)
# One notification per queue: a COPY batch's, sent after the COPY (on an autocommit connection each statement
# commits by itself, and a worker woken before the rows are committed would find nothing).
_ANNOUNCE = sa.select(
    sa.func.count(sa.func.pg_notify(sa.literal_column(f"'{CHANNEL}'"), _ANNOUNCED.c.queue))
).select_from(_ANNOUNCED)
_RESERVE_PENDING = _reserve_statement(expired=False)
_RESERVE_EXPIRED = _reserve_statement(expired=True)
_DELETE_HELD = sa.delete(jobs).where(
    jobs.c.id.in_(sa.bindparam("b_ids", expanding=True)), jobs.c.reserved_by == sa.bindparam("b_worker")
)
# PostgreSQL takes the ids as one array parameter: the SQL text stays the same whatever the batch size, so psycopg
# prepares it once and reuses the plan.
_HELD_BY_ARRAY = sa.and_(
    jobs.c.id == sa.any_(sa.bindparam("b_ids", type_=postgresql.ARRAY(sa.BigInteger()))),
    jobs.c.reserved_by == sa.bindparam("b_worker"),
)
_DELETE_HELD_PG = sa.delete(jobs).where(_HELD_BY_ARRAY)
# PostgreSQL: acknowledge the finished batch and reserve the next one in one round trip. The data-modifying CTE
# runs whatever the outer statement selects; the rows it deletes are held by this worker, so the reservation
# cannot pick them.
_ACK_AND_RESERVE_PENDING = _RESERVE_PENDING.add_cte(
    sa.delete(jobs).where(_HELD_BY_ARRAY).returning(jobs.c.id).cte("acknowledged")
)


class JobRepository:
    """The queue's storage on one database."""

    def __init__(self, engine: Engine, *, lease_seconds: int = 30, connection_name: str = "database") -> None:
        self.engine = engine
        self.lease_seconds = lease_seconds
        self.connection_name = connection_name
        self._postgresql = engine.dialect.name == "postgresql"
        # On PostgreSQL a single statement is its own transaction: autocommit saves the BEGIN and COMMIT round
        # trips. SQLite keeps explicit IMMEDIATE transactions (see stockq.db).
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT") if self._postgresql else None
        self._direct_insert = DirectStatement(engine, _INSERT_JOB_NOTIFYING) if self._postgresql else None

    @property
    def is_postgresql(self) -> bool:
        return self._postgresql

    def close(self) -> None:
        """Close the connections this repository keeps of its own (the engine's pool is the engine's)."""
        if self._direct_insert is not None:
            self._direct_insert.close()

    @contextmanager
    def _single(self) -> Iterator[Connection]:
        """A connection for one atomic statement."""
        if self._autocommit is not None:
            with self._autocommit.connect() as conn:
                yield conn
        else:
            with self.engine.begin() as conn:
                yield conn

    # ---- dispatch ---------------------------------------------------------------------------------------------

    def push(self, job: NewJob, *, conn: Connection | None = None) -> str:
        if conn is None and self._direct_insert is not None:
            self._direct_insert.execute(_insert_params(job))
        else:
            self.push_many([job], conn=conn)
        return job.uuid

    def push_many(self, new_jobs: Sequence[NewJob], *, conn: Connection | None = None) -> int:
        """Insert all jobs at once (PostgreSQL: COPY; SQLite: one executemany); returns how many."""
        if not new_jobs:
            return 0
        if conn is not None:
            self._insert(conn, new_jobs)
        else:
            with self._single() as own:
                self._insert(own, new_jobs)
        return len(new_jobs)

    def _insert(self, conn: Connection, new_jobs: Sequence[NewJob]) -> None:
        if self._postgresql and len(new_jobs) >= COPY_THRESHOLD:
            _copy_jobs(conn, new_jobs)
            return
        statement = _INSERT_JOB_NOTIFYING if self._postgresql else _INSERT_JOB
        conn.execute(statement, [_insert_params(job) for job in new_jobs])

    # ---- reservation and acknowledgement -------------------------------------------------------------------

    def reserve(
        self,
        queue: str,
        worker_id: str,
        *,
        limit: int = 1,
        include_expired: bool = True,
        acknowledge: Sequence[int] = (),
    ) -> list[ReservedJob]:
        """Lease up to ``limit`` jobs of one queue to ``worker_id``: rows whose lease ran out first (their worker
        died), then pending rows in (available_at, id) order. Attempts count up. ``acknowledge``: finished jobs
        of this worker to delete in the same round trip."""
        params: dict[str, Any] = {
            "b_queue": queue,
            "b_limit": limit,
            "b_worker": worker_id,
            "b_lease": self.lease_seconds,
        }
        reserved: list[ReservedJob] = []
        if acknowledge and not self._postgresql:
            with self.engine.begin() as conn:  # SQLite: one IMMEDIATE transaction, one fsync
                conn.execute(_DELETE_HELD, {"b_ids": list(acknowledge), "b_worker": worker_id})
                return self._reserve_in(conn, params, include_expired)
        with self._single() as conn:
            if include_expired:
                reserved.extend(_reserved(conn.execute(_RESERVE_EXPIRED, params)))
                acknowledge = self._acknowledge_now(conn, acknowledge, worker_id)
            if len(reserved) < limit:
                params["b_limit"] = limit - len(reserved)
                if acknowledge:
                    params["b_ids"] = list(acknowledge)
                    reserved.extend(_reserved(conn.execute(_ACK_AND_RESERVE_PENDING, params)))
                else:
                    reserved.extend(_reserved(conn.execute(_RESERVE_PENDING, params)))
            else:
                self._acknowledge_now(conn, acknowledge, worker_id)
        reserved.sort(key=lambda job: (job.available_at, job.id))
        return reserved

    def _reserve_in(self, conn: Connection, params: dict[str, Any], include_expired: bool) -> list[ReservedJob]:
        reserved: list[ReservedJob] = []
        limit = params["b_limit"]
        if include_expired:
            reserved.extend(_reserved(conn.execute(_RESERVE_EXPIRED, params)))
        if len(reserved) < limit:
            params["b_limit"] = limit - len(reserved)
            reserved.extend(_reserved(conn.execute(_RESERVE_PENDING, params)))
        reserved.sort(key=lambda job: (job.available_at, job.id))
        return reserved

    def _acknowledge_now(self, conn: Connection, ids: Sequence[int], worker_id: str) -> Sequence[int]:
        if ids:
            conn.execute(self._delete_held, {"b_ids": list(ids), "b_worker": worker_id})
        return ()

    @property
    def _delete_held(self) -> sa.Delete:
        return _DELETE_HELD_PG if self._postgresql else _DELETE_HELD

    def delete(self, ids: Sequence[int], worker_id: str) -> int:
        """Acknowledge finished jobs; only rows this worker still holds are deleted."""
        if not ids:
            return 0
        with self._single() as conn:
            result = conn.execute(self._delete_held, {"b_ids": list(ids), "b_worker": worker_id})
        return int(result.rowcount)

    def release(self, job_id: int, worker_id: str, *, delay: int, after_exception: bool) -> bool:
        """Put a held job back, available after ``delay`` seconds, keeping its id; False if no longer held."""
        values: dict[str, Any] = {
            "reserved_at": None,
            "reserved_by": None,
            "lease_expires_at": None,
            "available_at": epoch_now() + delay,
        }
        if after_exception:
            values["exceptions"] = jobs.c.exceptions + 1
        with self._single() as conn:
            result = conn.execute(
                sa.update(jobs).where(jobs.c.id == job_id, jobs.c.reserved_by == worker_id).values(**values)
            )
        return bool(result.rowcount)

    def unreserve(self, ids: Sequence[int], worker_id: str) -> int:
        """Hand back reserved jobs that were never started: their attempt is not counted."""
        if not ids:
            return 0
        with self.engine.begin() as conn:
            result = conn.execute(
                sa.update(jobs)
                .where(jobs.c.id.in_(list(ids)), jobs.c.reserved_by == worker_id)
                .values(
                    reserved_at=None,
                    reserved_by=None,
                    lease_expires_at=None,
                    attempts=sa.case((jobs.c.attempts > 0, jobs.c.attempts - 1), else_=0),
                )
            )
        return int(result.rowcount)

    def fail(self, job_id: int, worker_id: str | None, exception: str, *, queue: str | None = None) -> bool:
        """Move a job to failed_jobs in one transaction (delete from jobs, insert the failure). With a
        ``worker_id`` only a row that worker still holds moves; False when there was nothing to move."""
        with self.engine.begin() as conn:
            condition = jobs.c.id == job_id
            if worker_id is not None:
                condition = sa.and_(condition, jobs.c.reserved_by == worker_id)
            row = conn.execute(
                sa.delete(jobs).where(condition).returning(jobs.c.uuid, jobs.c.queue, jobs.c.payload)
            ).first()
            if row is None:
                return False
            self._insert_failed(conn, uuid=row.uuid, queue=queue or row.queue, payload=row.payload, exception=exception)
        return True

    def _insert_failed(self, conn: Connection, *, uuid: str, queue: str, payload: str, exception: str) -> None:
        insert = upsert(conn, failed_jobs).values(
            uuid=uuid,
            connection=self.connection_name,
            queue=queue,
            payload=payload,
            exception=exception,
            failed_at=utc_now(),
        )
        conn.execute(
            insert.on_conflict_do_update(
                index_elements=[failed_jobs.c.uuid],
                set_={"exception": insert.excluded.exception, "failed_at": insert.excluded.failed_at,
                      "payload": insert.excluded.payload, "queue": insert.excluded.queue},
            )
        )  # fmt: skip

    def renew_leases(self, worker_id: str) -> int:
        """Extend the lease of every row this worker holds; returns how many it holds."""
        with self._single() as conn:
            return self._renew(conn, worker_id)

    def _renew(self, conn: Connection, worker_id: str) -> int:
        result = conn.execute(
            sa.update(jobs)
            .where(jobs.c.reserved_by == worker_id)
            .values(lease_expires_at=epoch_now() + self.lease_seconds + 1)
        )
        return int(result.rowcount)

    def next_available_at(self, queues: Sequence[str]) -> int | None:
        """When the earliest delayed job of these queues becomes available (to sleep no longer than that)."""
        with self.engine.connect() as conn:
            value = conn.execute(
                sa.select(sa.func.min(jobs.c.available_at)).where(
                    jobs.c.queue.in_(list(queues)), jobs.c.reserved_by.is_(None)
                )
            ).scalar()
        return int(value) if value is not None else None

    def db_time(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(epoch_now())).scalar_one())

    # ---- failed jobs ----------------------------------------------------------------------------------------

    def failed(self, *, queue: str | None = None) -> list[FailedJob]:
        """Failed jobs, newest first."""
        stmt = sa.select(failed_jobs).order_by(failed_jobs.c.id.desc())
        if queue is not None:
            stmt = stmt.where(failed_jobs.c.queue == queue)
        with self.engine.connect() as conn:
            return [FailedJob(**row._mapping) for row in conn.execute(stmt)]

    def find_failed(self, uuid: str) -> FailedJob | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(failed_jobs).where(failed_jobs.c.uuid == uuid)).first()
        return FailedJob(**row._mapping) if row else None

    def failed_uuids_in_range(self, first: int, last: int) -> list[tuple[int, str]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(failed_jobs.c.id, failed_jobs.c.uuid)
                .where(failed_jobs.c.id.between(first, last))
                .order_by(failed_jobs.c.id)
            )
            return [(int(r.id), str(r.uuid)) for r in rows]

    def retry(self, uuid: str) -> str | None:
        """Move one failed job back onto its queue, atomically; returns its queue, or None if not found."""
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.delete(failed_jobs)
                .where(failed_jobs.c.uuid == uuid)
                .returning(failed_jobs.c.uuid, failed_jobs.c.queue, failed_jobs.c.payload)
            ).first()
            if row is None:
                return None
            now = int(conn.execute(sa.select(epoch_now())).scalar_one())
            payload = _refresh_retry_until(row.payload, now)
            self._insert(conn, [NewJob(uuid=row.uuid, queue=row.queue, payload=payload)])
            return str(row.queue)

    def forget(self, uuid: str) -> bool:
        with self.engine.begin() as conn:
            return bool(conn.execute(sa.delete(failed_jobs).where(failed_jobs.c.uuid == uuid)).rowcount)

    def flush(self, *, older_than_hours: float | None = None) -> int:
        """Delete failed jobs (all, or those that failed at least ``older_than_hours`` ago)."""
        stmt = sa.delete(failed_jobs)
        if older_than_hours is not None:
            stmt = stmt.where(failed_jobs.c.failed_at <= utc_now() - dt.timedelta(hours=older_than_hours))
        with self.engine.begin() as conn:
            return int(conn.execute(stmt).rowcount)

    def prune_failed(self, *, older_than_hours: float, chunk: int = 1000) -> int:
        """Delete failed jobs older than the cut-off in chunks, so that a huge table is not locked at once."""
        cutoff = utc_now() - dt.timedelta(hours=older_than_hours)
        total = 0
        while True:
            with self.engine.begin() as conn:
                ids = (
                    conn.execute(sa.select(failed_jobs.c.id).where(failed_jobs.c.failed_at < cutoff).limit(chunk))
                    .scalars()
                    .all()
                )
                if not ids:
                    return total
                total += int(conn.execute(sa.delete(failed_jobs).where(failed_jobs.c.id.in_(ids))).rowcount)

    # ---- queues -------------------------------------------------------------------------------------------

    def clear(self, queues: Sequence[str] | None) -> tuple[int, int]:
        """Delete queued jobs (of ``queues``, or all); a job a live worker holds is kept.
        Returns (deleted, kept because running)."""
        now = epoch_now()
        scope = jobs.c.queue.in_(list(queues)) if queues else sa.true()
        running = sa.and_(jobs.c.reserved_by.is_not(None), jobs.c.lease_expires_at > now)
        with self.engine.begin() as conn:
            deleted = int(conn.execute(sa.delete(jobs).where(scope, sa.not_(running))).rowcount)
            kept = int(conn.execute(sa.select(sa.func.count()).select_from(jobs).where(scope, running)).scalar_one())
        return deleted, kept

    def queue_names(self) -> list[str]:
        with self.engine.connect() as conn:
            return [str(q) for q in conn.execute(sa.select(jobs.c.queue).distinct().order_by(jobs.c.queue)).scalars()]

    def counts(self, queues: Sequence[str] | None = None) -> list[QueueCounts]:
        """Pending, delayed and reserved jobs per queue, and when the oldest pending one became available."""
        now = epoch_now()
        unreserved = jobs.c.reserved_by.is_(None)
        pending = sa.and_(unreserved, jobs.c.available_at <= now)
        stmt = sa.select(
            jobs.c.queue,
            sa.func.coalesce(sa.func.sum(sa.case((pending, 1), else_=0)), 0),
            sa.func.coalesce(sa.func.sum(sa.case((sa.and_(unreserved, jobs.c.available_at > now), 1), else_=0)), 0),
            sa.func.coalesce(sa.func.sum(sa.case((jobs.c.reserved_by.is_not(None), 1), else_=0)), 0),
            sa.func.min(sa.case((pending, jobs.c.available_at), else_=None)),
        ).group_by(jobs.c.queue)
        if queues:
            stmt = stmt.where(jobs.c.queue.in_(list(queues)))
        with self.engine.connect() as conn:
            found = {
                row[0]: QueueCounts(
                    queue=row[0], pending=int(row[1]), delayed=int(row[2]), reserved=int(row[3]),
                    oldest_pending_at=int(row[4]) if row[4] is not None else None,
                )
                for row in conn.execute(stmt)
            }  # fmt: skip
        names = list(queues) if queues else sorted(found)
        return [
            found.get(q) or QueueCounts(queue=q, pending=0, delayed=0, reserved=0, oldest_pending_at=None)
            for q in names
        ]

    def failed_counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(failed_jobs.c.queue, sa.func.count()).group_by(failed_jobs.c.queue))
            return {str(q): int(n) for q, n in rows}

    # ---- workers and signals ------------------------------------------------------------------------------

    def register_worker(self, *, worker_id: str, name: str, hostname: str, pid: int, queues: str) -> None:
        now = epoch_now()
        with self.engine.begin() as conn:
            conn.execute(
                sa.insert(queue_workers).values(
                    id=worker_id, name=name, hostname=hostname, pid=pid, queues=queues,
                    started_at=now, heartbeat_at=now, status="running", jobs_processed=0,
                )
            )  # fmt: skip

    def heartbeat(self, worker_id: str, *, current_job: str | None, status: str, jobs_processed: int) -> Heartbeat:
        """Record that the worker lives, renew its leases and read the restart signal, in one transaction."""
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(queue_workers)
                .where(queue_workers.c.id == worker_id)
                .values(heartbeat_at=epoch_now(), current_job=current_job, status=status, jobs_processed=jobs_processed)
            )
            held = self._renew(conn, worker_id)
            restart = conn.execute(
                sa.select(queue_signals.c.value).where(queue_signals.c.name == RESTART_SIGNAL)
            ).scalar()
        return Heartbeat(held=held, restart_signal=None if restart is None else str(restart))

    def unregister_worker(self, worker_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.delete(queue_workers).where(queue_workers.c.id == worker_id))

    def workers(self) -> list[WorkerInfo]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(queue_workers).order_by(queue_workers.c.hostname, queue_workers.c.pid))
            return [WorkerInfo(**row._mapping) for row in rows]

    def prune_workers(self, *, stale_after: int) -> int:
        """Forget workers whose heartbeat stopped ``stale_after`` seconds ago (killed without cleanup)."""
        with self.engine.begin() as conn:
            return int(
                conn.execute(
                    sa.delete(queue_workers).where(queue_workers.c.heartbeat_at < epoch_now() - stale_after)
                ).rowcount
            )

    def signal_value(self, name: str) -> str | None:
        with self.engine.connect() as conn:
            value = conn.execute(sa.select(queue_signals.c.value).where(queue_signals.c.name == name)).scalar()
        return str(value) if value is not None else None

    def set_signal(self, name: str, value: str) -> None:
        with self.engine.begin() as conn:
            stmt = upsert(conn, queue_signals).values(name=name, value=value, updated_at=epoch_now())
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[queue_signals.c.name],
                    set_={"value": stmt.excluded.value, "updated_at": stmt.excluded.updated_at},
                )
            )


def _reserved(result: Iterable[Any]) -> list[ReservedJob]:
    # Rows unpacked as tuples (in the RETURNING order): attribute access on a Row costs more than the job itself.
    return [
        ReservedJob(
            id=job_id, uuid=uuid, queue=queue, payload=payload, attempts=attempts, exceptions=exceptions,
            available_at=available_at,
        )
        for job_id, uuid, queue, payload, attempts, exceptions, available_at in result
    ]  # fmt: skip


def _refresh_retry_until(raw: str, now: int) -> str:
    """A retried job gets a fresh retry window (Laravel recomputes retryUntil from the job on retry)."""
    try:
        doc = json.loads(raw)
    except ValueError:
        return raw
    if not isinstance(doc, dict):
        return raw
    until, created = doc.get("retryUntil"), doc.get("createdAt")
    if isinstance(until, int) and isinstance(created, int) and until >= created:
        doc["retryUntil"] = now + (until - created)
        doc["createdAt"] = now
        return payloads.encode_json(doc)
    return raw


__all__ = ["FailedJob", "Heartbeat", "JobRepository", "NewJob", "QueueCounts", "ReservedJob", "WorkerInfo"]
