"""recalculate: corrupted totals are found, repaired, and shown without change by a dry run."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
import sqlalchemy as sa

from stockq import db, errors
from stockq.warehouse import documents, stock
from tests.warehouse.helpers import ledger_sums, totals


def _seed(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        for type_, warehouse, target, items in [
            ("PZ", "MAIN", None, [("P01", "10"), ("P02", "0.1"), ("P02", "0.2"), ("P03", "7")]),
            ("MM", "MAIN", "WH2", [("P01", "4")]),
            ("WZ", "MAIN", None, [("P03", "7")]),
        ]:
            documents.create_and_post(
                conn,
                type=type_,
                warehouse_code=warehouse,
                target_warehouse_code=target,
                items=[(sku, D(q), None) for sku, q in items],
            )
        documents.create_document(conn, type="PZ", warehouse_code="MAIN", items=[("P04", D(99), None)])  # draft


def _corrupt(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        ids = dict(conn.execute(sa.text("SELECT sku, id FROM products")).all())
        wh = dict(conn.execute(sa.text("SELECT code, id FROM warehouses")).all())
        conn.execute(sa.text("UPDATE warehouse_stock_totals SET quantity = 1 WHERE product_id = :p"), {"p": ids["P01"]})
        conn.execute(
            sa.text("DELETE FROM warehouse_stock_totals WHERE product_id = :p AND warehouse_id = :w"),
            {"p": ids["P02"], "w": wh["MAIN"]},
        )
        conn.execute(
            sa.text("INSERT INTO warehouse_stock_totals VALUES (:w, :p, 5, CURRENT_TIMESTAMP)"),
            {"w": wh["WH2"], "p": ids["P05"]},
        )


EXPECTED_DRIFT = [
    ("MAIN", "P01", D(1), D(6), D(5)),
    ("MAIN", "P02", None, D("0.3"), D("0.3")),
    ("WH2", "P01", D(1), D(4), D(3)),
    ("WH2", "P05", D(5), D(0), D(-5)),
]


def _as_tuples(drift: list[stock.Drift]) -> list[tuple[object, ...]]:
    return [(d.warehouse_code, d.sku, d.stored, d.recomputed, d.delta) for d in drift]


def test_recalculate_on_consistent_totals_finds_nothing(ledger: sa.Engine) -> None:
    _seed(ledger)
    with ledger.begin() as conn:
        assert stock.recalculate(conn, dry_run=False) == []
    assert totals(ledger) == {("MAIN", "P01"): D(6), ("WH2", "P01"): D(4), ("MAIN", "P02"): D("0.3")}


def test_recalculate_dry_run_shows_drift_and_changes_nothing(ledger: sa.Engine) -> None:
    _seed(ledger)
    _corrupt(ledger)
    before = totals(ledger)
    with ledger.begin() as conn:
        drift = stock.recalculate(conn, dry_run=True)
    assert _as_tuples(drift) == EXPECTED_DRIFT
    assert totals(ledger) == before
    with ledger.begin() as conn:
        assert _as_tuples(stock.recalculate(conn, dry_run=True)) == EXPECTED_DRIFT


def test_recalculate_repairs_corrupted_totals(ledger: sa.Engine) -> None:
    _seed(ledger)
    _corrupt(ledger)
    with ledger.begin() as conn:
        assert _as_tuples(stock.recalculate(conn, dry_run=False)) == EXPECTED_DRIFT
    assert (
        totals(ledger)
        == ledger_sums(ledger)
        == {
            ("MAIN", "P01"): D(6),
            ("WH2", "P01"): D(4),
            ("MAIN", "P02"): D("0.3"),
        }
    )
    with ledger.begin() as conn:
        assert stock.recalculate(conn, dry_run=False) == []
    # postings after the repair continue from the repaired values
    with ledger.begin() as conn:
        documents.create_and_post(conn, type="WZ", warehouse_code="MAIN", items=[("P01", D(6), None)])
    assert ("MAIN", "P01") not in totals(ledger)


def test_recalculate_one_warehouse_leaves_the_others(ledger: sa.Engine) -> None:
    _seed(ledger)
    _corrupt(ledger)
    with ledger.begin() as conn:
        drift = stock.recalculate(conn, dry_run=False, warehouse_code="WH2")
    assert _as_tuples(drift) == [row for row in EXPECTED_DRIFT if row[0] == "WH2"]
    with ledger.begin() as conn:
        assert [d.warehouse_code for d in stock.recalculate(conn, dry_run=True)] == ["MAIN", "MAIN"]
        with pytest.raises(errors.NotFound):
            stock.recalculate(conn, dry_run=True, warehouse_code="NOPE")


def test_stock_levels_filter_by_warehouse_and_sku(ledger: sa.Engine) -> None:
    _seed(ledger)
    with ledger.begin() as conn:
        levels = stock.stock_levels(conn, warehouse_codes=["WH2"])
        assert [(lv.warehouse_code, lv.sku, lv.quantity) for lv in levels] == [("WH2", "P01", D(4))]
        levels = stock.stock_levels(conn, skus=["P01", "P02"])
        assert [(lv.warehouse_code, lv.sku) for lv in levels] == [("MAIN", "P01"), ("MAIN", "P02"), ("WH2", "P01")]


def test_recalculate_restores_the_callers_settings(pg_url: str) -> None:
    with db.get_engine(pg_url).begin() as conn:
        conn.exec_driver_sql("SET LOCAL max_parallel_workers_per_gather = 3")
        conn.exec_driver_sql("SET LOCAL work_mem = '7MB'")
        assert stock.recalculate(conn, dry_run=True) == []
        assert conn.exec_driver_sql("SHOW max_parallel_workers_per_gather").scalar_one() == "3"
        assert conn.exec_driver_sql("SHOW work_mem").scalar_one() == "7MB"
