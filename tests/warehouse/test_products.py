"""Products: upsert in batches with exact counts, ids by SKU, add and list."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from stockq import db, errors
from stockq.warehouse import products


def test_upsert_products_counts_created_updated_unchanged(db_url: str) -> None:
    engine = db.get_engine(db_url)
    with engine.begin() as conn:
        first = products.upsert_products(
            conn, [{"sku": f"S{i}", "name": f"N{i}", "ean": f"59{i}"} for i in range(7)], batch_size=3
        )
    assert first == products.UpsertCounts(created=7)
    with engine.begin() as conn:
        second = products.upsert_products(
            conn,
            [
                {"sku": "S0", "name": "N0"},  # unchanged (ean not given: left as it is)
                {"sku": "S1", "name": "renamed"},
                {"sku": "S2", "active": False},
                {"sku": "S3", "ean": ""},  # ean cleared
                {"sku": "NEW", "unit": "kg"},
                {"sku": "NEW", "unit": "kg", "name": "last wins"},
            ],
            batch_size=4,
        )
    assert second == products.UpsertCounts(created=1, updated=3, unchanged=1)
    with engine.begin() as conn:
        by_sku = {p.sku: p for p in products.list_products(conn)}
    assert by_sku["S0"].ean == "590" and by_sku["S1"].name == "renamed" and by_sku["S1"].ean == "591"
    assert by_sku["S2"].active is False and by_sku["S3"].ean is None
    assert (by_sku["NEW"].name, by_sku["NEW"].unit) == ("last wins", "kg")


def test_upsert_products_needs_a_sku(db_url: str) -> None:
    with pytest.raises(errors.InvalidInput, match="needs a SKU"), db.get_engine(db_url).begin() as conn:
        products.upsert_products(conn, [{"name": "no sku"}])


def test_product_ids_by_sku_leaves_unknown_out(db_url: str) -> None:
    with db.get_engine(db_url).begin() as conn:
        products.upsert_products(conn, [{"sku": "A"}, {"sku": "B"}])
        ids = products.product_ids_by_sku(conn, ["A", "B", "C", "A"])
        expected = dict(conn.execute(sa.text("SELECT sku, id FROM products")).all())
    assert ids == expected and set(ids) == {"A", "B"}


def test_add_product_refuses_a_duplicate_and_list_searches(db_url: str) -> None:
    with db.get_engine(db_url).begin() as conn:
        products.add_product(conn, "LAMP-1", name="Lampa biurkowa", ean="5901234123457")
        products.add_product(conn, "BULB-2", name="Żarówka E27")
        with pytest.raises(errors.InvalidInput, match="already exists"):
            products.add_product(conn, "LAMP-1", name="again")
        assert [p.sku for p in products.list_products(conn, search="lampa")] == ["LAMP-1"]
        assert [p.sku for p in products.list_products(conn, search="59012")] == ["LAMP-1"]
        assert [p.sku for p in products.list_products(conn)] == ["BULB-2", "LAMP-1"]
