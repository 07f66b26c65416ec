"""Ledger property under real concurrency: random plans of postings, cancellations, imports and recalculations,
run at the same time by three OS processes against one database, keep warehouse_stock_totals equal to the ledger.

Each hypothesis example draws one plan per process; the processes (spawned once per test, fed plans through
queues, started together at a barrier) run them, and then the test checks: no operation crashed (every refusal is
an expected one with a one-line message), the refused ones left nothing behind, `recalculate-stocks` found no drift
in any run (dry or repairing), stockq's own dry-run recalculation and an independent SQL ``SUM … GROUP BY`` over
the posted items both equal the stored totals, stock is not negative where that is not allowed, and every document
series is numbered 1..n without gaps. The database carries over from example to example, so later examples run on
top of a longer history.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from stockq import db
from stockq.imports import profiles
from stockq.warehouse import products, stock, warehouses
from tests.reliability import ledger_worker
from tests.reliability.ledger_worker import Outcome
from tests.warehouse.helpers import assert_gap_free, numbers

PROCESSES = 3
EXAMPLES = 20
SKUS = ["P01", "P02", "P03", "P04", "P05", "P06"]
NEW_SKUS = ["NEW1", "NEW2", "NEW3"]  # fresh products in each example: imports create them, maybe two at once
FEED_WAREHOUSES = ["MAIN", "WH2", "MAIN"]  # the warehouse whose stock each process's import profile counts

quantities = st.integers(min_value=1, max_value=24).map(lambda n: Decimal(n) / 4)
lines = st.lists(st.tuples(st.sampled_from(SKUS), quantities), min_size=1, max_size=4)
postings = st.one_of(
    st.tuples(st.just("post"), st.sampled_from(["PZ", "PW", "ZW"]), st.sampled_from(["MAIN", "WH2"]), st.none(), lines),
    st.tuples(st.just("post"), st.sampled_from(["WZ", "RW"]), st.sampled_from(["MAIN", "WH2", "NEG"]), st.none(), lines),
    st.tuples(st.just("post"), st.just("MM"), st.sampled_from(["MAIN", "WH2", "NEG"]), st.sampled_from(["MAIN", "WH2"]), lines)
    .filter(lambda op: op[2] != op[3]),
    st.tuples(st.just("post"), st.just("INW"), st.sampled_from(["MAIN", "WH2", "NEG"]), st.none(), lines)
    .map(lambda op: (*op[:4], list(dict(op[4]).items()))),  # a stocktaking counts each SKU once
)  # fmt: skip
cancellations = st.tuples(st.just("cancel"), st.integers(min_value=0, max_value=1000))
imports = st.tuples(
    st.just("import"),
    st.dictionaries(st.sampled_from(SKUS + NEW_SKUS), st.integers(min_value=0, max_value=40).map(Decimal), min_size=1),
)
recalculations = st.tuples(st.just("recalculate"), st.booleans())
operation = st.one_of(postings, postings, postings, cancellations, imports, recalculations)
plans = st.lists(st.lists(operation, min_size=3, max_size=10), min_size=PROCESSES, max_size=PROCESSES)


@dataclass
class Pool:
    """The processes, each with its own plan queue, and the barrier they start each plan at."""

    processes: list[Any]
    plans: list[Any]
    barrier: Any
    results: Any

    examples: int = 0

    def run(self, plan_per_process: list[list[Any]]) -> list[list[Outcome]]:
        self.examples += 1
        for queue, plan in zip(self.plans, plan_per_process, strict=True):
            queue.put((self.examples, plan))
        self.barrier.wait(timeout=120)
        outcomes: dict[int, list[Outcome]] = {}
        for _ in self.processes:
            index, result = self.results.get(timeout=180)
            outcomes[index] = result
        return [outcomes[i] for i in range(len(self.processes))]


@pytest.fixture
def pool(db_url: str, tmp_path: Path) -> Iterator[Pool]:
    """MAIN and WH2 (no negative stock), NEG (negative allowed), P01…P06; one import profile per process (its own
    CSV under the import root, counting stock in FEED_WAREHOUSES[i]); the processes, started and ready."""
    engine = db.get_engine(db_url)
    with engine.begin() as conn:
        warehouses.add_warehouse(conn, "MAIN", name="Main")
        warehouses.add_warehouse(conn, "WH2", name="Second")
        warehouses.add_warehouse(conn, "NEG", name="Negative allowed", allow_negative_stock=True)
        products.upsert_products(conn, [{"sku": sku, "name": f"Product {sku}"} for sku in SKUS])
        for index in range(PROCESSES):
            ledger_worker.feed_file(tmp_path, index).write_text("sku;name;quantity\n")
            profiles.add_profile(
                conn,
                ledger_worker.profile_name(index),
                source=ledger_worker.feed_file(tmp_path, index).name,
                format="csv",
                import_root=tmp_path,
                options={"delimiter": ";"},
                stock_warehouse=FEED_WAREHOUSES[index],
            )
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(PROCESSES + 1)
    results = ctx.Queue()
    queues = [ctx.Queue() for _ in range(PROCESSES)]
    processes = [
        ctx.Process(target=ledger_worker.serve, args=(db_url, str(tmp_path), i, queues[i], barrier, results))
        for i in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    yield Pool(processes=processes, plans=queues, barrier=barrier, results=results)
    for queue in queues:
        queue.put(None)
    for process in processes:
        process.join(timeout=30)
        if process.exitcode is None:
            process.kill()
            process.join()
    assert [p.exitcode for p in processes] == [0] * PROCESSES


@dataclass
class Tally:
    """What the processes reported, over all examples so far."""

    operations: int = 0
    refused: int = 0
    documents: int = 0
    cancelled: int = 0
    imports: int = 0
    recalculations: int = 0


def independent_ledger(engine: sa.Engine) -> dict[tuple[str, str], Decimal]:
    """Signed movements of the posted items summed per (warehouse, SKU) in one SQL statement, written here rather
    than taken from stock.py: source movements plus the opposite at the target of MM lines."""
    sql = sa.text(
        "SELECT w.code, p.sku, SUM(m.quantity) FROM ("
        " SELECT d.warehouse_id AS wid, i.product_id AS pid, i.quantity * d.stock_sign AS quantity"
        " FROM warehouse_document_items i JOIN warehouse_documents d ON d.id = i.document_id"
        " WHERE d.posted_at IS NOT NULL"
        " UNION ALL"
        " SELECT d.target_warehouse_id, i.product_id, -(i.quantity * d.stock_sign)"
        " FROM warehouse_document_items i JOIN warehouse_documents d ON d.id = i.document_id"
        " WHERE d.posted_at IS NOT NULL AND d.target_warehouse_id IS NOT NULL"
        ") m JOIN warehouses w ON w.id = m.wid JOIN products p ON p.id = m.pid GROUP BY w.code, p.sku"
    )
    with engine.begin() as conn:
        sums = {(code, sku): Decimal(str(total)).quantize(Decimal("0.0001")) for code, sku, total in conn.execute(sql)}
    return {key: value for key, value in sums.items() if value != 0}


def stored_totals(engine: sa.Engine) -> dict[tuple[str, str], Decimal]:
    with engine.begin() as conn:
        return {(lv.warehouse_code, lv.sku): lv.quantity for lv in stock.stock_levels(conn) if lv.quantity != 0}


def check_ledger(engine: sa.Engine, tally: Tally) -> None:
    with engine.begin() as conn:
        assert stock.recalculate(conn, dry_run=True) == []
        by_status: dict[str, int] = dict(
            conn.execute(sa.text("SELECT status, count(*) FROM warehouse_documents GROUP BY status")).all()
        )
        failed_imports = conn.execute(sa.text("SELECT count(*) FROM import_runs WHERE status <> 'succeeded'")).scalar()
    totals = stored_totals(engine)
    assert totals == independent_ledger(engine)
    assert all(quantity >= 0 for (code, _), quantity in totals.items() if code != "NEG"), totals
    # Refused operations left nothing: no draft, and exactly the documents the successful operations reported.
    assert by_status.get("draft", 0) == 0
    assert sum(by_status.values()) == tally.documents
    assert by_status.get("cancelled", 0) == tally.cancelled
    assert failed_imports == 0
    all_numbers = numbers(engine)
    assert len(all_numbers) == tally.documents
    assert_gap_free(all_numbers)


@pytest.mark.slow
def test_concurrent_postings_cancellations_imports_and_recalculations_keep_totals_equal_to_the_ledger(
    pool: Pool, db_url: str
) -> None:
    engine = db.get_engine(db_url)
    tally = Tally()
    started = time.monotonic()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: the database carries over, a replay would differ
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(plan=plans)
    def interleave(plan: list[list[Any]]) -> None:
        outcomes = [outcome for per_process in pool.run(plan) for outcome in per_process]
        crashes = [o.detail for o in outcomes if o.status == "crash"]
        assert crashes == [], "\n\n".join(crashes)
        for outcome in outcomes:
            if outcome.status == "refused":
                assert outcome.detail and "\n" not in outcome.detail and "Traceback" not in outcome.detail
        tally.operations += len(outcomes)
        tally.refused += sum(o.status == "refused" for o in outcomes)
        tally.documents += sum(o.documents for o in outcomes)
        tally.cancelled += sum(o.cancelled for o in outcomes)
        tally.imports += sum(o.kind == "import" for o in outcomes)
        tally.recalculations += sum(o.kind == "recalculate" for o in outcomes)
        check_ledger(engine, tally)

    interleave()
    print(
        f"\n{db_url.split(':')[0]}: {EXAMPLES} examples x {PROCESSES} processes, {tally.operations} operations "
        f"({tally.imports} imports, {tally.recalculations} recalculations, {tally.refused} refused), "
        f"{tally.documents} documents, {tally.cancelled} cancelled, {time.monotonic() - started:.1f} s"
    )
    assert tally.documents > 0 and tally.imports > 0 and tally.recalculations > 0
