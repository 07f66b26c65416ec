"""Inventory sync against the PrestaShop emulator: N linked products, 1% changed, 50 ms per request.

    .venv/bin/python bench/bench_sync.py [--quick] [--pg-url URL] [--concurrency 4,8,16] [--products N]

For each concurrency, prints the requests the sync sent (GET pages of stock_availables, PUTs), its wall time, the
floor (changed items x latency / concurrency: the PUTs alone, perfectly packed) and the ratio to it. --pg-url is
a PostgreSQL server URL: a scratch database is created there and dropped afterwards (default: a SQLite file).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa

from stockq import db, schema
from stockq.integrations import linking, models, shops, sync
from stockq.integrations.prestashop.emulator import start_emulator
from stockq.warehouse import models as warehouse_models


def seed(engine: sa.Engine, count: int) -> None:
    """``count`` products SKU-000001… with stock i % 50 + 1 in MAIN (set-based inserts)."""
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with engine.begin() as conn:
        conn.execute(sa.insert(warehouse_models.warehouses).values(code="MAIN", name="Main", created_at=now))
        warehouse_id = conn.execute(sa.select(warehouse_models.warehouses.c.id)).scalar_one()
        conn.execute(
            sa.insert(warehouse_models.products),
            [
                {"sku": f"SKU-{i:06d}", "ean": None, "name": f"Product {i}", "created_at": now, "updated_at": now}
                for i in range(1, count + 1)
            ],
        )
        ids = dict(conn.execute(sa.select(warehouse_models.products.c.sku, warehouse_models.products.c.id)).all())
        conn.execute(
            sa.insert(warehouse_models.stock_totals),
            [
                {
                    "warehouse_id": warehouse_id,
                    "product_id": ids[f"SKU-{i:06d}"],
                    "quantity": Decimal(i % 50 + 1),
                    "updated_at": now,
                }
                for i in range(1, count + 1)
            ],
        )


def run(
    url: str, *, products: int, latency_ms: float, concurrencies: list[int], changed_share: float
) -> list[dict[str, object]]:
    engine = db.get_engine(url)
    schema.upgrade(engine)
    seed(engine, products)
    handle = start_emulator(key="B" * 32)
    try:
        state = handle.state
        state.populate(products)
        integration = shops.add_prestashop(
            engine, "bench", url=handle.url, key="B" * 32, warehouses=("MAIN",), timeout_seconds=10
        )
        report = linking.link_products(engine, integration.id)
        assert report.linked == products, report.as_dict()
        changed = max(1, int(products * changed_share))
        rows: list[dict[str, object]] = []
        for concurrency in concurrencies:
            # Shop quantities equal stockq's except for `changed` products spread over the catalogue.
            step = products // changed
            with state.lock:
                for i in range(1, products + 1):
                    state.stock[state.stock_id(i)]["quantity"] = str(i % 50 + 1 + (1 if i % step == 0 else 0))
            with engine.begin() as conn:
                conn.execute(
                    sa.update(models.integrations)
                    .where(models.integrations.c.id == integration.id)
                    .values(concurrency=concurrency)
                )
            state.faults.latency_ms = latency_ms
            state.reset_counters()
            started = time.perf_counter()
            (result,) = sync.sync_inventory(engine, force=True)
            wall = time.perf_counter() - started
            state.faults.latency_ms = 0
            assert result.status == "success" and result.changed == changed, result.as_dict()
            floor = changed * latency_ms / 1000 / concurrency
            rows.append(
                {
                    "products": products,
                    "changed": result.changed,
                    "concurrency": concurrency,
                    "GET": state.requests["GET"],
                    "PUT": state.requests["PUT"],
                    "max in flight": state.max_in_flight,
                    "wall s": wall,
                    "floor s": floor,
                    "ratio": wall / floor,
                }
            )
        return rows
    finally:
        handle.stop()
        db.dispose_engines()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1,000 products, one concurrency")
    parser.add_argument("--pg-url", help="PostgreSQL server URL (a scratch database is created and dropped)")
    parser.add_argument("--products", type=int, default=10_000)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--concurrency", default="4,8,16")
    args = parser.parse_args()
    products = 1_000 if args.quick else args.products
    concurrencies = [8] if args.quick else [int(c) for c in args.concurrency.split(",")]
    backend = "PostgreSQL" if args.pg_url else "SQLite"
    if args.pg_url:
        name = f"stockq_bench_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(args.pg_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        url = sa.engine.make_url(args.pg_url).set(database=name).render_as_string(hide_password=False)
        try:
            rows = run(
                url, products=products, latency_ms=args.latency_ms, concurrencies=concurrencies, changed_share=0.01
            )
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    else:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
            rows = run(
                url, products=products, latency_ms=args.latency_ms, concurrencies=concurrencies, changed_share=0.01
            )
    print(f"\nSync of {products:,} linked products, 1% changed, emulator latency {args.latency_ms:g} ms, {backend}\n")
    headers = list(rows[0])
    print("| " + " | ".join(headers) + " |")
    print("|" + "|".join("---:" for _ in headers) + "|")
    for row in rows:
        cells = [f"{v:.2f}" if isinstance(v, float) else str(v) for v in row.values()]
        print("| " + " | ".join(cells) + " |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
