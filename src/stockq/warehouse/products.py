"""Products (master data) and the bulk functions the imports call.

Public API (stable; the imports use it):

- ``upsert_products(conn, rows, *, batch_size=1000) -> UpsertCounts``: each row is a mapping with ``sku`` and
  optionally ``ean``, ``name``, ``unit``, ``active``. Rows are handled in batches: one SELECT of the batch's existing
  SKUs, then one ``INSERT … ON CONFLICT (sku) DO UPDATE`` carrying only the new and the changed rows. A column
  missing from a row is left as it is on update (and takes its default on insert). A SKU repeated in the input: the
  last row wins. Counts are exact when no other transaction writes the same SKUs at the same time.
- ``product_ids_by_sku(conn, skus) -> dict[str, int]``: ids of the SKUs that exist (unknown SKUs are absent).
- ``add_product``, ``list_products``: what the CLI uses.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from stockq import errors
from stockq.warehouse import models
from stockq.warehouse._sql import insert, utcnow

OPTIONAL_COLUMNS = ("ean", "name", "unit", "active")
T = TypeVar("T")
_IN_CHUNK = 900  # stays below SQLite's bound-parameter limit in old builds


@dataclass(frozen=True, kw_only=True, slots=True)
class Product:
    """One product (SKU)."""

    id: int
    sku: str
    ean: str | None
    name: str
    unit: str
    active: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, kw_only=True, slots=True)
class UpsertCounts:
    """What ``upsert_products`` did."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0

    def __add__(self, other: UpsertCounts) -> UpsertCounts:
        return UpsertCounts(
            created=self.created + other.created,
            updated=self.updated + other.updated,
            unchanged=self.unchanged + other.unchanged,
        )


def _from_row(row: sa.Row[tuple[object, ...]]) -> Product:
    m = row._mapping
    return Product(
        id=int(m["id"]),
        sku=str(m["sku"]),
        ean=m["ean"],
        name=str(m["name"]),
        unit=str(m["unit"]),
        active=bool(m["active"]),
        created_at=m["created_at"],
        updated_at=m["updated_at"],
    )


def add_product(
    conn: Connection, sku: str, *, name: str, ean: str | None = None, unit: str = "szt", active: bool = True
) -> Product:
    """Create one product; InvalidInput when the SKU exists already."""
    row = _normalise({"sku": sku, "name": name, "ean": ean, "unit": unit, "active": active})
    if product_ids_by_sku(conn, [row["sku"]]):
        raise errors.InvalidInput(f"Product {row['sku']} already exists")
    now = utcnow()
    conn.execute(models.products.insert().values(**row, created_at=now, updated_at=now))
    found = conn.execute(sa.select(models.products).where(models.products.c.sku == row["sku"])).one()
    return _from_row(found)


def list_products(conn: Connection, *, search: str | None = None, limit: int | None = None) -> list[Product]:
    """Products ordered by SKU; ``search`` matches a substring of SKU, name or EAN (case-insensitive)."""
    query = sa.select(models.products).order_by(models.products.c.sku)
    if search:
        pattern = f"%{search.lower()}%"
        query = query.where(
            sa.or_(
                sa.func.lower(models.products.c.sku).like(pattern),
                sa.func.lower(models.products.c.name).like(pattern),
                sa.func.lower(sa.func.coalesce(models.products.c.ean, "")).like(pattern),
            )
        )
    if limit is not None:
        query = query.limit(limit)
    return [_from_row(row) for row in conn.execute(query)]


def product_ids_by_sku(conn: Connection, skus: Iterable[str]) -> dict[str, int]:
    """Map each existing SKU of ``skus`` to its product id (unknown SKUs are left out)."""
    result: dict[str, int] = {}
    for chunk in _chunks(sorted(set(skus)), _IN_CHUNK):
        rows = conn.execute(
            sa.select(models.products.c.sku, models.products.c.id).where(models.products.c.sku.in_(chunk))
        )
        result.update({str(sku): int(pid) for sku, pid in rows})
    return result


def upsert_products(conn: Connection, rows: Iterable[Mapping[str, Any]], *, batch_size: int = 1000) -> UpsertCounts:
    """Create or update products by SKU in batches (see the module docstring); returns the counts."""
    total = UpsertCounts()
    for batch in _chunks(iter(rows), batch_size):
        total = total + _upsert_batch(conn, batch)
    return total


def _upsert_batch(conn: Connection, batch: list[Mapping[str, Any]]) -> UpsertCounts:
    by_sku: dict[str, dict[str, Any]] = {}
    for raw in batch:
        row = _normalise(raw)
        by_sku[row["sku"]] = row
    table = models.products
    existing = {
        str(r.sku): r._mapping
        for r in conn.execute(
            sa.select(table.c.sku, *(table.c[c] for c in OPTIONAL_COLUMNS)).where(table.c.sku.in_(list(by_sku)))
        )
    }
    created = updated = unchanged = 0
    to_write: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for sku, row in by_sku.items():
        current = existing.get(sku)
        if current is None:
            created += 1
        elif all(current[c] == row[c] for c in OPTIONAL_COLUMNS if c in row):
            unchanged += 1
            continue
        else:
            updated += 1
        to_write.setdefault(tuple(sorted(row)), []).append(row)
    now = utcnow()
    for columns, rows in to_write.items():
        statement = insert(conn, table)
        update_columns = {c: statement.excluded[c] for c in columns if c != "sku"}
        update_columns["updated_at"] = statement.excluded.updated_at
        values = [{**row, "created_at": now, "updated_at": now} for row in rows]
        conn.execute(statement.on_conflict_do_update(index_elements=["sku"], set_=update_columns), values)
    return UpsertCounts(created=created, updated=updated, unchanged=unchanged)


def _normalise(raw: Mapping[str, Any]) -> dict[str, Any]:
    sku = str(raw.get("sku") or "").strip()
    if not sku:
        raise errors.InvalidInput("A product needs a SKU")
    if len(sku) > 64:
        raise errors.InvalidInput(f"SKU {sku!r} is longer than 64 characters")
    row: dict[str, Any] = {"sku": sku}
    if "ean" in raw:
        ean = str(raw["ean"] or "").strip()
        row["ean"] = ean or None
    if "name" in raw and raw["name"] is not None:
        row["name"] = str(raw["name"]).strip()[:255]
    if raw.get("unit"):
        row["unit"] = str(raw["unit"]).strip()[:16]
    if "active" in raw and raw["active"] is not None:
        row["active"] = bool(raw["active"])
    return row


def _chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk
