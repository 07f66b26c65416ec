"""Reading the ledger's state in tests."""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa

from stockq.warehouse import stock


def totals(engine: sa.Engine) -> dict[tuple[str, str], Decimal]:
    """Stored totals by (warehouse code, sku), zero rows left out."""
    with engine.begin() as conn:
        return {(lv.warehouse_code, lv.sku): lv.quantity for lv in stock.stock_levels(conn) if lv.quantity != 0}


def ledger_sums(engine: sa.Engine) -> dict[tuple[str, str], Decimal]:
    """The ledger recomputed independently of stock.py: Python sums over every posted or cancelled document."""
    sql = sa.text(
        "SELECT d.type, d.stock_sign, w.code, t.code, p.sku, i.quantity FROM warehouse_document_items i "
        "JOIN warehouse_documents d ON d.id = i.document_id JOIN products p ON p.id = i.product_id "
        "JOIN warehouses w ON w.id = d.warehouse_id LEFT JOIN warehouses t ON t.id = d.target_warehouse_id "
        "WHERE d.posted_at IS NOT NULL"
    )
    sums: dict[tuple[str, str], Decimal] = {}
    with engine.begin() as conn:
        for _type, sign, source, target, sku, quantity in conn.execute(sql):
            moved = Decimal(str(quantity)).quantize(Decimal("0.0001")) * sign
            sums[(source, sku)] = sums.get((source, sku), Decimal(0)) + moved
            if target is not None:
                sums[(target, sku)] = sums.get((target, sku), Decimal(0)) - moved
    return {key: value for key, value in sums.items() if value != 0}


def numbers(engine: sa.Engine) -> list[str]:
    with engine.begin() as conn:
        return [
            str(n)
            for n in conn.execute(
                sa.text("SELECT number FROM warehouse_documents WHERE number IS NOT NULL ORDER BY number")
            ).scalars()
        ]


def assert_gap_free(all_numbers: list[str]) -> None:
    """Numbers are unique and, per series, exactly 1..n."""
    assert len(all_numbers) == len(set(all_numbers)), "duplicate numbers"
    by_series: dict[str, list[int]] = {}
    for number in all_numbers:
        series, _, counter = number.rpartition("/")
        by_series.setdefault(series, []).append(int(counter))
    for series, counters in by_series.items():
        assert sorted(counters) == list(range(1, len(counters) + 1)), f"gaps in {series}: {sorted(counters)}"
