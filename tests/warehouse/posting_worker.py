"""What each process of the multi-process test runs: post documents over shared products as fast as it can."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

from stockq import db
from stockq.warehouse import documents
from stockq.warehouse.errors import InsufficientStock

SKUS = [f"P{i:02d}" for i in range(1, 21)]
KINDS: list[tuple[str, str, str | None]] = [
    ("PZ", "MAIN", None),
    ("PZ", "WH2", None),
    ("WZ", "MAIN", None),
    ("RW", "NEG", None),
    ("PW", "NEG", None),
    ("MM", "MAIN", "WH2"),
    ("MM", "WH2", "MAIN"),
]


def post_documents(url: str, seed: int, count: int, start: Any, results: Any) -> None:
    """Create and post ``count`` random documents (1-5 lines), each in its own transaction; cancel some."""
    rng = random.Random(seed)
    engine = db.create(url)
    posted = refused = cancelled = 0
    start.wait()
    mine: list[str] = []
    for _ in range(count):
        type_, source, target = rng.choice(KINDS)
        lines = [(rng.choice(SKUS), Decimal(rng.randint(1, 40)) / 4, None) for _ in range(rng.randint(1, 5))]
        try:
            with engine.begin() as conn:
                doc = documents.create_and_post(
                    conn, type=type_, warehouse_code=source, target_warehouse_code=target, items=lines
                )
            posted += 1
            mine.append(doc.number or "")
        except InsufficientStock:
            refused += 1
        if mine and rng.random() < 0.05:
            try:
                with engine.begin() as conn:
                    documents.cancel_document(conn, mine.pop(rng.randrange(len(mine))))
                cancelled += 1
            except InsufficientStock:
                pass
    engine.dispose()
    results.put((seed, posted, refused, cancelled))
