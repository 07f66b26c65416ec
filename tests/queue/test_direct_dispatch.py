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


def test_inserts_and_releases_notify_listeners_once_per_queue(pg_url: str) -> None:
    listener = psycopg.connect(
        sa.engine.make_url(pg_url).set(drivername="postgresql").render_as_string(False), autocommit=True
    )
    try:
        listener.execute("LISTEN stockq_jobs")
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
