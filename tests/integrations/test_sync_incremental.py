"""Steady-state syncs on SQLite and PostgreSQL: only the links whose quantity changed since the last sync are found
(in SQL) and written, without reading the shop; full runs that correct the shop's own changes; PrestaShop before
8.0 (GET-modify-PUT), a key without PATCH, and a stock row that is gone from the shop."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import sqlalchemy as sa

from stockq import db
from stockq.integrations import models, shops, sync, synclogs
from stockq.integrations.prestashop.emulator import EmulatorHandle, start_emulator
from tests.integrations.conftest import KEY
from tests.integrations.helpers import receive
from tests.integrations.test_sync import integration_row, setup_linked


def last_quantities(engine: sa.Engine) -> dict[str, int | None]:
    links = models.product_links
    with engine.connect() as conn:
        return {sku: quantity for sku, quantity in conn.execute(sa.select(links.c.sku, links.c.last_quantity))}


def writes(shop: EmulatorHandle) -> int:
    return shop.state.requests["PUT"] + shop.state.requests["PATCH"]


def test_a_steady_sync_writes_only_the_changed_links_without_reading_the_shop(
    db_url: str, shop: EmulatorHandle
) -> None:
    engine = db.get_engine(db_url)
    integration = setup_linked(engine, shop, count=4)
    assert integration_row(engine, integration.id).shop_version == "8.1.7"  # read when linking
    receive(engine, "MAIN", {"P1": 3, "P2": 1})
    (first,) = sync.sync_inventory(engine)  # new links: their shop quantities are read once
    assert (first.status, first.changed, first.full) == ("success", 2, True)
    assert last_quantities(engine) == {"P1": 3, "P2": 1, "P3": 0, "P4": 0}
    assert integration_row(engine, integration.id).last_reconciled_at is not None

    receive(engine, "SPARE", {"P3": 2})
    shop.state.reset_counters()
    (dry,) = sync.sync_inventory(engine, force=True, dry_run=True)
    assert [(p.sku, p.stockq, p.shop, p.change) for p in dry.plan] == [("P3", 2, 0, 2)]
    assert shop.state.requests.total() == 0 and last_quantities(engine)["P3"] == 0

    (steady,) = sync.sync_inventory(engine, force=True)

    assert (steady.status, steady.full, steady.checked, steady.changed, steady.failed) == ("success", False, 4, 1, 0)
    assert shop.state.requests.total() == shop.state.requests["PATCH"] == 1  # no GET at all
    assert [shop.state.quantity(p) for p in (1, 2, 3, 4)] == [3, 1, 2, 0]
    assert last_quantities(engine) == {"P1": 3, "P2": 1, "P3": 2, "P4": 0}
    logs = synclogs.sync_logs(engine, limit=1)
    assert [(i["sku"], i["from"], i["to"], i["result"]) for i in logs[0].items] == [("P3", 0, 2, "updated")]

    shop.state.reset_counters()
    (idle,) = sync.sync_inventory(engine, force=True)
    assert (idle.status, idle.checked, idle.changed) == ("success", 4, 0) and shop.state.requests.total() == 0


def test_fractions_and_the_buffer_round_the_same_in_sql_and_python(db_url: str, shop: EmulatorHandle) -> None:
    engine = db.get_engine(db_url)
    setup_linked(engine, shop, count=3, stock_buffer=1)
    receive(engine, "MAIN", {"P1": "3.9999", "P2": "0.5", "P3": "1.0001"})
    sync.sync_inventory(engine)
    assert last_quantities(engine) == {"P1": 2, "P2": 0, "P3": 0}
    shop.state.reset_counters()

    receive(engine, "MAIN", {"P1": "0.0001", "P2": "0.4999", "P3": "0.9998"})  # 4 -> 3; 0.9999 -> 0; 1.9999 -> 0
    (result,) = sync.sync_inventory(engine, force=True)

    assert result.changed == 1 and [p.sku for p in result.plan] == ["P1"]
    assert [shop.state.quantity(p) for p in (1, 2, 3)] == [3, 0, 0] and writes(shop) == 1


def test_a_quantity_changed_in_the_shop_is_corrected_by_the_next_full_run(db_url: str, shop: EmulatorHandle) -> None:
    engine = db.get_engine(db_url)
    integration = setup_linked(engine, shop, count=2)
    receive(engine, "MAIN", {"P1": 5})
    sync.sync_inventory(engine)
    shop.state.set_quantity(1, 99)  # edited in the shop's back office
    shop.state.reset_counters()

    (steady,) = sync.sync_inventory(engine, force=True)
    assert steady.changed == 0 and shop.state.requests.total() == 0 and shop.state.quantity(1) == 99

    (full,) = sync.sync_inventory(engine, force=True, full=True)
    assert (full.full, full.changed) == (True, 1) and shop.state.quantity(1) == 5
    assert [(p.sku, p.shop, p.change) for p in full.plan if p.change] == [("P1", 99, -94)]

    shop.state.set_quantity(1, 98)
    with engine.begin() as conn:  # the last full run a day ago: the next run is a full one by itself
        conn.execute(
            sa.update(models.integrations)
            .where(models.integrations.c.id == integration.id)
            .values(last_reconciled_at=shops.utcnow() - sync.RECONCILE_EVERY - dt.timedelta(minutes=1))
        )
    (daily,) = sync.sync_inventory(engine, force=True)
    assert (daily.full, daily.changed) == (True, 1) and shop.state.quantity(1) == 5


def test_prestashop_before_8_gets_modify_puts_every_field(db_url: str) -> None:
    old_shop = start_emulator(key=KEY, version="1.7.8.0")
    try:
        engine = db.get_engine(db_url)
        integration = setup_linked(engine, old_shop, count=3)
        assert integration_row(engine, integration.id).shop_version == "1.7.8.0"
        for product in (1, 2, 3):
            old_shop.state.stock_row(product)["location"] = f"A-{product}"
            old_shop.state.stock_row(product)["out_of_stock"] = "1"
        receive(engine, "MAIN", {"P1": 4})
        sync.sync_inventory(engine)
        receive(engine, "MAIN", {"P2": 2})
        old_shop.state.reset_counters()

        (result,) = sync.sync_inventory(engine, force=True)

        assert (result.status, result.changed) == ("success", 1)
        assert (old_shop.state.requests["GET"], old_shop.state.requests["PUT"], old_shop.state.requests["PATCH"]) == (
            1, 1, 0,
        )  # fmt: skip
        (get,) = [path for method, path in old_shop.state.log if method == "GET"]
        assert "filter%5Bid%5D=%5B" in get  # the changed row alone, by id, in full
        row = old_shop.state.stock_row(2)
        assert (row["quantity"], row["id_shop"], row["location"], row["out_of_stock"]) == ("2", "1", "A-2", "1")
    finally:
        old_shop.stop()


def test_a_key_without_patch_falls_back_to_get_modify_put(db_url: str, shop: EmulatorHandle) -> None:
    engine = db.get_engine(db_url)
    setup_linked(engine, shop, count=3)
    sync.sync_inventory(engine)
    shop.state.keys[KEY].permissions["stock_availables"] = {"GET", "PUT", "HEAD"}
    receive(engine, "MAIN", {"P1": 1, "P2": 2, "P3": 3})
    shop.state.reset_counters()

    (result,) = sync.sync_inventory(engine, force=True)

    assert (result.status, result.changed, result.failed) == ("success", 3, 0)
    assert [shop.state.quantity(p) for p in (1, 2, 3)] == [1, 2, 3] and shop.state.requests["PUT"] == 3
    assert shop.state.stock_row(1)["id_shop"] == "1"


def test_a_stock_row_gone_from_the_shop_fails_only_its_item(db_url: str, shop: EmulatorHandle) -> None:
    engine = db.get_engine(db_url)
    setup_linked(engine, shop, count=2)
    sync.sync_inventory(engine)
    gone = shop.state.stock_id(1)
    with shop.state.lock:
        del shop.state.stock[gone]  # the product was deleted in the shop after linking
    receive(engine, "MAIN", {"P1": 1, "P2": 2})

    (result,) = sync.sync_inventory(engine, force=True)

    assert (result.status, result.changed, result.failed) == ("partial", 1, 1) and shop.state.quantity(2) == 2
    (log,) = synclogs.sync_logs(engine, failed_only=True)
    ((item),) = log.items
    assert (
        item["sku"] == "P1"
        and item["error"] == f"stock_available {gone} is not in the shop any more (run link-products)"
    )
    assert last_quantities(engine)["P1"] == 0  # still not published: the next run tries again
    (again,) = sync.sync_inventory(engine, force=True)
    assert (again.changed, again.failed) == (0, 1)


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ("500", "server error HTTP 500"),
        ("waf403", "with an HTML page"),
        ("malformed", "not valid XML"),
        ("reset", "cannot connect"),
    ],
)
def test_a_shop_failing_the_writes_fails_the_run_in_one_line_and_the_next_run_converges(
    db_url: str, shop: EmulatorHandle, fault: str, expected: str
) -> None:
    engine = db.get_engine(db_url)
    integration = setup_linked(engine, shop, count=2)
    sync.sync_inventory(engine)
    synced_at = integration_row(engine, integration.id).last_synced_at
    receive(engine, "MAIN", {"P1": 4})
    shop.state.set_fault(fault, methods=("PATCH",))

    (failed,) = sync.sync_inventory(engine, force=True)

    message = failed.message or ""
    assert failed.status == "failed" and expected in message and "\n" not in message and KEY not in message
    assert integration_row(engine, integration.id).last_synced_at == synced_at
    assert last_quantities(engine)["P1"] == 0
    (log,) = synclogs.sync_logs(engine, limit=1)
    assert log.status == "failed" and KEY not in json.dumps(log.as_dict())

    shop.state.set_fault(None)
    (recovered,) = sync.sync_inventory(engine, force=True)
    assert (recovered.status, recovered.changed) == ("success", 1) and shop.state.quantity(1) == 4
