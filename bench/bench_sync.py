"""Inventory sync against the PrestaShop emulator: N linked products, 1% changed, 50 ms per request.

    .venv/bin/python bench/bench_sync.py [--quick] [--pg-url URL] [--concurrency 4,8,16] [--products N]
                                         [--shop-version 8.1.7] [--runs 3] [--targets-json FILE]

The emulator runs in its own process, as a shop would, with every quantity 0. In each of --runs rounds (default 3;
every figure is the median), for each concurrency, on a fresh emulator: first a full run (every link compared with the shop's quantities, read in pages: what the first sync after
linking, and the daily reconciliation, do; the 1% of products with stock differ), then 1% of the products' stock
changes in the ledger and the sync that follows is timed (the issue's scenario: only the changed links are found, in
SQL, and written). Each row prints the requests the sync sent (GETs + writes: PATCH on 8.0+, PUT before), its wall
time, the floor (changed items x latency / concurrency: the writes alone, perfectly packed) and the ratio to it, and
the same number of bare writes timed alone on the same shop (the machine's own per-request cost, for comparison).
--pg-url is a PostgreSQL server URL: a scratch database is created there and dropped afterwards (default: a SQLite
file).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import socket
import statistics
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
from stockq.integrations.prestashop.client import STOCK_FIELDS, PrestashopClient, StockAvailable, accepts_patch
from stockq.warehouse import models as warehouse_models

sys.path.insert(0, str(Path(__file__).resolve().parent))
import targets

KEY = "B" * 32
DEFAULT_CONCURRENCY = int(str(models.integrations.c.concurrency.server_default.arg))  # type: ignore[union-attr]


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


def change_stock(engine: sa.Engine, count: int, changed: int, quantity: int) -> None:
    """Set the stock of the products ``seed`` gave stock (every (count / changed)-th) to ``quantity``: 1% of the
    links now differ from what the shop was last sent."""
    step = count // changed
    totals, products = warehouse_models.stock_totals, warehouse_models.products
    skus = [f"SKU-{i:06d}" for i in range(step, count + 1, step)]
    with engine.begin() as conn:
        conn.execute(
            sa.update(totals)
            .where(totals.c.product_id.in_(sa.select(products.c.id).where(products.c.sku.in_(skus))))
            .values(quantity=Decimal(quantity))
        )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def emulator(products: int, latency_ms: float, version: str = "8.1.7") -> Iterator[str]:
    """The emulator in its own process (as a shop is): all quantities 0. Yields its URL."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "stockq.integrations.prestashop.emulator", "--port", str(port), "--key", KEY,
         "--products", str(products), "--latency-ms", str(latency_ms), "--version", version],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        process.stdout.readline()  # printed once it listens
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


def bare_writes(shop_url: str, count: int, concurrency: int, version: str) -> float:
    """Seconds for ``count`` writes of the sync's kind (PATCH on 8.0+, PUT before) alone at ``concurrency`` on the
    same shop: what this machine's Python client and emulator cost per request, without reads or database work."""
    with PrestashopClient(shop_url, KEY, concurrency=concurrency) as client:
        rows = [
            StockAvailable.from_fields(f)
            for f in client.list_page("stock_availables", STOCK_FIELDS, offset=0, limit=count)
        ]
        started = time.perf_counter()
        if accepts_patch(version):
            client.map_concurrently(lambda row: client.patch_stock_quantity(row.id, row.quantity), rows)
        else:
            client.map_concurrently(lambda row: client.put_stock_available(row, row.quantity), rows)
        return time.perf_counter() - started


def run(
    url: str, *, products: int, latency_ms: float, concurrencies: list[int], version: str, runs: int
) -> list[dict[str, object]]:
    """Rounds of (for each concurrency: a full run, a 1%-changed run, the bare writes); the medians per row."""
    engine = db.get_engine(url)
    schema.upgrade(engine)
    changed = max(1, products // 100)
    seed(engine, products, changed)
    walls: dict[tuple[str, int], list[float]] = {}
    bares: dict[int, list[float]] = {}
    requests: dict[tuple[str, int], str] = {}
    quantity = 5
    try:
        with emulator(products, 0, version) as shop_url:
            integration = shops.add_prestashop(
                engine, "bench", url=shop_url, key=KEY, warehouses=("MAIN",), timeout_seconds=10
            )
            report = linking.link_products(engine, integration.id)
            assert report.linked == products, report.as_dict()
        for _ in range(runs):
            for concurrency in concurrencies:
                with emulator(products, latency_ms, version) as shop_url:
                    with engine.begin() as conn:
                        conn.execute(
                            sa.update(models.integrations)
                            .where(models.integrations.c.id == integration.id)
                            .values(concurrency=concurrency, url=shop_url)
                        )
                    timed: list[tuple[str, sync.SyncResult, float]] = []
                    started = time.perf_counter()
                    (full,) = sync.sync_inventory(engine, force=True, full=True)
                    timed.append(("full", full, time.perf_counter() - started))
                    quantity += 1
                    change_stock(engine, products, changed, quantity)
                    started = time.perf_counter()
                    (incremental,) = sync.sync_inventory(engine, force=True)
                    timed.append(("1% changed", incremental, time.perf_counter() - started))
                    bares.setdefault(concurrency, []).append(bare_writes(shop_url, changed, concurrency, version))
                for kind, result, wall in timed:
                    assert result.status == "success" and result.changed == changed, result.as_dict()
                    walls.setdefault((kind, concurrency), []).append(wall)
                    requests[(kind, concurrency)] = f"{result.requests - result.changed}+{result.changed}"
    finally:
        db.dispose_engines()
    rows: list[dict[str, object]] = []
    for kind in ("1% changed", "full"):
        for concurrency in concurrencies:
            wall = statistics.median(walls[(kind, concurrency)])
            bare = statistics.median(bares[concurrency])
            floor = changed * latency_ms / 1000 / concurrency
            rows.append(
                {
                    "products": products,
                    "run": kind,
                    "changed": changed,
                    "concurrency": concurrency,
                    "requests (GET+write)": requests[(kind, concurrency)],
                    "wall s": wall,
                    "floor s": floor,
                    "ratio": wall / floor,
                    "bare writes s": bare,
                    "bare ratio": bare / floor,
                }
            )
    return rows


def sync_targets(rows: list[dict[str, object]], latency_ms: float) -> list[targets.Target]:
    """The issue's target on the default concurrency; the other concurrencies as references."""
    result = []
    for row in rows:
        if row["run"] != "1% changed":
            continue
        concurrency = int(str(row["concurrency"]))
        default = concurrency == DEFAULT_CONCURRENCY
        wall, floor = float(str(row["wall s"])), float(str(row["floor s"]))
        result.append(
            targets.Target(
                f"sync-inventory, {row['products']:,} links, 1% changed, {latency_ms:g} ms, concurrency {concurrency}"
                + (" (default)" if default else ""),
                f"{wall:.2f} s",
                f"floor (changed x latency / concurrency) {floor:.2f} s",
                targets.ratio(wall, floor),
                "≤ 1.3x" if default else "(another setting; reference)",
                wall <= 1.3 * floor if default else None,
            )
        )
    return result


@contextlib.contextmanager
def _scratch_database(pg_url: str | None) -> Iterator[str]:
    """A new database on the PostgreSQL server at ``pg_url`` (dropped afterwards), or a temporary SQLite file."""
    if not pg_url:
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{Path(tmp) / 'bench.db'}"
        return
    name = f"stockq_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield sa.engine.make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1,000 products, the default concurrency only")
    parser.add_argument("--pg-url", help="PostgreSQL server URL (a scratch database is created and dropped)")
    parser.add_argument("--products", type=int, default=10_000)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--concurrency", default="4,8,16")
    parser.add_argument("--shop-version", default="8.1.7", help="emulated PrestaShop version (1.7.x: no PATCH)")
    parser.add_argument("--runs", type=int, default=3, help="rounds; each figure is their median")
    parser.add_argument("--targets-json", type=Path, help="also write the issue's targets here (for run_all.py)")
    args = parser.parse_args()
    products = 1_000 if args.quick else args.products
    concurrencies = [DEFAULT_CONCURRENCY] if args.quick else [int(c) for c in args.concurrency.split(",")]
    backend = "PostgreSQL" if args.pg_url else "SQLite"
    with _scratch_database(args.pg_url) as url:
        rows = run(
            url,
            products=products,
            latency_ms=args.latency_ms,
            concurrencies=concurrencies,
            version=args.shop_version,
            runs=args.runs,
        )
    targets.write(args.targets_json, sync_targets(rows, args.latency_ms))
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(
        f"\nSync of {products:,} linked products, 1% changed, median of {args.runs} rounds, PrestaShop {args.shop_version} emulator latency "
        f"{args.latency_ms:g} ms, {backend}, "
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
