"""Four processes post 200 documents each over the same 20 products: totals equal the ledger, numbers have no
gaps or duplicates, nobody deadlocks."""

from __future__ import annotations

import multiprocessing
import time

import sqlalchemy as sa

from stockq.warehouse import stock
from tests.warehouse import posting_worker
from tests.warehouse.helpers import assert_gap_free, ledger_sums, numbers, totals

PROCESSES = 4
DOCUMENTS = 200


def test_concurrent_posting_keeps_totals_exact_and_numbers_gap_free(ledger: sa.Engine, db_url: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    results = ctx.Queue()
    workers = [
        ctx.Process(target=posting_worker.post_documents, args=(db_url, seed, DOCUMENTS, start, results))
        for seed in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    time.sleep(1.0)  # let every process import stockq and open its engine, so they start together
    start.set()
    outcomes = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
        assert worker.exitcode == 0
    posted = sum(o[1] for o in outcomes)
    refused = sum(o[2] for o in outcomes)
    cancelled = sum(o[3] for o in outcomes)
    assert posted + refused == PROCESSES * DOCUMENTS
    assert posted > PROCESSES * DOCUMENTS // 2 and cancelled > 0

    with ledger.begin() as conn:
        assert stock.recalculate(conn, dry_run=True) == []
    current = totals(ledger)
    assert current == ledger_sums(ledger)
    assert all(q >= 0 for (code, _), q in current.items() if code != "NEG")
    all_numbers = numbers(ledger)
    assert len(all_numbers) == posted + cancelled  # every posted document and every correction has one number
    assert_gap_free(all_numbers)
