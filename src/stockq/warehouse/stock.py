"""Stock levels and the rebuild of ``warehouse_stock_totals`` from the ledger.

Public API (stable):

- ``stock_levels(conn, warehouse_codes=None, skus=None) -> list[StockLevel]``: the cached totals, ordered by
  warehouse code and SKU (zero rows included).
- ``recalculate(conn, *, dry_run, warehouse_code=None) -> list[Drift]``: compares the totals with the ledger and,
  unless ``dry_run``, repairs them; returns the differences (empty: consistent).

The ledger is the items of every document that was posted (``posted_at`` set; a cancelled posted document still
counts, its correction reverses it; a cancelled draft never counts). Each item moves ``quantity * stock_sign`` at
the document's warehouse and the opposite at its target warehouse (MM and corrections of MM).

``recalculate`` is set-based: one statement aggregates the signed movements per (warehouse, product), compares them
with the stored totals in the same aggregate (so stale total rows are seen too) and returns only the keys that
differ; one ``INSERT … ON CONFLICT DO UPDATE`` writes those back (PostgreSQL: from arrays with ``unnest``; SQLite:
one executemany). Nothing loops over document lines in Python. On PostgreSQL the comparison runs without parallel
workers (see the comment in ``recalculate``). Before a repair, PostgreSQL takes ``SHARE ROW EXCLUSIVE`` on the
totals table, so postings wait for the rebuild instead of being overwritten by it (reads go on); on SQLite the
IMMEDIATE transaction does the same. Runs inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from stockq.warehouse import models
from stockq.warehouse._sql import quantize, utcnow
from stockq.warehouse.warehouses import warehouse_by_code


@dataclass(frozen=True, kw_only=True, slots=True)
class StockLevel:
    warehouse_code: str
    sku: str
    name: str
    quantity: Decimal


@dataclass(frozen=True, kw_only=True, slots=True)
class Drift:
    """A total that differs from the ledger: ``stored`` is None when the total row is missing."""

    warehouse_code: str
    sku: str
    stored: Decimal | None
    recomputed: Decimal

    @property
    def delta(self) -> Decimal:
        return self.recomputed - (self.stored or Decimal(0))


def stock_levels(
    conn: Connection, warehouse_codes: Iterable[str] | None = None, skus: Iterable[str] | None = None
) -> list[StockLevel]:
    """Cached stock per warehouse and product, optionally only for some warehouses and SKUs."""
    totals, warehouses, products = models.stock_totals, models.warehouses, models.products
    query = (
        sa.select(warehouses.c.code, products.c.sku, products.c.name, totals.c.quantity)
        .join(warehouses, warehouses.c.id == totals.c.warehouse_id)
        .join(products, products.c.id == totals.c.product_id)
        .order_by(warehouses.c.code, products.c.sku)
    )
    if warehouse_codes is not None:
        query = query.where(warehouses.c.code.in_(list(warehouse_codes)))
    if skus is not None:
        query = query.where(products.c.sku.in_(list(skus)))
    return [
        StockLevel(warehouse_code=code, sku=sku, name=name, quantity=quantize(quantity))
        for code, sku, name, quantity in conn.execute(query)
    ]


def movements_sql(*, warehouse_filter: bool) -> str:
    """SELECT of ``(warehouse_id, product_id, quantity)``: the signed movement of every posted item (two rows for an
    MM line: out of the source, into the target)."""
    source_filter = " AND d.warehouse_id = :warehouse_id" if warehouse_filter else ""
    target_filter = " AND d.target_warehouse_id = :warehouse_id" if warehouse_filter else ""
    return f"""
        SELECT d.warehouse_id AS warehouse_id, i.product_id AS product_id, i.quantity * d.stock_sign AS quantity
        FROM warehouse_document_items i JOIN warehouse_documents d ON d.id = i.document_id
        WHERE d.posted_at IS NOT NULL{source_filter}
        UNION ALL
        SELECT d.target_warehouse_id, i.product_id, -(i.quantity * d.stock_sign)
        FROM warehouse_documents d JOIN warehouse_document_items i ON i.document_id = d.id
        WHERE d.posted_at IS NOT NULL AND d.target_warehouse_id IS NOT NULL{target_filter}"""


def drift_sql(*, warehouse_filter: bool, exact: bool) -> str:
    """SELECT of ``(warehouse_id, product_id, stored, recomputed)`` for every key whose stored total differs from
    the ledger. One aggregate over the movements and the negated stored totals together: its sum per key is
    ``recomputed - stored``, and only keys where that is not zero leave the aggregate (a single SUM, so the hash
    table is no bigger than the bare ledger aggregate's). Only those keys are then joined back to their stored row.
    ``exact``: the database sums NUMERIC exactly (PostgreSQL); otherwise (SQLite stores REAL) the difference is
    rounded to the column's 4 places."""
    totals_filter = " WHERE warehouse_id = :warehouse_id" if warehouse_filter else ""
    difference = "SUM(u.quantity)" if exact else "ROUND(SUM(u.quantity), 4)"
    recomputed = "COALESCE(t.quantity, 0) + k.difference"
    if not exact:
        recomputed = f"ROUND({recomputed}, 4)"
    return f"""
        SELECT k.warehouse_id, k.product_id, t.quantity AS stored, {recomputed} AS recomputed
        FROM (
            SELECT u.warehouse_id, u.product_id, {difference} AS difference
            FROM (
                {movements_sql(warehouse_filter=warehouse_filter)}
                UNION ALL
                SELECT warehouse_id, product_id, -quantity FROM warehouse_stock_totals{totals_filter}
            ) u
            GROUP BY u.warehouse_id, u.product_id
            HAVING {difference} <> 0
        ) k
        LEFT JOIN warehouse_stock_totals t ON t.warehouse_id = k.warehouse_id AND t.product_id = k.product_id"""


def recalculate(conn: Connection, *, dry_run: bool, warehouse_code: str | None = None) -> list[Drift]:
    """Rebuild the totals (of one warehouse, or all) from the ledger; the differences found (see module doc)."""
    params: dict[str, object] = {}
    if warehouse_code is not None:
        params["warehouse_id"] = warehouse_by_code(conn, warehouse_code).id
    postgresql = conn.dialect.name == "postgresql"
    if postgresql and not dry_run:
        conn.exec_driver_sql("LOCK TABLE warehouse_stock_totals IN SHARE ROW EXCLUSIVE MODE")
    query = sa.text(
        "SELECT d.warehouse_id, d.product_id, w.code, p.sku, d.stored, d.recomputed "
        f"FROM ({drift_sql(warehouse_filter=bool(params), exact=postgresql)}) d "
        "JOIN warehouses w ON w.id = d.warehouse_id JOIN products p ON p.id = d.product_id "
        "ORDER BY w.code, p.sku"
    )
    if postgresql:
        # About 3 input rows per (warehouse, product): partial aggregates in parallel workers hardly shrink the input
        # and add a sort and a second aggregation. The bench measured the serial plan faster, so this statement
        # runs without parallel workers; the caller's setting is restored afterwards.
        previous = conn.exec_driver_sql("SHOW max_parallel_workers_per_gather").scalar_one()
        conn.exec_driver_sql("SET LOCAL max_parallel_workers_per_gather = 0")
        rows = conn.execute(query, params).all()
        conn.execute(
            sa.text("SELECT set_config('max_parallel_workers_per_gather', :value, true)"), {"value": str(previous)}
        )
    else:
        rows = conn.execute(query, params).all()
    drift = [
        Drift(
            warehouse_code=str(code),
            sku=str(sku),
            stored=None if stored is None else quantize(stored),
            recomputed=quantize(recomputed),
        )
        for _, _, code, sku, stored, recomputed in rows
    ]
    if drift and not dry_run:
        _write_totals(conn, [(int(w), int(p)) for w, p, *_ in rows], [d.recomputed for d in drift])
    return drift


def _write_totals(conn: Connection, keys: list[tuple[int, int]], quantities: list[Decimal]) -> None:
    """One upsert statement setting the given totals (PostgreSQL: from arrays; SQLite: executemany)."""
    now = utcnow()
    upsert = (
        "INSERT INTO warehouse_stock_totals (warehouse_id, product_id, quantity, updated_at) {source} "
        "ON CONFLICT (warehouse_id, product_id) DO UPDATE "
        "SET quantity = excluded.quantity, updated_at = excluded.updated_at"
    )
    if conn.dialect.name == "postgresql":
        conn.execute(
            sa.text(
                upsert.format(
                    source="SELECT w, p, q, :now FROM unnest(CAST(:w AS bigint[]), CAST(:p AS bigint[]), "
                    "CAST(:q AS numeric[])) AS v(w, p, q)"
                )
            ),
            {"w": [w for w, _ in keys], "p": [p for _, p in keys], "q": quantities, "now": now},
        )
    else:
        conn.execute(
            sa.text(upsert.format(source="VALUES (:w, :p, :q, :now)")),
            [{"w": w, "p": p, "q": str(q), "now": now} for (w, p), q in zip(keys, quantities, strict=True)],
        )
