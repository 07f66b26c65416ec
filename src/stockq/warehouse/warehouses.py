"""Warehouses: ``add_warehouse``, ``list_warehouses``, ``warehouse_by_code``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from stockq import errors
from stockq.warehouse import models
from stockq.warehouse._sql import utcnow


@dataclass(frozen=True, kw_only=True, slots=True)
class Warehouse:
    """One warehouse: its code, name, and whether issues may take its stock below zero."""

    id: int
    code: str
    name: str
    allow_negative_stock: bool
    created_at: datetime


def _from_row(row: sa.Row[tuple[object, ...]]) -> Warehouse:
    m = row._mapping
    return Warehouse(
        id=int(m["id"]),
        code=str(m["code"]),
        name=str(m["name"]),
        allow_negative_stock=bool(m["allow_negative_stock"]),
        created_at=m["created_at"],
    )


def add_warehouse(conn: Connection, code: str, *, name: str, allow_negative_stock: bool = False) -> Warehouse:
    """Create a warehouse; InvalidInput when the code is empty or already taken."""
    code = code.strip()
    if not code:
        raise errors.InvalidInput("A warehouse code must not be empty")
    if len(code) > 32:
        raise errors.InvalidInput(f"Warehouse code {code!r} is longer than 32 characters")
    exists = conn.execute(sa.select(models.warehouses.c.id).where(models.warehouses.c.code == code)).first()
    if exists is not None:
        raise errors.InvalidInput(f"Warehouse {code} already exists")
    conn.execute(
        models.warehouses.insert().values(
            code=code, name=name.strip() or code, allow_negative_stock=allow_negative_stock, created_at=utcnow()
        )
    )
    return warehouse_by_code(conn, code)


def list_warehouses(conn: Connection) -> list[Warehouse]:
    """Every warehouse, ordered by code."""
    rows = conn.execute(sa.select(models.warehouses).order_by(models.warehouses.c.code))
    return [_from_row(row) for row in rows]


def warehouse_by_code(conn: Connection, code: str) -> Warehouse:
    """The warehouse with ``code``; NotFound otherwise."""
    row = conn.execute(sa.select(models.warehouses).where(models.warehouses.c.code == code)).first()
    if row is None:
        raise errors.NotFound(f"Warehouse {code} does not exist")
    return _from_row(row)


def warehouses_by_id(conn: Connection) -> dict[int, Warehouse]:
    """Every warehouse keyed by id."""
    return {w.id: w for w in list_warehouses(conn)}
