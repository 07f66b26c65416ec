"""Seeding local products, warehouses and stock for integration tests."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

import sqlalchemy as sa

from stockq.integrations import models, shops
from stockq.integrations.prestashop.emulator import EmulatorHandle
from stockq.warehouse import documents, products, warehouses
from tests.integrations.conftest import KEY


def seed_products(engine: sa.Engine, items: Iterable[tuple[str, str | None]]) -> None:
    with engine.begin() as conn:
        for sku, ean in items:
            products.add_product(conn, sku, name=sku, ean=ean)


def seed_warehouses(engine: sa.Engine, *codes: str) -> None:
    with engine.begin() as conn:
        for code in codes:
            warehouses.add_warehouse(conn, code, name=code)


def receive(engine: sa.Engine, warehouse: str, lines: dict[str, int | str]) -> None:
    """Post a PZ (receipt) with ``lines`` sku → quantity."""
    with engine.begin() as conn:
        document = documents.create_document(
            conn,
            type="PZ",
            warehouse_code=warehouse,
            items=[(sku, Decimal(str(qty)), None) for sku, qty in lines.items()],
        )
        documents.post_document(conn, document.id)


def add_shop(engine: sa.Engine, shop: EmulatorHandle, **options: object) -> shops.Integration:
    options.setdefault("warehouses", ("MAIN",))
    options.setdefault("timeout_seconds", 0.5)
    return shops.add_prestashop(engine, "Shop", url=shop.url, key=KEY, **options)  # type: ignore[arg-type]


def links(engine: sa.Engine) -> list[tuple[str, str, int, int, int]]:
    table = models.product_links
    with engine.connect() as conn:
        return [
            (r.sku, r.matched_by, r.shop_product_id, r.shop_combination_id, r.stock_available_id)
            for r in conn.execute(sa.select(table).order_by(table.c.sku))
        ]
