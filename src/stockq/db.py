"""Engines, the declarative base, and the settings every connection needs."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import sqlalchemy.exc
from sqlalchemy import MetaData, create_engine, event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import NullPool

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SQLITE_BUSY_TIMEOUT_MS = 60_000


class Base(DeclarativeBase):
    """Declarative base of every stockq table; one metadata with stable constraint names."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


metadata = Base.metadata

_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()
_dispose_callbacks: list[Callable[[], None]] = []


def is_sqlite(bind: Engine | Connection) -> bool:
    return bind.dialect.name == "sqlite"


def is_postgresql(bind: Engine | Connection) -> bool:
    return bind.dialect.name == "postgresql"


@contextmanager
def driver_errors(statement: str, connection: Any = None) -> Iterator[None]:
    """psycopg errors raised outside SQLAlchemy's execute (COPY, statements sent at the libpq level) as
    SQLAlchemy's ``DBAPIError`` subclasses, as every other database error reaches the CLI's error lines and the
    worker's transient-error check. ``connection``: the psycopg connection, to report whether it was lost."""
    try:
        yield
    except psycopg.Error as exc:
        raise sqlalchemy.exc.DBAPIError.instance(
            statement,
            None,
            exc,
            psycopg.Error,
            hide_parameters=True,
            connection_invalidated=bool(getattr(connection, "closed", False)),
        ) from exc


def normalize_url(url: str) -> str:
    """Let `postgresql://` and `postgres://` mean psycopg 3, the only PostgreSQL driver stockq ships."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def create(url: str, **kwargs: Any) -> Engine:
    """A new engine for ``url`` with stockq's connection settings (SQLite: WAL, busy timeout, IMMEDIATE)."""
    url = normalize_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(url, poolclass=NullPool, **kwargs)
        _configure_sqlite(engine)
        return engine
    # No pre-ping: it costs a round trip per checkout. A connection that died with a server restart fails once
    # with connection_invalidated set, the pool is refreshed, and callers retry (the worker always does).
    options: dict[str, Any] = {"pool_size": 5, "max_overflow": 5}
    options.update(kwargs)
    return create_engine(url, **options)


def get_engine(url: str) -> Engine:
    """The process-wide engine for ``url`` (one pool per database and process)."""
    key = normalize_url(url)
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None:
            engine = _engines[key] = create(key)
        return engine


def dispose_engines() -> None:
    """Close every pooled connection, e.g. after fork or at the end of a test."""
    with _engines_lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
        for callback in _dispose_callbacks:
            callback()


def on_dispose(callback: Callable[[], None]) -> None:
    """Call ``callback`` when dispose_engines() drops the engines (so caches of engine-bound objects go too)."""
    _dispose_callbacks.append(callback)


def sqlite_synchronous() -> str:
    """FULL (the default) syncs the WAL at every commit: a committed job survives a power cut. NORMAL syncs only
    at checkpoints: still nothing lost when a process crashes, several times faster, but the last commits can be
    lost with the machine's power. Set with STOCKQ_SQLITE_SYNCHRONOUS."""
    value = os.environ.get("STOCKQ_SQLITE_SYNCHRONOUS", "FULL").upper()
    if value not in ("FULL", "NORMAL", "EXTRA"):
        raise ValueError(f"STOCKQ_SQLITE_SYNCHRONOUS must be FULL, NORMAL or EXTRA, not {value!r}")
    return value


def _configure_sqlite(engine: Engine) -> None:
    # pysqlite's own transaction handling begins DEFERRED transactions lazily; a deferred reader that later writes
    # gets SQLITE_BUSY at once, whatever the busy timeout. Every transaction here begins IMMEDIATE instead, so
    # writers queue on the busy timeout (this is SQLAlchemy's documented recipe for pysqlite).
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute(f"PRAGMA synchronous = {sqlite_synchronous()}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
