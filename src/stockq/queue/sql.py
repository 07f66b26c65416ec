"""Small SQL constructs the queue needs on both dialects."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement


class epoch_now(FunctionElement[int]):
    """The database clock in whole epoch seconds, so that workers on several hosts share one clock."""

    type = sa.BigInteger()
    inherit_cache = True


@compiles(epoch_now, "postgresql")
def _epoch_now_pg(element: epoch_now, compiler: Any, **kw: Any) -> str:
    return "CAST(FLOOR(EXTRACT(EPOCH FROM statement_timestamp())) AS BIGINT)"


@compiles(epoch_now, "sqlite")
def _epoch_now_sqlite(element: epoch_now, compiler: Any, **kw: Any) -> str:
    return "CAST(strftime('%s', 'now') AS INTEGER)"


@compiles(epoch_now)
def _epoch_now_default(element: epoch_now, compiler: Any, **kw: Any) -> str:
    return "CAST(EXTRACT(EPOCH FROM CURRENT_TIMESTAMP) AS BIGINT)"


def upsert(conn: Connection, table: sa.Table) -> Any:
    """INSERT … ON CONFLICT for the connection's dialect."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    if conn.dialect.name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"stockq does not support {conn.dialect.name}")
