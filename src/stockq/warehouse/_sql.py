"""Small helpers shared by the ledger's modules: the UTC clock and dialect inserts (no queue imports here)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

QUANT = Decimal("0.0001")


def utcnow() -> datetime:
    """Naive UTC now (the DateTime columns hold naive UTC)."""
    return datetime.now(UTC).replace(tzinfo=None)


def insert(conn: Connection, table: sa.Table) -> Any:
    """The dialect's INSERT, which has on_conflict_do_update/do_nothing."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    if conn.dialect.name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"stockq does not support {conn.dialect.name}")


def quantize(value: Decimal | int | float | str | None) -> Decimal:
    """A value read back from the database as a Decimal with 4 places (SQLite returns floats for sums)."""
    if value is None:
        return Decimal("0.0000")
    return Decimal(str(value)).quantize(QUANT)
