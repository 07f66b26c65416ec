"""Property: any sequence of creates, posts and cancels leaves the totals equal to what recalculate computes."""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stockq import errors
from stockq.warehouse import documents, stock
from tests.warehouse.helpers import ledger_sums, totals

SKUS = ["P01", "P02", "P03", "P04"]
quantities = st.integers(min_value=1, max_value=4000).map(lambda n: Decimal(n) / 100)
lines = st.lists(st.tuples(st.sampled_from(SKUS), quantities, st.none()), min_size=1, max_size=4)
creates = st.tuples(
    st.just("create"),
    st.sampled_from(["PZ", "WZ", "PW", "RW", "ZW", "MM", "INW"]),
    st.sampled_from(["MAIN", "WH2", "NEG"]),
    st.sampled_from(["MAIN", "WH2", "NEG"]),
    lines,
    st.booleans(),
)
follow_ups = st.tuples(st.sampled_from(["post", "cancel"]), st.integers(min_value=0, max_value=50))
operations = st.lists(st.one_of(creates, follow_ups), min_size=1, max_size=12)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
def test_random_documents_leave_totals_equal_to_the_recomputed_ledger(ledger: sa.Engine, ops: list[tuple]) -> None:
    # The database carries over between examples: the invariant must hold after any history, so that is fine.
    created: list[int] = []
    for op in ops:
        try:
            with ledger.begin() as conn:
                if op[0] == "create":
                    _, type_, source, target, items, post = op
                    if type_ == "INW":
                        items = list({sku: (sku, q, p) for sku, q, p in items}.values())
                    doc = documents.create_and_post(
                        conn,
                        type=type_,
                        warehouse_code=source,
                        target_warehouse_code=target if type_ == "MM" else None,
                        items=items,
                        post=post,
                    )
                    created.append(doc.id)
                elif created:
                    document_id = created[op[1] % len(created)]
                    if op[0] == "post":
                        documents.post_document(conn, document_id)
                    else:
                        documents.cancel_document(conn, document_id)
        except errors.StockqError:
            pass  # refused (negative stock, MM to itself, cancelled twice…): rolled back, the invariant still holds
    with ledger.begin() as conn:
        assert stock.recalculate(conn, dry_run=True) == []
    assert totals(ledger) == ledger_sums(ledger)
    non_negative = {key: q for key, q in totals(ledger).items() if key[0] != "NEG"}
    assert all(q >= 0 for q in non_negative.values())
