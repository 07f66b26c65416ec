"""The stock-changed hook: called inside the posting transaction with the changed (warehouse, product) pairs."""

from __future__ import annotations

import json
from decimal import Decimal as D
from typing import ClassVar

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

import stockq
from stockq.queue import api
from stockq.warehouse import documents, hooks
from stockq.warehouse.errors import InsufficientStock


class SyncStockForTest(stockq.Job):
    """Stands in for the integrations' stock sync job (never run here)."""

    name = "tests.warehouse.SyncStockForTest"
    queue = "integrations"
    warehouse_id: ClassVar[int]

    def handle(self) -> None:
        raise AssertionError("not run in these tests")


TOTAL = "SELECT quantity FROM warehouse_stock_totals WHERE warehouse_id = :w AND product_id = :p"


def _ids(conn: Connection) -> tuple[dict[str, int], dict[str, int]]:
    warehouses = dict(conn.execute(sa.text("SELECT code, id FROM warehouses")).all())
    products = dict(conn.execute(sa.text("SELECT sku, id FROM products")).all())
    return warehouses, products


def test_hook_receives_changed_pairs_inside_the_transaction(ledger: sa.Engine) -> None:
    calls: list[tuple[list[tuple[int, int]], list[str]]] = []

    def listener(conn: Connection, changed: list[tuple[int, int]]) -> None:
        assert conn.in_transaction()
        seen = [  # the totals are already written when the listener runs
            str(D(str(conn.execute(sa.text(TOTAL), {"w": w, "p": p}).scalar())).normalize()) for w, p in changed
        ]
        calls.append((changed, seen))

    hooks.on_stock_changed(listener)
    hooks.on_stock_changed(listener)  # registering twice calls it once
    with ledger.begin() as conn:
        wh, pr = _ids(conn)
        documents.create_and_post(conn, type="PZ", warehouse_code="MAIN", items=[("P02", D(5), None)])
        mm = documents.create_and_post(
            conn,
            type="MM",
            warehouse_code="MAIN",
            target_warehouse_code="WH2",
            items=[("P02", D(1), None), ("P02", D(1), None)],
        )
        documents.post_document(conn, mm.id)  # already posted: no announcement
        documents.create_and_post(conn, type="INW", warehouse_code="MAIN", items=[("P02", D(3), None)])  # no change
    assert calls == [
        ([(wh["MAIN"], pr["P02"])], ["5"]),
        ([(wh["MAIN"], pr["P02"]), (wh["WH2"], pr["P02"])], ["3", "2"]),
    ]
    hooks.remove_listener(listener)
    with ledger.begin() as conn:
        documents.create_and_post(conn, type="PZ", warehouse_code="MAIN", items=[("P03", D(1), None)])
    assert len(calls) == 2


def test_hook_listener_dispatches_jobs_that_commit_and_roll_back_with_the_posting(ledger: sa.Engine) -> None:
    def queue_sync(conn: Connection, changed: list[tuple[int, int]]) -> None:
        for warehouse_id, product_id in changed:
            api.dispatch(SyncStockForTest(warehouse_id=warehouse_id, product_id=product_id), conn=conn)

    hooks.on_stock_changed(queue_sync)
    with ledger.begin() as conn:
        documents.create_and_post(conn, type="PZ", warehouse_code="MAIN", items=[("P01", D(2), None)])
    with pytest.raises(InsufficientStock), ledger.begin() as conn:
        documents.create_and_post(conn, type="PZ", warehouse_code="MAIN", items=[("P04", D(2), None)])
        documents.create_and_post(conn, type="WZ", warehouse_code="MAIN", items=[("P01", D(3), None)])
    with ledger.begin() as conn:
        _, pr = _ids(conn)
        payloads = [json.loads(p) for p in conn.execute(sa.text("SELECT payload FROM jobs")).scalars()]
        queues = conn.execute(sa.text("SELECT DISTINCT queue FROM jobs")).scalars().all()
    assert queues == ["integrations"]
    assert len(payloads) == 1  # the rolled-back transaction's job (P04) went with it
    assert str(pr["P01"]) in json.dumps(payloads[0]) and "SyncStockForTest" in json.dumps(payloads[0])


def test_hook_listener_that_raises_aborts_the_posting(ledger: sa.Engine) -> None:
    def broken(conn: Connection, changed: list[tuple[int, int]]) -> None:
        raise RuntimeError("listener failed")

    hooks.on_stock_changed(broken)
    with pytest.raises(RuntimeError, match="listener failed"), ledger.begin() as conn:
        documents.create_and_post(conn, type="PZ", warehouse_code="MAIN", items=[("P01", D(2), None)])
    with ledger.begin() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM warehouse_documents")).scalar() == 0
        assert conn.execute(sa.text("SELECT count(*) FROM warehouse_stock_totals WHERE quantity <> 0")).scalar() == 0
