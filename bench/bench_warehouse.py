"""Warehouse ledger benchmark: recalculate-stocks against the floor (one bare SUM … GROUP BY), and posting rate.

    python bench/bench_warehouse.py [--quick] [--pg-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

Full size: 1,000,000 posted items (100,000 documents of 10 lines; 100,000 products; 5 warehouses; 70 % PZ, 20 %
WZ, 10 % MM), --quick: 50,000 items over 5,000 products. The data is generated set-based in throw-away databases
(PostgreSQL: ``INSERT … SELECT generate_series`` in a new database ``stockq_bench_<hex>``, dropped at the end;
SQLite: a recursive CTE in a temporary file). The ledger's tables are created from ``stockq.warehouse.models``.

Measured in the same database and run; floor and consistent recalculate alternate 5 times (the median of each),
the other figures are best of 3 or single runs:
- floor: ``SELECT count(*), sum(q) FROM (SELECT d.warehouse_id, i.product_id, SUM(i.quantity * d.stock_sign) AS q
  FROM items JOIN documents … GROUP BY 1, 2)`` — the aggregate a rebuild cannot avoid, computed on the server and
  not fetched;
- recalculate (consistent): ``stock.recalculate(dry_run=False)`` when nothing differs (what the nightly cron pays);
- recalculate --dry-run, and recalculate repairing 1 % corrupted totals (5 % for the drift figure on --quick);
- rebuild from empty: recalculate with an empty totals table (writes every row);
- posting: documents of 10 lines, each created and posted in its own transaction by one process (PZ into one
  warehouse over random products), documents per second. SQLite runs with the default synchronous=FULL.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa

from stockq import db
from stockq.warehouse import documents, models, stock

sys.path.insert(0, str(Path(__file__).resolve().parent))
import targets

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
WAREHOUSES = 5
LINES = 10
TABLES = [
    models.products,
    models.warehouses,
    models.document_series,
    models.documents,
    models.document_items,
    models.stock_totals,
]

FLOOR_SQL = """
SELECT count(*), sum(q) FROM (
    SELECT d.warehouse_id, i.product_id, SUM(i.quantity * d.stock_sign) AS q
    FROM warehouse_document_items i JOIN warehouse_documents d ON d.id = i.document_id
    WHERE d.posted_at IS NOT NULL
    GROUP BY d.warehouse_id, i.product_id
) s
"""


@dataclass(frozen=True)
class Result:
    database: str
    items: int
    groups: int
    floor: float
    consistent: float
    dry_run: float
    repair: float
    repaired: int
    rebuild: float
    posting_rate: float


def best_of(runs: int, action: Callable[[], object]) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return min(times)


def generate(engine: sa.Engine, documents_count: int, products_count: int) -> None:
    """Products, warehouses, posted documents and their items, set-based."""
    pg = engine.dialect.name == "postgresql"
    with engine.begin() as conn:
        conn.execute(
            models.warehouses.insert(),
            [
                {
                    "code": f"W{w}",
                    "name": f"Warehouse {w}",
                    "allow_negative_stock": True,
                    "created_at": datetime.now(UTC).replace(tzinfo=None),
                }
                for w in range(1, WAREHOUSES + 1)
            ],
        )
    if pg:
        series = "generate_series(1, :n) AS g(n)"
        prefix = ""
    else:
        series = "seq"
        prefix = "WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < :n) "
    now = "CURRENT_TIMESTAMP"
    if pg:
        random_product = f"CAST(floor(random() * {products_count}) AS bigint) + 1"
    else:
        random_product = f"abs(random()) % {products_count} + 1"
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO products (id, sku, name, unit, active, created_at, updated_at) "
                f"{prefix}SELECT n, 'SKU-' || n, 'Product ' || n, 'szt', true, {now}, {now} FROM {series}"
            ),
            {"n": products_count},
        )
        # type by n % 10: 0-6 PZ (+), 7-8 WZ (-), 9 MM (- source, + target)
        conn.execute(
            sa.text(
                "INSERT INTO warehouse_documents (id, type, status, number, warehouse_id, target_warehouse_id, "
                "stock_sign, document_date, created_at, posted_at) "
                f"{prefix}SELECT n, CASE WHEN n % 10 < 7 THEN 'PZ' WHEN n % 10 < 9 THEN 'WZ' ELSE 'MM' END, "
                "'posted', 'B/' || n, n % 5 + 1, CASE WHEN n % 10 = 9 THEN (n + 1) % 5 + 1 END, "
                "CASE WHEN n % 10 < 7 THEN 1 ELSE -1 END, CURRENT_DATE, "
                f"{now}, {now} FROM {series}"
            ),
            {"n": documents_count},
        )
        conn.execute(
            sa.text(
                "INSERT INTO warehouse_document_items (id, document_id, line_no, product_id, quantity, unit_price) "
                f"{prefix}SELECT n, (n - 1) / {LINES} + 1, (n - 1) % {LINES} + 1, "
                f"{random_product}, ((n % 40) + 1) * 0.25, 9.99 FROM {series}"
            ),
            {"n": documents_count * LINES},
        )
        if pg:
            for table, column in [
                ("products", "id"),
                ("warehouses", "id"),
                ("warehouse_documents", "id"),
                ("warehouse_document_items", "id"),
            ]:
                conn.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), (SELECT max({column}) FROM {table}))"
                )
    analyze(engine)


def analyze(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
        conn.commit()


def run_recalculate(engine: sa.Engine, dry_run: bool) -> int:
    with engine.begin() as conn:
        return len(stock.recalculate(conn, dry_run=dry_run))


def run_floor(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text(FLOOR_SQL)).one()


def corrupt(engine: sa.Engine, every: int) -> int:
    with engine.begin() as conn:
        result = conn.execute(
            sa.text(f"UPDATE warehouse_stock_totals SET quantity = quantity + 1 WHERE product_id % {every} = 0")
        )
        return int(result.rowcount)


def posting_rate(engine: sa.Engine, products_count: int, count: int) -> float:
    rng = random.Random(7)
    skus = [f"SKU-{rng.randint(1, products_count)}" for _ in range(count * LINES)]
    started = time.perf_counter()
    for doc in range(count):
        lines = [(sku, Decimal(rng.randint(1, 20)), Decimal("9.99")) for sku in skus[doc * LINES : (doc + 1) * LINES]]
        with engine.begin() as conn:
            documents.create_and_post(conn, type="PZ", warehouse_code="W1", items=lines)
    return count / (time.perf_counter() - started)


def measure(name: str, engine: sa.Engine, documents_count: int, products_count: int, posts: int) -> Result:
    db.metadata.create_all(engine, tables=TABLES)
    started = time.perf_counter()
    generate(engine, documents_count, products_count)
    print(
        f"  {name}: generated {documents_count * LINES:,} items in {time.perf_counter() - started:.1f} s",
        file=sys.stderr,
    )
    rebuild = best_of(1, lambda: run_recalculate(engine, dry_run=False))
    analyze(engine)
    with engine.begin() as conn:
        groups = int(conn.execute(sa.text("SELECT count(*) FROM warehouse_stock_totals")).scalar_one())
    # interleaved, so that a burst of load from elsewhere on the machine hits both sides alike
    floors, recalcs = [], []
    for _ in range(5):
        floors.append(best_of(1, lambda: run_floor(engine)))
        recalcs.append(best_of(1, lambda: run_recalculate(engine, dry_run=False)))
    floor, consistent = statistics.median(floors), statistics.median(recalcs)
    every = 100 if documents_count * LINES >= 1_000_000 else 20
    corrupt(engine, every)
    dry_run = best_of(3, lambda: run_recalculate(engine, dry_run=True))
    started = time.perf_counter()
    repaired = run_recalculate(engine, dry_run=False)
    repair = time.perf_counter() - started
    assert run_recalculate(engine, dry_run=True) == 0
    rate = posting_rate(engine, products_count, posts)
    assert run_recalculate(engine, dry_run=True) == 0
    return Result(
        database=name,
        items=documents_count * LINES,
        groups=groups,
        floor=floor,
        consistent=consistent,
        dry_run=dry_run,
        repair=repair,
        repaired=repaired,
        rebuild=rebuild,
        posting_rate=rate,
    )


@contextmanager
def pg_database(admin_url: str) -> Iterator[sa.Engine]:
    name = f"stockq_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(db.normalize_url(admin_url), isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    engine = db.create(sa.engine.make_url(db.normalize_url(admin_url)).set(database=name).render_as_string(False))
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@contextmanager
def sqlite_database() -> Iterator[sa.Engine]:
    with tempfile.TemporaryDirectory(prefix="stockq_bench_") as directory:
        engine = db.create(f"sqlite:///{Path(directory) / 'bench.db'}")
        try:
            yield engine
        finally:
            engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50,000 items instead of 1,000,000")
    parser.add_argument("--pg-url", default=os.environ.get("STOCKQ_TEST_PG_URL", DEFAULT_PG))
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--skip-pg", action="store_true")
    parser.add_argument("--targets-json", type=Path, help="also write the issue's targets here (for run_all.py)")
    args = parser.parse_args()
    documents_count, products_count, posts = (5_000, 5_000, 200) if args.quick else (100_000, 100_000, 500)
    results = []
    if not args.skip_pg:
        with pg_database(args.pg_url) as engine:
            results.append(measure("PostgreSQL", engine, documents_count, products_count, posts))
    if not args.skip_sqlite:
        with sqlite_database() as engine:
            results.append(measure("SQLite", engine, documents_count, products_count, posts))
    print(
        "| database | posted items | totals rows | bare SUM…GROUP BY (floor) | recalculate, consistent | ratio "
        "| recalculate --dry-run | recalculate repairing drift | rebuild from empty | posting, 10-line docs/s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r.database} | {r.items:,} | {r.groups:,} | {r.floor:.2f} s | {r.consistent:.2f} s "
            f"| {r.consistent / r.floor:.2f}x | {r.dry_run:.2f} s | {r.repair:.2f} s ({r.repaired:,} rows) "
            f"| {r.rebuild:.2f} s | {r.posting_rate:.0f} |"
        )
    targets.write(args.targets_json, [recalculate_target(r) for r in results])


def recalculate_target(r: Result) -> targets.Target:
    """The issue's target on PostgreSQL (production); SQLite's figure as a reference."""
    production = r.database == "PostgreSQL"
    return targets.Target(
        f"recalculate-stocks, {r.items:,} posted items, {r.database}",
        f"{r.consistent:.2f} s",
        f"one bare SUM … GROUP BY over them {r.floor:.2f} s",
        targets.ratio(r.consistent, r.floor),
        "≤ 1.5x" if production else "(embedded database; reference, 1.5x)",
        r.consistent <= 1.5 * r.floor if production else None,
    )


if __name__ == "__main__":
    main()
