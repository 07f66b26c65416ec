"""Inventory sync against the emulator, on SQLite and PostgreSQL: differences only, buffer, dry run, intervals,
per-item failures, a shop that is down, and the coalesced sync queued by posting a document."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import sqlalchemy as sa

from stockq import db, errors
from stockq.integrations import linking, models, shops, sync, synclogs
from stockq.integrations.prestashop.emulator import EmulatorHandle
from stockq.jobs.integrations import SyncInventory
from stockq.queue import api
from stockq.queue.registry import default_registry
from stockq.queue.worker import Worker, WorkerOptions
from tests.integrations.conftest import KEY
from tests.integrations.helpers import add_shop, receive, seed_products, seed_warehouses


def setup_linked(engine: sa.Engine, shop: EmulatorHandle, count: int = 4, **options: object) -> shops.Integration:
    """``count`` local products P1… linked to shop products P1…; MAIN and SPARE warehouses."""
    seed_warehouses(engine, "MAIN", "SPARE", "OTHER")
    seed_products(engine, [(f"P{i}", None) for i in range(1, count + 1)])
    for i in range(1, count + 1):
        shop.state.add_product(f"P{i}")
    options.setdefault("warehouses", ("MAIN", "SPARE"))
    integration = add_shop(engine, shop, **options)
    assert linking.link_products(engine, integration.id).linked == count
    return integration


def integration_row(engine: sa.Engine, integration_id: int) -> sa.Row:
    with engine.connect() as conn:
        return conn.execute(sa.select(models.integrations).where(models.integrations.c.id == integration_id)).one()


def test_publishable_quantity_rounds_down_and_never_goes_below_zero() -> None:
    from decimal import Decimal

    assert sync.publishable_quantity(Decimal("7.9"), 2) == 5
    assert sync.publishable_quantity(Decimal("1.5"), 2) == 0
    assert sync.publishable_quantity(None, 0) == 0


def test_sync_pushes_only_differences(db_url: str, shop: EmulatorHandle) -> None:
    engine = db.get_engine(db_url)
    integration = setup_linked(engine, shop, stock_buffer=1)
    receive(engine, "MAIN", {"P1": 10, "P2": "3.5", "P3": 1})
    receive(engine, "SPARE", {"P1": 5})
    receive(engine, "OTHER", {"P4": 50})  # not a warehouse of this shop
    shop.state.set_quantity(2, 2)  # already right: 3.5 - 1 -> 2
    shop.state.reset_counters()

    (result,) = sync.sync_inventory(engine)

    assert result.status == "success" and (result.checked, result.changed, result.failed) == (4, 1, 0)
    assert [shop.state.quantity(p) for p in (1, 2, 3, 4)] == [14, 2, 0, 0]
    # new links: one page of [id,quantity] to learn the shop's quantities, then a PATCH of the changed quantity
    assert (shop.state.requests["PATCH"], shop.state.requests["PUT"]) == (1, 0)
    assert [path.split("?")[1][:40] for method, path in shop.state.log if method == "GET"] == [
        "display=%5Bid%2Cquantity%5D&sort=%5Bid_A",
    ]
    assert shop.state.stock[shop.state.stock_id(1)]["id_shop"] == "1"
    assert integration_row(engine, integration.id).last_synced_at is not None
    (log,) = synclogs.sync_logs(engine)
    assert (log.status, log.dry_run, log.checked, log.changed, log.failed) == ("success", False, 4, 1, 0)
    assert [(i["sku"], i["from"], i["to"], i["result"]) for i in log.items] == [("P1", 0, 14, "updated")]


def test_sync_dry_run_writes_nothing(db_url: str, shop: EmulatorHandle) -> None:
    engine = db.get_engine(db_url)
    integration = setup_linked(engine, shop, count=2)
    receive(engine, "MAIN", {"P1": 4})
    shop.state.reset_counters()
    with engine.connect() as conn:
        links_before = conn.execute(sa.select(models.product_links).order_by(models.product_links.c.id)).all()

    (result,) = sync.sync_inventory(engine, dry_run=True)

    assert shop.state.requests["PUT"] == shop.state.requests["PATCH"] == 0 and shop.state.quantity(1) == 0
    assert [(p.sku, p.stockq, p.shop, p.change) for p in result.plan] == [("P1", 4, 0, 4), ("P2", 0, 0, 0)]
    assert integration_row(engine, integration.id).last_synced_at is None
    with engine.connect() as conn:
        assert conn.execute(sa.select(models.product_links).order_by(models.product_links.c.id)).all() == links_before
    (log,) = synclogs.sync_logs(engine)
    assert log.dry_run and log.changed == 1 and log.items[0]["result"] == "planned"


def test_sync_respects_intervals_unless_forced(db_url: str, shop: EmulatorHandle) -> None:
    engine = db.get_engine(db_url)
    integration = setup_linked(engine, shop, count=1, interval_minutes=60)
    (first,) = sync.sync_inventory(engine)
    assert first.status == "success"
    (second,) = sync.sync_inventory(engine)
    assert second.status == "skipped" and "not due" in (second.message or "")
    later = shops.utcnow() + dt.timedelta(minutes=61)
    assert sync.sync_inventory(engine, now=later)[0].status == "success"
    assert sync.sync_inventory(engine, force=True)[0].status == "success"
    shops.set_active(engine, integration.id, False)
    assert sync.sync_inventory(engine, force=True) == []
    (disabled,) = sync.sync_inventory(engine, integration_id=integration.id, force=True)
    assert disabled.status == "skipped" and "disabled" in (disabled.message or "")
    with pytest.raises(errors.NotFound):
        sync.sync_inventory(engine, integration_id=999)


def test_sync_never_publishes_for_an_integration_without_warehouses(db_url: str, shop: EmulatorHandle) -> None:
    engine = db.get_engine(db_url)
    integration = setup_linked(engine, shop, count=1, warehouses=())
    shop.state.set_quantity(1, 7)
    (result,) = sync.sync_inventory(engine, integration_id=integration.id, force=True)
    assert result.status == "skipped" and "no warehouses" in (result.message or "")
    assert shop.state.quantity(1) == 7 and shop.state.requests["PUT"] == shop.state.requests["PATCH"] == 0


def test_sync_one_item_failure_does_not_stop_the_run(db_url: str, shop: EmulatorHandle) -> None:
    engine = db.get_engine(db_url)
    setup_linked(engine, shop, count=3)
    receive(engine, "MAIN", {"P1": 1, "P2": 2, "P3": 3})
    shop.state.stock[shop.state.stock_id(2)]["depends_on_stock"] = "1"  # PrestaShop refuses with 133

    (result,) = sync.sync_inventory(engine)

    assert result.status == "partial" and (result.changed, result.failed) == (2, 1)
    assert [shop.state.quantity(p) for p in (1, 2, 3)] == [1, 0, 3]
    (log,) = synclogs.sync_logs(engine, failed_only=True)
    assert [(i["sku"], i["result"]) for i in log.items] == [("P2", "failed")]
    assert "code 133" in log.items[0]["error"]
    with pytest.raises(errors.StockqError, match="1 item"):
        sync.require_ok([result])


def test_sync_shop_down_fails_the_run_clearly(db_url: str, shop: EmulatorHandle) -> None:
    engine = db.get_engine(db_url)
    integration = setup_linked(engine, shop, count=2)
    receive(engine, "MAIN", {"P1": 1})
    shop.state.set_fault("500")  # every request; the echo carries the key in a URL

    (result,) = sync.sync_inventory(engine)

    assert result.status == "failed"
    assert "Shop" in (result.message or "") and "server error HTTP 500" in (result.message or "")
    assert integration_row(engine, integration.id).last_synced_at is None
    (log,) = synclogs.sync_logs(engine)
    assert log.status == "failed" and KEY not in json.dumps(log.as_dict())
    shop.state.set_fault(None)
    assert sync.sync_inventory(engine)[0].status == "success"
    assert shop.state.quantity(1) == 1


def test_sync_comes_back_after_transient_failures(db_url: str, shop: EmulatorHandle) -> None:
    engine = db.get_engine(db_url)
    setup_linked(engine, shop, count=2)
    receive(engine, "MAIN", {"P1": 1, "P2": 2})
    shop.state.set_fault("500", 1, methods=("PATCH",))  # one write fails once; the retry succeeds
    (result,) = sync.sync_inventory(engine)
    assert result.status == "success" and result.changed == 2
    assert shop.state.requests["PATCH"] == 3


def test_sync_job_retries_when_the_shop_is_down_and_the_key_stays_out(
    db_url: str, shop: EmulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = db.get_engine(db_url)
    integration = setup_linked(engine, shop, count=1)
    receive(engine, "MAIN", {"P1": 3})
    api.repository(db_url).clear(["integrations"])  # the sync that posting queued: this test dispatches its own
    monkeypatch.setenv("STOCKQ_DATABASE_URL", db_url)

    class SyncInventoryOnce(SyncInventory):
        name = "tests.SyncInventoryOnce"
        tries = 1

    shop.state.set_fault("500")
    SyncInventoryOnce(integration_id=integration.id).dispatch(database_url=db_url)
    repo = api.repository(db_url)
    worker = Worker(
        repo, default_registry, WorkerOptions(queues=("integrations",), stop_when_empty=True, sleep=0),
        install_signals=False,
    )  # fmt: skip
    worker.run()
    (failed,) = repo.failed()
    assert "server error HTTP 500" in failed.exception and KEY not in failed.exception

    # The real job (tries 5, backoff 30 s…) is released for a later attempt, not failed.
    SyncInventory(integration_id=integration.id).dispatch(database_url=db_url)
    Worker(
        repo, default_registry, WorkerOptions(queues=("integrations",), stop_when_empty=True, sleep=0),
        install_signals=False,
    ).run()  # fmt: skip
    (counts,) = [c for c in repo.counts() if c.queue == "integrations"]
    assert (counts.pending, counts.delayed) == (0, 1) and len(repo.failed()) == 1
    repo.clear(["integrations"])

    shop.state.set_fault(None)
    SyncInventory(integration_id=integration.id).dispatch(database_url=db_url)
    worker = Worker(
        repo, default_registry, WorkerOptions(queues=("integrations",), stop_when_empty=True, sleep=0),
        install_signals=False,
    )  # fmt: skip
    worker.run()
    assert shop.state.quantity(1) == 3
    assert len(repo.failed()) == 1


def pending_jobs(db_url: str) -> int:
    return sum(c.pending for c in api.repository(db_url).counts() if c.queue == "integrations")


def test_posting_a_document_queues_one_coalesced_sync(
    db_url: str, shop: EmulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = db.get_engine(db_url)
    integration = setup_linked(engine, shop, count=2)
    other = shops.add_prestashop(engine, "Other shop", url=shop.url, key=KEY, warehouses=("OTHER",))
    linking.link_products(engine, other.id)
    assert pending_jobs(db_url) == 0

    receive(engine, "MAIN", {"P1": 2})
    receive(engine, "SPARE", {"P2": 1})
    receive(engine, "MAIN", {"P1": 1, "P2": 1})

    assert pending_jobs(db_url) == 1  # three postings, one job, and none for the shop selling OTHER
    assert integration_row(engine, integration.id).sync_pending_since is not None
    assert integration_row(engine, other.id).sync_pending_since is None

    monkeypatch.setenv("STOCKQ_DATABASE_URL", db_url)
    worker = Worker(
        api.repository(db_url), default_registry,
        WorkerOptions(queues=("integrations",), stop_when_empty=True, sleep=0), install_signals=False,
    )  # fmt: skip
    worker.run()
    assert [shop.state.quantity(p) for p in (1, 2)] == [3, 2]
    assert integration_row(engine, integration.id).sync_pending_since is None
    assert pending_jobs(db_url) == 0

    receive(engine, "SPARE", {"P1": 1})  # after the job started: a new one is queued
    assert pending_jobs(db_url) == 1


def test_posting_through_the_warehouse_command_queues_the_sync(db_url: str, shop: EmulatorHandle, tmp_path) -> None:
    import os
    import subprocess
    import sys

    engine = db.get_engine(db_url)
    setup_linked(engine, shop, count=1)
    env = {**os.environ, "STOCKQ_DATABASE_URL": db_url}
    posted = subprocess.run(
        [sys.executable, "-m", "stockq", "warehouse", "document", "create", "--type", "PZ", "--warehouse", "MAIN",
         "--item", "P1:4", "--post"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert posted.returncode == 0, posted.stderr
    assert pending_jobs(db_url) == 1
    receive(engine, "MAIN", {"P1": 1})  # this process's posting sees the other's pending marker
    assert pending_jobs(db_url) == 1


def test_a_lost_pending_marker_does_not_block_syncs_for_long(db_url: str, shop: EmulatorHandle) -> None:
    import time

    from stockq.jobs.integrations import PENDING_STALE_SECONDS

    engine = db.get_engine(db_url)
    integration = setup_linked(engine, shop, count=1)
    receive(engine, "MAIN", {"P1": 1})
    api.repository(db_url).clear(["integrations"])  # `queue clear`: the marker stays, its job is gone
    receive(engine, "MAIN", {"P1": 1})
    assert pending_jobs(db_url) == 0  # still taken as pending
    with engine.begin() as conn:
        conn.execute(
            sa.update(models.integrations)
            .where(models.integrations.c.id == integration.id)
            .values(sync_pending_since=int(time.time()) - PENDING_STALE_SECONDS - 1)
        )
    receive(engine, "MAIN", {"P1": 1})
    assert pending_jobs(db_url) == 1
