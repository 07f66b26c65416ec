"""Inventory sync against the PrestaShop emulator: N linked products, 1% changed, 50 ms per request.

    .venv/bin/python bench/bench_sync.py [--quick] [--pg-url URL] [--concurrency 4,8,16] [--products N]

The emulator runs in its own process, as a shop would. For each concurrency, prints the requests the sync sent (GET pages of stock_availables, PUTs), its wall time, the
floor (changed items x latency / concurrency: the PUTs alone, perfectly packed) and the ratio to it, and the
same number of bare PUTs timed alone on the same shop (the machine's own per-request cost, for comparison). --pg-url is
a PostgreSQL server URL: a scratch database is created there and dropped afterwards (default: a SQLite file).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa

from stockq import db, schema
from stockq.integrations import linking, models, shops, sync
from stockq.integrations.prestashop.client import STOCK_FIELDS, PrestashopClient, StockAvailable
from stockq.warehouse import models as warehouse_models

KEY = "B" * 32


def seed(engine: sa.Engine, count: int, changed: int) -> None:
    """``count`` products SKU-000001…; every (count / changed)-th has 5 units in MAIN, the rest 0."""
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    step = count // changed
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
                    "quantity": Decimal(5 if i % step == 0 else 0),
                    "updated_at": now,
                }
                for i in range(1, count + 1)
            ],
        )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def emulator(products: int, latency_ms: float) -> Iterator[str]:
    """The emulator in its own process (as a shop is): all quantities 0. Yields its URL."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "stockq.integrations.prestashop.emulator", "--port", str(port), "--key", KEY,
         "--products", str(products), "--latency-ms", str(latency_ms)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        process.stdout.readline()  # printed once it listens
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


def bare_puts(shop_url: str, count: int, concurrency: int) -> float:
    """Seconds for ``count`` PUTs alone at ``concurrency`` on the same shop: what this machine's Python client and
    emulator cost per request, without reads or database work."""
    with PrestashopClient(shop_url, KEY, concurrency=concurrency) as client:
        rows = [
            StockAvailable.from_fields(f)
            for f in client.list_page("stock_availables", STOCK_FIELDS, offset=0, limit=count)
        ]
        started = time.perf_counter()
        client.map_concurrently(lambda row: client.put_stock_available(row, row.quantity), rows)
        return time.perf_counter() - started


def run(url: str, *, products: int, latency_ms: float, concurrencies: list[int]) -> list[dict[str, object]]:
    engine = db.get_engine(url)
    schema.upgrade(engine)
    changed = max(1, products // 100)
    seed(engine, products, changed)
    rows: list[dict[str, object]] = []
    try:
        with emulator(products, 0) as shop_url:
            integration = shops.add_prestashop(
                engine, "bench", url=shop_url, key=KEY, warehouses=("MAIN",), timeout_seconds=10
            )
            report = linking.link_products(engine, integration.id)
            assert report.linked == products, report.as_dict()
        for concurrency in concurrencies:
            with emulator(products, latency_ms) as shop_url:
                with engine.begin() as conn:
                    conn.execute(
                        sa.update(models.integrations)
                        .where(models.integrations.c.id == integration.id)
                        .values(concurrency=concurrency, url=shop_url)
                    )
                started = time.perf_counter()
                (result,) = sync.sync_inventory(engine, force=True)
                wall = time.perf_counter() - started
                bare = bare_puts(shop_url, result.changed, concurrency)
            assert result.status == "success" and result.changed == changed, result.as_dict()
            floor = changed * latency_ms / 1000 / concurrency
            rows.append(
                {
                    "products": products,
                    "changed": result.changed,
                    "concurrency": concurrency,
                    "requests (GET+PUT)": f"{result.requests - result.changed}+{result.changed}",
                    "wall s": wall,
                    "floor s": floor,
                    "ratio": wall / floor,
                    "bare PUTs s": bare,
                    "bare ratio": bare / floor,
                }
            )
        return rows
    finally:
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
            rows = run(url, products=products, latency_ms=args.latency_ms, concurrencies=concurrencies)
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    else:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
            rows = run(url, products=products, latency_ms=args.latency_ms, concurrencies=concurrencies)
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(
        f"\nSync of {products:,} linked products, 1% changed, emulator latency {args.latency_ms:g} ms, {backend}, "
        f"{os.cpu_count()} CPUs, load average {load}\n"
    )
    headers = list(rows[0])
    print("| " + " | ".join(headers) + " |")
    print("|" + "|".join("---:" for _ in headers) + "|")
    for row in rows:
        cells = [f"{v:.2f}" if isinstance(v, float) else str(v) for v in row.values()]
        print("| " + " | ".join(cells) + " |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
