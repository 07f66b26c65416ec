"""Single dispatches on PostgreSQL run on kept psycopg connections outside SQLAlchemy's pool: they must behave
exactly like the pooled path (same row, same errors), survive a dropped connection, stay out of a forked child's
way, and close when the engines are disposed."""

from __future__ import annotations

import multiprocessing

import psycopg
import pytest
import sqlalchemy as sa
import sqlalchemy.exc

import stockq
from stockq import db
from stockq.queue import api
from stockq.queue.models import jobs
from tests.support.testjobs import Noop


def _rows(url: str) -> list[sa.Row[tuple[str, str, int, int, int]]]:
    query = sa.select(jobs.c.uuid, jobs.c.queue, jobs.c.attempts, jobs.c.available_at, jobs.c.created_at)
    with db.get_engine(url).connect() as conn:
        return list(conn.execute(query.order_by(jobs.c.id)))


def _kept_backends(url: str) -> list[int]:
    """Backend pids of this process's connections to the test database other than the one asking."""
    name = sa.engine.make_url(url).database
    with db.get_engine(url).connect() as conn:
        return list(
            conn.execute(
                sa.text(
                    "SELECT pid FROM pg_stat_activity WHERE datname = :name AND pid <> pg_backend_pid()"
                    " AND state = 'idle' AND query LIKE 'INSERT INTO jobs%'"
                ),
                {"name": name},
            ).scalars()
        )


def test_a_direct_dispatch_stores_the_same_row_as_the_pooled_path(pg_url: str) -> None:
    direct = stockq.dispatch(Noop(tag=1), queue="import", delay=30, database_url=pg_url)
    with db.get_engine(pg_url).begin() as conn:
        pooled = stockq.dispatch(Noop(tag=2), queue="import", delay=30, conn=conn)
    rows = _rows(pg_url)
    assert [row.uuid for row in rows] == [direct, pooled]
    for row in rows:
        assert (row.queue, row.attempts) == ("import", 0)
        assert row.available_at - row.created_at == 30


def test_a_dropped_kept_connection_costs_one_retry_and_no_duplicate(pg_url: str) -> None:
    stockq.dispatch(Noop(tag=1), database_url=pg_url)
    kept = _kept_backends(pg_url)
    assert kept, "the dispatch connection should be kept for the next dispatch"
    with db.get_engine(pg_url).connect() as conn:
        for pid in kept:
            conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    second = stockq.dispatch(Noop(tag=2), database_url=pg_url)
    assert [row.uuid for row in _rows(pg_url)][-1] == second
    assert len(_rows(pg_url)) == 2


def test_database_errors_come_back_as_sqlalchemy_errors(pg_url: str) -> None:
    with pytest.raises(sqlalchemy.exc.DBAPIError) as raised:
        stockq.dispatch(Noop(tag=1), queue="q" * 300, database_url=pg_url)
    assert "value too long" in str(raised.value)
    assert stockq.dispatch(Noop(tag=2), database_url=pg_url)  # the connection is usable again
    assert len(_rows(pg_url)) == 1


def _dispatch_in_child(url: str) -> None:
    stockq.dispatch(Noop(tag=99), database_url=url)


def test_a_forked_child_opens_its_own_connection_and_leaves_the_parents_alone(pg_url: str) -> None:
    stockq.dispatch(Noop(tag=1), database_url=pg_url)
    kept = _kept_backends(pg_url)
    child = multiprocessing.get_context("fork").Process(target=_dispatch_in_child, args=(pg_url,))
    child.start()
    child.join(30)
    assert child.exitcode == 0
    stockq.dispatch(Noop(tag=2), database_url=pg_url)
    assert len(_rows(pg_url)) == 3
    assert set(kept) <= set(_kept_backends(pg_url)), "the parent's connection was closed by its child"


def test_disposing_the_engines_closes_the_kept_connections(pg_url: str) -> None:
    stockq.dispatch(Noop(tag=1), database_url=pg_url)
    assert _kept_backends(pg_url)
    db.dispose_engines()
    assert api._repositories == {}
    assert _kept_backends(pg_url) == []


def _listener(url: str) -> psycopg.Connection[tuple[object, ...]]:
    conn = psycopg.connect(
        sa.engine.make_url(url).set(drivername="postgresql").render_as_string(False), autocommit=True
    )
    conn.execute("LISTEN stockq_jobs")
    return conn


def test_inserts_and_releases_notify_listeners_once_per_queue(pg_url: str) -> None:
    listener = _listener(pg_url)
    try:
        stockq.dispatch_many([Noop(tag=i) for i in range(60)], queue="import", database_url=pg_url)  # COPY
        stockq.dispatch_many([Noop(tag=i) for i in range(3)], queue="default", database_url=pg_url)
        stockq.dispatch(Noop(tag=1), queue="integrations", database_url=pg_url)
        repo = api.repository(pg_url)
        (held,) = repo.reserve("default", "w1", limit=1)
        assert repo.release(held.id, "w1", delay=0, after_exception=False)
        heard = [note.payload for note in listener.notifies(timeout=1.0, stop_after=5)]
    finally:
        listener.close()
    assert heard == ["import", "default", "integrations", "default"]


def test_every_insert_path_notifies_itself_and_the_jobs_table_has_no_insert_trigger(pg_url: str) -> None:
    """Migration 0008: no insert trigger; each path that inserts jobs sends the notification, at commit only."""
    with db.get_engine(pg_url).connect() as conn:
        triggers = conn.execute(
            sa.text("SELECT tgname FROM pg_trigger WHERE tgrelid = 'jobs'::regclass AND NOT tgisinternal")
        ).scalars()
        assert sorted(triggers) == ["jobs_notify"]  # releases (UPDATE OF available_at)
    repo = api.repository(pg_url)
    listener = _listener(pg_url)

    def heard() -> list[str]:
        return sorted(str(note.payload) for note in listener.notifies(timeout=0.5))

    try:
        stockq.dispatch(Noop(tag=1), queue="single", delay=5, database_url=pg_url)
        assert heard() == ["single"]
        repo.push(api.new_job(Noop(tag=2), queue="pushed"))  # the CLI's `queue dispatch`
        assert heard() == ["pushed"]
        stockq.dispatch_many([Noop(tag=3), Noop(tag=4)], queue="small", database_url=pg_url)
        stockq.dispatch_many([Noop(tag=i) for i in range(60)], queue="copied", database_url=pg_url)  # COPY
        assert heard() == ["copied", "small"]
        mixed = [api.new_job(Noop(tag=i), queue=f"mixed-{i % 2}") for i in range(60)]
        repo.push_many(mixed)  # one COPY, two queues
        assert heard() == ["mixed-0", "mixed-1"]
        with db.get_engine(pg_url).begin() as conn:
            stockq.dispatch(Noop(tag=5), queue="in-transaction", conn=conn)
            stockq.dispatch_many([Noop(tag=i) for i in range(60)], queue="copied-in-transaction", conn=conn)
            assert heard() == []  # nothing before the commit
        assert heard() == ["copied-in-transaction", "in-transaction"]
        with db.get_engine(pg_url).connect() as conn:
            stockq.dispatch(Noop(tag=6), queue="rolled-back", conn=conn)
            conn.rollback()
        assert heard() == []
    finally:
        listener.close()


def test_a_retried_job_is_announced_on_its_queue(pg_url: str) -> None:
    repo = api.repository(pg_url)
    uuid = stockq.dispatch(Noop(tag=1), queue="retried", database_url=pg_url)
    (held,) = repo.reserve("retried", "w1", limit=1)
    assert repo.fail(held.id, "w1", "RuntimeError: boom")
    listener = _listener(pg_url)
    try:
        assert repo.retry(uuid) == "retried"
        assert [note.payload for note in listener.notifies(timeout=1.0, stop_after=1)] == ["retried"]
    finally:
        listener.close()


def test_a_text_parameter_with_a_nul_byte_is_refused_before_it_reaches_the_server(pg_url: str) -> None:
    with pytest.raises(sqlalchemy.exc.DBAPIError, match="NUL"):
        stockq.dispatch(Noop(tag=1), queue="de\x00fault", database_url=pg_url)
    assert stockq.dispatch(Noop(tag=2), database_url=pg_url)
    assert [row.queue for row in _rows(pg_url)] == ["default"]
