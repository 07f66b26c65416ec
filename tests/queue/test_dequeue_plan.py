"""Dequeue stays O(log n): the reservation reads the partial index in order, never sorts or scans the table."""

from __future__ import annotations

import sqlalchemy as sa

from stockq import db
from stockq.queue import repository

ROWS = 50_000


def _fill(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql(
                "INSERT INTO jobs (uuid, queue, payload, attempts, exceptions, available_at, created_at) "
                f"SELECT md5(g::text), CASE WHEN mod(g, 2) = 0 THEN 'default' ELSE 'import' END, '{{}}', 0, 0, g, g "
                f"FROM generate_series(1, {ROWS}) g"
            )
            conn.exec_driver_sql("ANALYZE jobs")
        else:
            conn.exec_driver_sql(
                f"WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < {ROWS}) "
                "INSERT INTO jobs (uuid, queue, payload, attempts, exceptions, available_at, created_at) "
                "SELECT hex(n), CASE WHEN n % 2 = 0 THEN 'default' ELSE 'import' END, '{}', 0, 0, n, n FROM g"
            )
            conn.exec_driver_sql("ANALYZE")


def _plan(engine: sa.Engine, statement: sa.Update) -> str:
    compiled = statement.compile(dialect=engine.dialect)
    params = compiled.construct_params({"b_queue": "default", "b_limit": 10, "b_worker": "w", "b_lease": 30})
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            rows = conn.exec_driver_sql("EXPLAIN " + str(compiled), params).all()
        else:
            positional = tuple(params[name] for name in compiled.positiontup or ())
            rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + str(compiled), positional).all()
    return "\n".join(" ".join(str(c) for c in row) for row in rows)


def test_reservation_reads_the_pending_index_without_sorting(db_url: str) -> None:
    engine = db.get_engine(db_url)
    _fill(engine)
    plan = _plan(engine, repository._RESERVE_PENDING)
    assert "ix_jobs_pending" in plan, plan
    if engine.dialect.name == "postgresql":
        assert "Seq Scan on jobs" not in plan and "Sort" not in plan, plan
    else:
        assert "USE TEMP B-TREE FOR ORDER BY" not in plan and "SCAN jobs\n" not in plan + "\n", plan
    expired = _plan(engine, repository._RESERVE_EXPIRED)
    assert "ix_jobs_leases" in expired, expired
