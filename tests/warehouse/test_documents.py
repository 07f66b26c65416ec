"""Posting: every document type's effect, MM, INW, negative stock, cancellation by correction, double posting,
numbering."""

from __future__ import annotations

import threading
from datetime import date
from decimal import Decimal as D

import pytest
import sqlalchemy as sa

from stockq import errors
from stockq.warehouse import documents, stock
from stockq.warehouse.errors import InsufficientStock, InvalidDocumentState
from tests.warehouse.helpers import assert_gap_free, ledger_sums, numbers, totals


def post(engine: sa.Engine, type_: str, warehouse: str, *items: tuple[str, str], to: str | None = None) -> str:
    with engine.begin() as conn:
        doc = documents.create_and_post(
            conn,
            type=type_,
            warehouse_code=warehouse,
            target_warehouse_code=to,
            items=[(sku, D(qty), None) for sku, qty in items],
        )
    assert doc.number is not None
    return doc.number


@pytest.mark.parametrize(("type_", "sign"), [("PZ", 1), ("PW", 1), ("ZW", 1), ("WZ", -1), ("RW", -1)])
def test_post_every_type_moves_stock_by_its_sign(ledger: sa.Engine, type_: str, sign: int) -> None:
    post(ledger, "PZ", "MAIN", ("P01", "100"), ("P02", "10"))
    number = post(ledger, type_, "MAIN", ("P01", "2.5"), ("P02", "1"))
    assert number.startswith(f"{type_}/{date.today():%Y/%m}/")
    assert totals(ledger) == {("MAIN", "P01"): D(100) + sign * D("2.5"), ("MAIN", "P02"): D(10) + sign * D(1)}
    assert totals(ledger) == ledger_sums(ledger)


def test_post_outflow_of_missing_stock_is_refused_with_product_and_quantity(ledger: sa.Engine) -> None:
    post(ledger, "PZ", "MAIN", ("P01", "3"))
    with pytest.raises(InsufficientStock) as info, ledger.begin() as conn:
        documents.create_and_post(conn, type="WZ", warehouse_code="MAIN", items=[("P01", D("3.5"), None)])
    assert "P01 in MAIN: 3 in stock, 3.5 needed" in info.value.message
    assert totals(ledger) == {("MAIN", "P01"): D(3)}
    assert numbers(ledger) == [f"PZ/{date.today():%Y/%m}/0001"]  # the refused posting used no number


def test_post_outflow_below_zero_allowed_where_the_warehouse_allows_it(ledger: sa.Engine) -> None:
    post(ledger, "WZ", "NEG", ("P01", "4"))
    post(ledger, "RW", "NEG", ("P02", "0.0001"))
    assert totals(ledger) == {("NEG", "P01"): D(-4), ("NEG", "P02"): D("-0.0001")}
    assert totals(ledger) == ledger_sums(ledger)


def test_post_mm_moves_between_warehouses(ledger: sa.Engine) -> None:
    post(ledger, "PZ", "MAIN", ("P01", "10"), ("P02", "5"))
    post(ledger, "MM", "MAIN", ("P01", "4"), ("P02", "5"), to="WH2")
    assert totals(ledger) == {("MAIN", "P01"): D(6), ("WH2", "P01"): D(4), ("WH2", "P02"): D(5)}
    with pytest.raises(InsufficientStock, match="P01 in MAIN: 6 in stock, 7 needed"):
        post(ledger, "MM", "MAIN", ("P01", "7"), to="WH2")
    assert totals(ledger) == ledger_sums(ledger)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"type": "MM", "target_warehouse_code": None}, "needs a target warehouse"),
        ({"type": "MM", "target_warehouse_code": "MAIN"}, "different from the source"),
        ({"type": "PZ", "target_warehouse_code": "WH2"}, "Only MM documents have a target"),
        ({"type": "XX"}, "Unknown document type"),
        ({"type": "KOR"}, "created by cancelling"),
        ({"type": "PZ", "items": [("NOPE", D(1), None)]}, "Unknown SKU: NOPE"),
        ({"type": "PZ", "items": [("P01", D(0), None)]}, "must be positive"),
        ({"type": "PZ", "items": [("P01", D("0.00001"), None)]}, "at most 4 decimal places"),
        ({"type": "PZ", "items": []}, "at least one item"),
    ],
)
def test_create_document_refuses_invalid_documents(ledger: sa.Engine, kwargs: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {"warehouse_code": "MAIN", "items": [("P01", D(1), None)], **kwargs}
    with pytest.raises(errors.InvalidInput, match=message), ledger.begin() as conn:
        documents.create_document(conn, **arguments)  # type: ignore[arg-type]


def test_post_inventory_books_only_the_differences(ledger: sa.Engine) -> None:
    post(ledger, "PZ", "MAIN", ("P01", "10"), ("P02", "5"), ("P03", "1"))
    with ledger.begin() as conn:
        inw = documents.post_inventory(conn, "MAIN", {"P01": D("8.5"), "P02": D(5), "P04": D(2)})
    assert inw is not None and inw.number is not None and inw.number.startswith("INW/")
    booked = {item.sku: (item.counted_quantity, item.quantity) for item in inw.items}
    assert booked == {"P01": (D("8.5"), D("-1.5")), "P04": (D(2), D(2))}
    assert totals(ledger) == {
        ("MAIN", "P01"): D("8.5"),
        ("MAIN", "P02"): D(5),
        ("MAIN", "P03"): D(1),
        ("MAIN", "P04"): D(2),
    }
    with ledger.begin() as conn:
        assert documents.post_inventory(conn, "MAIN", {"P01": D("8.5"), "P04": D(2)}) is None
    assert totals(ledger) == ledger_sums(ledger)


def test_inw_draft_books_counted_minus_stock_at_posting_time(ledger: sa.Engine) -> None:
    post(ledger, "PZ", "MAIN", ("P01", "10"))
    with ledger.begin() as conn:
        draft = documents.create_document(conn, type="INW", warehouse_code="MAIN", items=[("P01", D(7), None)])
    post(ledger, "WZ", "MAIN", ("P01", "1"))  # stock moves between the count and its posting
    with ledger.begin() as conn:
        posted = documents.post_document(conn, draft.id).document
    assert posted.items[0].quantity == D(-2)
    assert totals(ledger) == {("MAIN", "P01"): D(7)}


def test_post_twice_changes_nothing_the_second_time(ledger: sa.Engine) -> None:
    with ledger.begin() as conn:
        draft = documents.create_document(conn, type="PZ", warehouse_code="MAIN", items=[("P01", D(5), None)])
    with ledger.begin() as conn:
        first = documents.post_document(conn, f"#{draft.id}")
    with ledger.begin() as conn:
        second = documents.post_document(conn, first.document.number or "")
    assert not first.already_posted and first.changed
    assert second.already_posted and second.changed == []
    assert second.document.number == first.document.number
    assert second.document.posted_at == first.document.posted_at
    assert totals(ledger) == {("MAIN", "P01"): D(5)}
    assert len(numbers(ledger)) == 1


def test_cancel_posted_document_posts_a_reversing_correction(ledger: sa.Engine) -> None:
    post(ledger, "PZ", "MAIN", ("P01", "10"))
    mm = post(ledger, "MM", "MAIN", ("P01", "4"), to="WH2")
    with ledger.begin() as conn:
        result = documents.cancel_document(conn, mm)
    assert result.document.status is documents.DocumentStatus.CANCELLED
    correction = result.correction
    assert correction is not None and correction.type is documents.DocumentType.KOR
    assert correction.corrects_number == mm and correction.number and correction.number.startswith("KOR/")
    assert [item.quantity for item in correction.items] == [D(-4)]
    assert totals(ledger) == {("MAIN", "P01"): D(10)}
    assert totals(ledger) == ledger_sums(ledger)
    with pytest.raises(InvalidDocumentState, match="already cancelled"), ledger.begin() as conn:
        documents.cancel_document(conn, mm)
    with pytest.raises(InvalidDocumentState, match="is a correction"), ledger.begin() as conn:
        documents.cancel_document(conn, correction.number)
    with pytest.raises(InvalidDocumentState, match="cancelled and cannot be posted"), ledger.begin() as conn:
        documents.post_document(conn, mm)


def test_cancel_receipt_whose_goods_were_issued_is_refused(ledger: sa.Engine) -> None:
    pz = post(ledger, "PZ", "MAIN", ("P01", "10"))
    post(ledger, "WZ", "MAIN", ("P01", "8"))
    with pytest.raises(InsufficientStock, match="P01 in MAIN: 2 in stock, 10 needed"), ledger.begin() as conn:
        documents.cancel_document(conn, pz)
    with ledger.begin() as conn:
        assert documents.get_document(conn, pz).status is documents.DocumentStatus.POSTED
    assert totals(ledger) == {("MAIN", "P01"): D(2)}


def test_cancel_draft_needs_no_correction_and_leaves_no_number(ledger: sa.Engine) -> None:
    with ledger.begin() as conn:
        draft = documents.create_document(conn, type="PZ", warehouse_code="MAIN", items=[("P01", D(5), None)])
        result = documents.cancel_document(conn, draft.id)
    assert result.correction is None and result.document.status is documents.DocumentStatus.CANCELLED
    assert result.document.number is None
    assert totals(ledger) == {}
    with ledger.begin() as conn:
        assert stock.recalculate(conn, dry_run=True) == []  # a cancelled draft is not in the ledger


def test_numbers_follow_series_without_gaps_and_drafts_take_none(ledger: sa.Engine) -> None:
    with ledger.begin() as conn:
        abandoned = documents.create_document(conn, type="PZ", warehouse_code="MAIN", items=[("P01", D(1), None)])
    assert abandoned.number is None
    first = post(ledger, "PZ", "MAIN", ("P01", "5"))
    post(ledger, "WZ", "MAIN", ("P01", "1"))
    second = post(ledger, "PZ", "MAIN", ("P01", "5"))
    with pytest.raises(InsufficientStock):
        post(ledger, "WZ", "MAIN", ("P01", "100"))
    third = post(ledger, "WZ", "MAIN", ("P01", "1"))
    prefix = f"{date.today():%Y/%m}"
    assert (first, second, third) == (f"PZ/{prefix}/0001", f"PZ/{prefix}/0002", f"WZ/{prefix}/0002")
    assert_gap_free(numbers(ledger))


def test_document_date_chooses_the_series(ledger: sa.Engine) -> None:
    with ledger.begin() as conn:
        draft = documents.create_document(
            conn, type="PW", warehouse_code="MAIN", items=[("P01", D(1), D("2.5"))], document_date=date(2025, 1, 31)
        )
        posted = documents.post_document(conn, draft.id).document
    assert posted.number == "PW/2025/01/0001"
    assert posted.items[0].unit_price == D("2.5")


def test_list_documents_filters_by_type_status_and_date(ledger: sa.Engine) -> None:
    post(ledger, "PZ", "MAIN", ("P01", "5"))
    with ledger.begin() as conn:
        documents.create_document(conn, type="WZ", warehouse_code="MAIN", items=[("P01", D(1), None)])
        assert [d.type.value for d in documents.list_documents(conn)] == ["WZ", "PZ"]
        assert [d.status.value for d in documents.list_documents(conn, status="draft")] == ["draft"]
        assert [d.lines for d in documents.list_documents(conn, type="pz")] == [1]
        assert documents.list_documents(conn, since=date(2999, 1, 1)) == []
        with pytest.raises(errors.InvalidInput, match="Unknown status"):
            documents.list_documents(conn, status="open")


def test_two_connections_posting_the_same_draft_book_it_once(ledger: sa.Engine) -> None:
    with ledger.begin() as conn:
        draft = documents.create_document(conn, type="PZ", warehouse_code="MAIN", items=[("P01", D(5), None)])
    barrier = threading.Barrier(2)
    results: list[documents.PostResult] = []

    def post_it() -> None:
        barrier.wait()
        with ledger.begin() as conn:
            results.append(documents.post_document(conn, draft.id))

    threads = [threading.Thread(target=post_it) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(r.already_posted for r in results) == [False, True]
    assert totals(ledger) == {("MAIN", "P01"): D(5)}
    assert len(numbers(ledger)) == 1
