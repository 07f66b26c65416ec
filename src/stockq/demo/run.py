"""`stockq demo`: every step is a real `stockq` command in its own process, as an operator would type it.

The only thing the demo does itself is play the shop: it starts the PrestaShop webservice emulator on loopback with
the same products (stock 0), so that linking and the stock sync talk HTTP to something that speaks PrestaShop.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from stockq import db
from stockq.demo import catalogue
from stockq.integrations.prestashop.emulator import EmulatorHandle, start_emulator
from stockq.warehouse import stock

DEMO_KEY = "DEMO0KEY1NOT2A3SECRET4ANYWHERE56"
DELIVERY = [("KUB-001", 20), ("ŁYŻ-040", 24), ("EKS-200", 2)]


@dataclass(frozen=True, slots=True)
class DemoStep:
    title: str
    args: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class StockRow:
    sku: str
    name: str
    stockq: Decimal
    shop: int | None


@dataclass(frozen=True, slots=True)
class DemoResult:
    workdir: Path
    rows: list[StockRow]
    seconds: float

    @property
    def in_sync(self) -> bool:
        return all(row.shop == int(row.stockq) for row in self.rows)


class DemoFailed(Exception):
    """A demo step exited non-zero."""


def steps(shop_url: str) -> list[DemoStep]:
    return [
        DemoStep("Create the database", ("migrate",)),
        DemoStep("Our warehouse", ("warehouse", "add", "MAIN", "--name", "Magazyn główny")),
        DemoStep("The supplier's stock we also sell", ("warehouse", "add", "SUP", "--name", "Magazyn dostawcy")),
        DemoStep(
            "Import profile: our catalogue (CSV, Windows-1250, semicolons, decimal commas)",
            (
                "imports",
                "add",
                "katalog",
                "--source",
                "data/katalog.csv",
                "--format",
                "csv",
                "--stock-warehouse",
                "MAIN",
                "--interval",
                "60",
            ),
        ),
        DemoStep(
            "Import profile: the supplier's Ceneo offers feed (XML)",
            (
                "imports",
                "add",
                "dostawca",
                "--source",
                "data/dostawca.xml",
                "--format",
                "xml",
                "--preset",
                "ceneo",
                "--stock-warehouse",
                "SUP",
                "--interval",
                "60",
            ),
        ),
        DemoStep(
            "The PrestaShop shop (the emulator on loopback)",
            (
                "integrations",
                "add",
                "prestashop",
                "sklep",
                "--url",
                shop_url,
                "--key",
                DEMO_KEY,
                "--warehouses",
                "MAIN,SUP",
                "--interval",
                "60",
            ),
        ),
        DemoStep("Cron, every 5 minutes: queue the imports that are due", ("integrations", "run-imports")),
        DemoStep(
            "The import worker runs ExecuteIntegrationTask", ("queue", "work", "--queue=import", "--stop-when-empty")
        ),
        DemoStep("Stock in stockq after the imports", ("warehouse", "stock")),
        DemoStep("Link our products to the shop's (by reference, then EAN)", ("integrations", "link-products")),
        DemoStep(
            "A delivery arrives: post a PZ document (this queues a stock sync)",
            (
                "warehouse",
                "document",
                "create",
                "--type",
                "PZ",
                "--warehouse",
                "MAIN",
                "--contractor",
                "Hurtownia Sp. z o.o.",
                *(arg for sku, qty in DELIVERY for arg in ("--item", f"{sku}:{qty}")),
                "--post",
            ),
        ),
        DemoStep(
            "The integrations worker syncs stock to the shop",
            ("queue", "work", "--queue=integrations,default", "--stop-when-empty"),
        ),
        DemoStep("What was sent", ("integrations", "sync-logs")),
        DemoStep("The queues are empty", ("queue", "status")),
    ]


def prepare(workdir: Path) -> None:
    """A fresh demo directory: its own SQLite file and the example feeds."""
    if workdir.exists():
        shutil.rmtree(workdir)
    (workdir / "data").mkdir(parents=True)
    (workdir / "data" / "katalog.csv").write_bytes(catalogue.catalogue_csv())
    (workdir / "data" / "dostawca.xml").write_bytes(catalogue.supplier_feed_xml())


def start_shop() -> EmulatorHandle:
    shop = start_emulator(key=DEMO_KEY)
    for product in [*catalogue.CSV_PRODUCTS, *catalogue.XML_PRODUCTS]:
        shop.state.add_product(product.sku, ean13=product.ean, name=product.name, quantity=0)
    shop.state.add_product("POZA-KATALOGIEM", name="Produkt tylko w sklepie", quantity=3)
    return shop


def run_demo(
    workdir: Path,
    *,
    show_step: Callable[[int, DemoStep], None] = lambda n, step: None,
    output: Callable[[str], None] = print,
) -> DemoResult:
    started = time.monotonic()
    prepare(workdir)
    url = f"sqlite:///{workdir / 'stockq.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOCKQ_")}
    env.update({"STOCKQ_DATABASE_URL": url, "STOCKQ_IMPORT_ROOT": str(workdir), "COLUMNS": env.get("COLUMNS", "100")})
    shop = start_shop()
    try:
        for number, step in enumerate(steps(shop.url), start=1):
            show_step(number, step)
            _run(step.args, env=env, cwd=workdir, output=output)
        rows = _compare(url, shop)
    finally:
        shop.stop()
        db.dispose_engines()
    return DemoResult(workdir=workdir, rows=rows, seconds=time.monotonic() - started)


def _run(args: Sequence[str], *, env: dict[str, str], cwd: Path, output: Callable[[str], None]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "stockq", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300
    )
    text = (result.stdout + result.stderr).rstrip()
    if text:
        output(text)
    if result.returncode != 0:
        raise DemoFailed(f"`stockq {' '.join(args)}` exited {result.returncode}")


def _compare(url: str, shop: EmulatorHandle) -> list[StockRow]:
    engine = db.create(url)
    try:
        with engine.connect() as conn:
            levels = stock.stock_levels(conn)
    finally:
        engine.dispose()
    totals: dict[str, Decimal] = {}
    names: dict[str, str] = {}
    for level in levels:
        totals[level.sku] = totals.get(level.sku, Decimal(0)) + level.quantity
        names[level.sku] = level.name
    by_reference = {row["reference"]: int(pid) for pid, row in shop.state.table("products").items()}
    rows = []
    for product in [*catalogue.CSV_PRODUCTS, *catalogue.XML_PRODUCTS]:
        product_id = by_reference.get(product.sku)
        rows.append(
            StockRow(
                sku=product.sku,
                name=names.get(product.sku, product.name),
                stockq=totals.get(product.sku, Decimal(0)),
                shop=shop.state.quantity(product_id) if product_id is not None else None,
            )
        )
    return rows
