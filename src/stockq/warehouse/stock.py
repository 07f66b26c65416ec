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
workers and with a small work_mem (see ``DRIFT_SETTINGS_POSTGRESQL``). Before a repair, PostgreSQL takes ``SHARE ROW
EXCLUSIVE`` on the totals table, so postings wait for the rebuild instead of being overwritten by it (reads go on);
on SQLite the IMMEDIATE transaction does the same. Runs inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
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


def movements_sql(*, warehouse_filter: bool, single_scan: bool) -> str:
    """SELECT of ``(warehouse_id, product_id, quantity)``: the signed movement of every posted item (two rows for an
    MM line: out of the source, into the target).

    ``single_scan`` (PostgreSQL): the items table is read once. Each posted document is joined to one "leg" (its
    own warehouse, its sign) or, with a target warehouse, two (the target gets the opposite sign), and the items are
    joined to those legs. The sign is applied with a CASE (a negation) instead of a NUMERIC multiplication per item,
    which measured about a fifth of the bare aggregate's time; any other stored sign still multiplies. Otherwise
    (SQLite) the MM targets are a second branch: SQLite reaches their items through the document index, so that
    branch reads only the MM lines, and the CASE expressions measured slower there than its cheap REAL multiply."""
    if not single_scan:
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
    leg_warehouse = "CASE l.leg WHEN 1 THEN d.warehouse_id ELSE d.target_warehouse_id END"
    leg_filter = f" AND {leg_warehouse} = :warehouse_id" if warehouse_filter else ""
    return f"""
        SELECT m.warehouse_id AS warehouse_id, i.product_id AS product_id,
            CASE m.sign WHEN 1 THEN i.quantity WHEN -1 THEN -i.quantity ELSE i.quantity * m.sign END AS quantity
        FROM warehouse_document_items i JOIN (
            SELECT d.id AS document_id, {leg_warehouse} AS warehouse_id,
                CASE l.leg WHEN 1 THEN d.stock_sign ELSE -d.stock_sign END AS sign
            FROM warehouse_documents d
            JOIN (SELECT 1 AS leg UNION ALL SELECT 2) l ON l.leg = 1 OR d.target_warehouse_id IS NOT NULL
            WHERE d.posted_at IS NOT NULL{leg_filter}
        ) m ON m.document_id = i.document_id"""


def drift_sql(*, warehouse_filter: bool, postgresql: bool) -> str:
    """SELECT of ``(warehouse_id, product_id, stored, recomputed)`` for every key whose stored total differs from
    the ledger. One aggregate over the movements and the negated stored totals together: its sum per key is
    ``recomputed - stored``, and only keys where that is not zero leave the aggregate (a single SUM, so the hash
    table is no bigger than the bare ledger aggregate's). Only those keys are then joined back to their stored row.
    PostgreSQL sums NUMERIC exactly; SQLite stores REAL, so there the difference is rounded to the column's 4
    places. The movements: see ``movements_sql``."""
    exact = postgresql
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
                {movements_sql(warehouse_filter=warehouse_filter, single_scan=postgresql)}
                UNION ALL
                SELECT warehouse_id, product_id, -quantity FROM warehouse_stock_totals{totals_filter}
            ) u
            GROUP BY u.warehouse_id, u.product_id
            HAVING {difference} <> 0
        ) k
        LEFT JOIN warehouse_stock_totals t ON t.warehouse_id = k.warehouse_id AND t.product_id = k.product_id"""


# PostgreSQL settings for the drift statement only (restored afterwards, see recalculate).
# - No parallel workers: about 3 input rows per (warehouse, product), so partial aggregates in workers hardly shrink
#   the input and add a second aggregation; the bench measured the serial plan faster.
# - A small work_mem: a key of the aggregate takes ~300 bytes in memory (hash entry and NUMERIC sum state), and one
#   big in-memory hash table of them is slower than an aggregate that partitions its input up front into batches
#   small enough to stay in the CPU cache. 1,000,000 items, ~440,000 keys, one run, best of 3 (floor 0.94 s):
#   512 kB 1.15 s, 1 MB 1.08 s, 2 MB 1.10 s, the default 4 MB 1.21 s, 8 MB 1.39 s, 64 MB 1.99 s. Setting it also
#   keeps a server configured with a large work_mem from making the rebuild slower.
DRIFT_SETTINGS_POSTGRESQL: dict[str, str] = {"max_parallel_workers_per_gather": "0", "work_mem": "1MB"}


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
        f"FROM ({drift_sql(warehouse_filter=bool(params), postgresql=postgresql)}) d "
        "JOIN warehouses w ON w.id = d.warehouse_id JOIN products p ON p.id = d.product_id "
        "ORDER BY w.code, p.sku"
    )
    if postgresql:
        with _transaction_settings(conn, DRIFT_SETTINGS_POSTGRESQL):
            rows = conn.execute(query, params).all()
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


@contextmanager
def _transaction_settings(conn: Connection, settings: dict[str, str]) -> Iterator[None]:
    """PostgreSQL: the given settings for the statements inside, local to the caller's transaction; the caller's
    values are set back afterwards. Not on an error: the transaction (or savepoint) is then aborted, and rolling it
    back undoes the local settings anyway."""
    names, values = list(settings), list(settings.values())
    # One round trip each way: read the caller's values and set ours (per row, current_setting is evaluated
    # before set_config), then set the caller's back.
    swap = sa.text(
        "SELECT current_setting(name), set_config(name, value, true) "
        "FROM unnest(CAST(:names AS text[]), CAST(:values AS text[])) WITH ORDINALITY AS s(name, value, n) ORDER BY n"
    )
    previous = [str(row[0]) for row in conn.execute(swap, {"names": names, "values": values})]
    yield
    restore = sa.text(
        "SELECT set_config(name, value, true) FROM unnest(CAST(:names AS text[]), CAST(:values AS text[])) AS s(name, value)"
    )
    conn.execute(restore, {"names": names, "values": previous}).all()


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
