"""Linking local products to the shop (emulator) by reference, then EAN; on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa

from stockq import db
from stockq.integrations import linking
from stockq.integrations.prestashop.emulator import EmulatorHandle
from tests.integrations.helpers import add_shop, links, seed_products, seed_warehouses


def test_link_products_by_reference_ean_and_combinations(db_url: str, shop: EmulatorHandle) -> None:
    engine = db.get_engine(db_url)
    seed_warehouses(engine, "MAIN")
    seed_products(
        engine,
        [
            ("MUG", None),            # shop reference MUG
            ("CAP-LOCAL", "5901234123457"),  # shop has another reference but this EAN
            ("TS-S", None),           # a combination's reference
            ("TS-M", "5900000000017"),  # a combination, matched by EAN
            ("LONELY", None),         # not in the shop
        ],
    )  # fmt: skip
    state = shop.state
    mug = state.add_product("MUG")
    cap = state.add_product("CAP-SHOP", ean13="5901234123457")
    tshirt = state.add_product("TSHIRT", combinations=[("TS-S", ""), ("", "5900000000017"), ("TS-XL", "")])
    unknown = state.add_product("NOT-LOCAL", ean13="4006381333931")
    integration = add_shop(engine, shop)

    report = linking.link_products(engine, integration.id)

    assert (report.by_reference, report.by_ean, report.created) == (2, 2, 4)
    assert report.shop_items == 6  # mug, cap, not-local and 3 combinations (the t-shirt itself is their sum)
    assert sorted(i.product_id for i in report.unmatched) == [tshirt, unknown]
    assert report.ambiguous == []
    assert links(engine) == [
        ("CAP-LOCAL", "ean13", cap, 0, state.stock_id(cap)),
        ("MUG", "reference", mug, 0, state.stock_id(mug)),
        ("TS-M", "ean13", tshirt, 2, state.stock_id(tshirt, 2)),
        ("TS-S", "reference", tshirt, 1, state.stock_id(tshirt, 1)),
    ]


def test_link_products_second_run_changes_nothing(db_url: str, shop: EmulatorHandle) -> None:
    engine = db.get_engine(db_url)
    seed_products(engine, [("A", None), ("B", "5901234123457")])
    shop.state.add_product("A")
    shop.state.add_product("", ean13="5901234123457")
    integration = add_shop(engine, shop, warehouses=())
    first = linking.link_products(engine, integration.id)
    before = links(engine)
    with engine.connect() as conn:
        ids_before = conn.execute(sa.text("SELECT id FROM integration_product_links ORDER BY id")).scalars().all()
    second = linking.link_products(engine, integration.id)
    assert first.created == 2
    assert (second.created, second.updated, second.removed, second.unchanged) == (0, 0, 0, 2)
    assert links(engine) == before
    with engine.connect() as conn:
        assert (
            conn.execute(sa.text("SELECT id FROM integration_product_links ORDER BY id")).scalars().all() == ids_before
        )


def test_link_products_reports_ambiguous_and_relinks_when_the_shop_changes(db_url: str, shop: EmulatorHandle) -> None:
    engine = db.get_engine(db_url)
    seed_products(engine, [("DUP", None), ("E1", "5900000000024"), ("E2", "5900000000024"), ("MOVE", None)])
    shop.state.add_product("DUP")
    shop.state.add_product("DUP")  # two shop items claim one SKU
    shop.state.add_product("X", ean13="5900000000024")  # one EAN, two local products
    moved = shop.state.add_product("MOVE")
    integration = add_shop(engine, shop, warehouses=())
    report = linking.link_products(engine, integration.id)
    assert sorted(a.key for a in report.ambiguous) == ["EAN 5900000000024", "reference DUP"]
    assert [link[0] for link in links(engine)] == ["MOVE"]

    shop.state.products[moved]["reference"] = "RENAMED"
    fresh = shop.state.add_product("MOVE")
    again = linking.link_products(engine, integration.id)
    assert (again.created, again.updated, again.removed) == (0, 1, 0)
    assert links(engine) == [("MOVE", "reference", fresh, 0, shop.state.stock_id(fresh))]


def test_link_job_links_in_the_worker_process_environment(db_url: str, shop: EmulatorHandle, monkeypatch) -> None:
    from stockq.jobs.integrations import LinkIntegrationProducts

    engine = db.get_engine(db_url)
    seed_products(engine, [("A", None)])
    shop.state.add_product("A")
    integration = add_shop(engine, shop, warehouses=())
    monkeypatch.setenv("STOCKQ_DATABASE_URL", db_url)
    job = LinkIntegrationProducts(integration_id=integration.id)
    assert (job.queue, job.name, job.tries) == ("integrations", "LinkIntegrationProducts", 3)
    job.handle()
    assert [link[0] for link in links(engine)] == ["A"]
