"""The database schema's version: Alembic migrations shipped with the package, and the check before use."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from stockq import db, errors

_checked: set[str] = set()
_checked_lock = threading.Lock()
# PostgreSQL advisory lock key that serialises concurrent `stockq migrate` runs ("stockq" in ASCII).
_MIGRATION_LOCK_KEY = 0x73746F636B71


def migrations_path() -> Path:
    """Where the migrations are: inside the installed wheel, or the checkout's top-level migrations/."""
    packaged = Path(__file__).parent / "_migrations"
    if (packaged / "env.py").exists():
        return packaged
    checkout = Path(__file__).resolve().parents[2] / "migrations"
    if (checkout / "env.py").exists():
        return checkout
    raise errors.ConfigurationError("stockq's migrations are missing from this installation")


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_path()))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


@dataclass(frozen=True, slots=True)
class SchemaStatus:
    current: str | None
    head: str

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


def status(engine: Engine) -> SchemaStatus:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    return SchemaStatus(current=current, head=head)


def upgrade(engine: Engine, revision: str = "head") -> SchemaStatus:
    """Upgrade to ``revision``; safe when several processes do it at once."""
    with engine.begin() as conn:
        if db.is_postgresql(conn):
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
        command.upgrade(alembic_config(conn), revision)
    with _checked_lock:
        _checked.add(str(engine.url))
    return status(engine)


def ensure_current(engine: Engine) -> None:
    """Make sure the schema is at head: SQLite (the embedded default) is migrated on first use; any other
    database that lags gets DatabaseNotMigrated."""
    key = str(engine.url)
    if key in _checked:
        return
    state = status(engine)
    if not state.up_to_date:
        if db.is_sqlite(engine):
            upgrade(engine)
        else:
            where = engine.url.render_as_string(hide_password=True)
            raise errors.DatabaseNotMigrated(
                f"The database {where} is at revision {state.current or 'none'}, not {state.head}: "
                "run `stockq migrate`."
            )
    with _checked_lock:
        _checked.add(key)
