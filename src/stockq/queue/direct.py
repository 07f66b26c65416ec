"""Single dispatches on PostgreSQL over a few kept psycopg connections in autocommit.

A dispatch is one INSERT that is its own transaction. Through SQLAlchemy it costs a pool checkout, the execution
context and the result set-up: ~0.4 ms of Python on top of the ~0.4 ms the server needs to commit it durably, which
halves the dispatch rate. Here the statement (compiled once from the same SQLAlchemy construct) is run directly on
a psycopg connection with a server-side prepared plan, and errors come back as SQLAlchemy's exceptions, so callers
see no difference.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import psycopg
import sqlalchemy as sa
import sqlalchemy.exc
from sqlalchemy.engine import Engine

# Connections opened before a fork belong to the parent: a child must neither use nor close them (closing sends
# the server a Terminate on the shared socket). They are kept here, unused, for the child's lifetime.
_inherited: list[Any] = []


class DirectStatement:
    """One compiled statement run on kept autocommit connections of ``engine`` (PostgreSQL only).

    Idle connections wait in a small free list: a dispatching thread takes one, runs the statement and puts it
    back, so any number of threads can dispatch and at most ``keep`` connections stay open when they are done.
    """

    def __init__(self, engine: Engine, statement: sa.ClauseElement, *, keep: int = 2) -> None:
        compiled: Any = statement.compile(dialect=engine.dialect)
        self._sql: str = compiled.string
        # Values the construct carries itself (constants become bound parameters when compiled).
        self._defaults: dict[str, Any] = {
            name: bind.effective_value for bind, name in compiled.bind_names.items() if not bind.required
        }
        self._engine = engine
        self._keep = keep
        self._idle: list[Any] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def execute(self, params: Mapping[str, Any]) -> int:
        """Run the statement once, committed when it returns; the affected row count."""
        with self._connection() as conn:
            try:
                cursor = conn.execute(self._sql, {**self._defaults, **params}, prepare=True)
            except psycopg.Error as exc:
                raise sqlalchemy.exc.DBAPIError.instance(
                    self._sql, None, exc, psycopg.Error, hide_parameters=True, connection_invalidated=conn.closed
                ) from exc
            return int(cursor.rowcount)

    def close(self) -> None:
        """Close the idle connections (connections in use close when they are handed back)."""
        with self._lock:
            idle, self._idle, self._keep = self._idle, [], 0
        if os.getpid() == self._pid:
            for conn in idle:
                conn.close()

    @contextmanager
    def _connection(self) -> Iterator[Any]:
        with self._lock:
            if os.getpid() != self._pid:
                _inherited.extend(self._idle)
                self._idle, self._pid = [], os.getpid()
            conn = self._idle.pop() if self._idle else None
        if conn is None or conn.closed:
            conn = self._connect()
        try:
            yield conn
        except BaseException:
            conn.close()
            raise
        with self._lock:
            if len(self._idle) < self._keep and os.getpid() == self._pid:
                self._idle.append(conn)
                return
        conn.close()

    def _connect(self) -> Any:
        """A connection made by the engine (its URL, connect arguments and dialect set-up), taken out of the pool."""
        pooled = self._engine.raw_connection()
        conn: Any = pooled.driver_connection
        pooled.detach()
        conn.autocommit = True
        return conn
