"""Single dispatches on PostgreSQL over a few kept psycopg connections in autocommit.

A dispatch is one INSERT that is its own transaction. Through SQLAlchemy it costs a pool checkout, the execution
context and the result set-up: ~0.4 ms of Python on top of the ~0.4 ms the server needs to commit it durably, which
halves the dispatch rate. Here the statement (compiled once from a SQLAlchemy construct) is prepared once per kept
psycopg connection and then run at the libpq level: parameters dumped by psycopg's own adapters, the Bind/Execute
sent and the result awaited through psycopg's wait loop (so Ctrl-C still cancels the query). psycopg's cursor
layer (a cursor per call, the query conversion, the prepared-statement bookkeeping) costs ~50 µs of CPU per
execution that the 2-core hosts we measure on spend directly off the dispatch rate. Errors come back as
SQLAlchemy's exceptions, so callers see no difference.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import psycopg
import psycopg.errors
import sqlalchemy as sa
import sqlalchemy.exc
from psycopg import generators, pq
from psycopg.adapt import PyFormat, Transformer
from sqlalchemy.engine import Engine

from stockq import db

# Connections opened before a fork belong to the parent: a child must neither use nor close them (closing sends
# the server a Terminate on the shared socket). They are kept here, unused, for the child's lifetime.
_inherited: list[Any] = []

# The server-side name of the statement on each kept connection (the connection runs nothing else).
_PREPARED_NAME = b"stockq_direct"
_SUCCESS = (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK)


class _Kept:
    """A kept connection with the statement prepared on it and the adapters that dump its parameters."""

    __slots__ = ("conn", "transformer")

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.transformer = Transformer(conn)


class DirectStatement:
    """One compiled statement run on kept autocommit connections of ``engine`` (PostgreSQL only).

    Idle connections wait in a small free list: a dispatching thread takes one, runs the statement and puts it
    back, so any number of threads can dispatch and at most ``keep`` connections stay open when they are done.
    """

    def __init__(self, engine: Engine, statement: sa.ClauseElement, *, keep: int = 2) -> None:
        # Compiled for $n placeholders: the text goes to the server as is, the parameters in positiontup's order.
        dialect_class: Any = type(engine.dialect)
        dialect = dialect_class(paramstyle="numeric_dollar")
        compiled: Any = statement.compile(dialect=dialect)
        self._sql: str = compiled.string
        self._order: tuple[str, ...] = tuple(compiled.positiontup)
        # Values the construct carries itself (constants become bound parameters when compiled).
        self._defaults: dict[str, Any] = {
            name: bind.effective_value for bind, name in compiled.bind_names.items() if not bind.required
        }
        self._formats = [PyFormat.TEXT] * len(self._order)
        self._engine = engine
        self._keep = keep
        self._idle: list[_Kept] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def execute(self, params: Mapping[str, Any]) -> int:
        """Run the statement once, committed when it returns; the affected row count."""
        defaults = self._defaults
        values = [params[name] if name in params else defaults[name] for name in self._order]
        with self._connection() as kept:
            conn = kept.conn
            with db.driver_errors(self._sql, conn):
                conn.pgconn.send_query_prepared(_PREPARED_NAME, kept.transformer.dump_sequence(values, self._formats))
                result = _result(conn, _SUCCESS)
            return int(result.command_tuples or 0)

    def close(self) -> None:
        """Close the idle connections (connections in use close when they are handed back)."""
        with self._lock:
            idle, self._idle, self._keep = self._idle, [], 0
        if os.getpid() == self._pid:
            for kept in idle:
                kept.conn.close()

    @contextmanager
    def _connection(self) -> Iterator[_Kept]:
        with self._lock:
            if os.getpid() != self._pid:
                _inherited.extend(kept.conn for kept in self._idle)
                self._idle, self._pid = [], os.getpid()
            kept = self._idle.pop() if self._idle else None
        if kept is None or kept.conn.closed:
            kept = self._connect()
        try:
            yield kept
        except BaseException:
            kept.conn.close()
            raise
        with self._lock:
            if len(self._idle) < self._keep and os.getpid() == self._pid:
                self._idle.append(kept)
                return
        kept.conn.close()

    def _connect(self) -> _Kept:
        """A connection made by the engine (its URL, connect arguments and dialect set-up), taken out of the pool,
        with the statement prepared on it."""
        pooled = self._engine.raw_connection()
        conn: Any = pooled.driver_connection
        pooled.detach()
        conn.autocommit = True
        try:
            with db.driver_errors(self._sql, conn):
                conn.pgconn.send_prepare(_PREPARED_NAME, self._sql.encode(conn.info.encoding))
                _result(conn, (pq.ExecStatus.COMMAND_OK,))
        except sqlalchemy.exc.DBAPIError:
            conn.close()
            raise
        return _Kept(conn)


def _result(conn: Any, ok: tuple[pq.ExecStatus, ...]) -> Any:
    """The result of what was just sent on ``conn``, awaited through psycopg's wait loop; psycopg's error for any
    other status than ``ok``."""
    result = conn.wait(generators.execute(conn.pgconn))[-1]
    if result.status not in ok:
        raise psycopg.errors.error_from_result(result, encoding=conn.info.encoding)
    return result
