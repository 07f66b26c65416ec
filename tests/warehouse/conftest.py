"""Fixtures of the warehouse tests: a ledger with three warehouses and twenty products, on both databases."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from stockq import db
from stockq.warehouse import hooks, products, warehouses

SKUS = [f"P{i:02d}" for i in range(1, 21)]


@pytest.fixture
def ledger(db_url: str) -> sa.Engine:
    """MAIN and WH2 (no negative stock), NEG (negative stock allowed), products P01…P20, no stock."""
    engine = db.get_engine(db_url)
    with engine.begin() as conn:
        warehouses.add_warehouse(conn, "MAIN", name="Main")
        warehouses.add_warehouse(conn, "WH2", name="Second")
        warehouses.add_warehouse(conn, "NEG", name="Negative allowed", allow_negative_stock=True)
        products.upsert_products(conn, [{"sku": sku, "name": f"Product {sku}"} for sku in SKUS])
    return engine


@pytest.fixture(autouse=True)
def _no_leftover_listeners() -> Iterator[None]:
    before = list(hooks._listeners)
    yield
    hooks._listeners[:] = before
