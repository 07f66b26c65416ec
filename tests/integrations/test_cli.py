"""`stockq integrations …` commands against the emulator, on SQLite and PostgreSQL; the key never shows."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from stockq import db
from stockq.cli import app
from stockq.integrations import linking
from stockq.integrations.prestashop.emulator import EmulatorHandle
from tests.integrations.conftest import KEY
from tests.integrations.helpers import receive, seed_products, seed_warehouses

runner = CliRunner()
outputs: list[str] = []


def stockq(db_url: str, *args: str):
    result = runner.invoke(app, list(args), env={"STOCKQ_DATABASE_URL": db_url})
    outputs.append(result.stdout + result.stderr)
    assert KEY not in result.stdout + result.stderr
    return result


@pytest.fixture
def added(db_url: str, shop: EmulatorHandle) -> str:
    engine = db.get_engine(db_url)
    seed_warehouses(engine, "MAIN", "B2")
    seed_products(engine, [("P1", None), ("P2", "5901234123457"), ("LOCAL", None)])
    shop.state.add_product("P1")
    shop.state.add_product("", ean13="5901234123457")
    shop.state.add_product("SHOP-ONLY")
    result = stockq(
        db_url, "integrations", "add", "prestashop", "Main shop", "--url", shop.url + "/api/", "--key", KEY,
        "--warehouses", "MAIN,B2", "--interval", "30", "--timeout", "0.5",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Integration [1] Main shop added" in result.stdout
    return db_url


def test_cli_add_list_show_mask_the_key(added: str, shop: EmulatorHandle) -> None:
    listed = stockq(added, "integrations", "list")
    assert listed.exit_code == 0 and "Main shop" in listed.stdout and "********" in listed.stdout
    (row,) = json.loads(stockq(added, "integrations", "list", "--json").stdout)
    assert row["api_key"] == "********" and row["url"] == shop.url and row["warehouses"] == ["MAIN", "B2"]
    assert row["sync_interval_minutes"] == 30 and row["active"] is True
    shown = stockq(added, "integrations", "show", "1")
    assert shown.exit_code == 0 and "api_key" in shown.stdout and "********" in shown.stdout
    assert json.loads(stockq(added, "integrations", "show", "1", "--json").stdout)["id"] == 1
    missing = stockq(added, "integrations", "show", "9")
    assert missing.exit_code == 1 and "No integration with id 9" in missing.stderr and "Traceback" not in missing.output


def test_cli_update_changes_only_what_is_given(added: str) -> None:
    new_key = "N" * 32
    result = stockq(added, "integrations", "update", "1", "--warehouses", "B2", "--buffer", "3", "--key", new_key)
    assert result.exit_code == 0, result.output
    assert new_key not in result.output
    shown = json.loads(stockq(added, "integrations", "show", "1", "--json").stdout)
    assert (shown["warehouses"], shown["stock_buffer"], shown["sync_interval_minutes"]) == (["B2"], 3, 30)
    assert new_key not in json.dumps(shown)
    bad = stockq(added, "integrations", "update", "1", "--warehouses", "NOPE")
    assert bad.exit_code == 2 and "NOPE" in bad.stderr


def test_cli_add_rejects_bad_input(db_url: str, shop: EmulatorHandle) -> None:
    seed_warehouses(db.get_engine(db_url), "MAIN")
    short = stockq(db_url, "integrations", "add", "prestashop", "S", "--url", shop.url, "--key", "abc")
    assert short.exit_code == 2 and "32 letters or digits" in short.stderr
    unknown = stockq(
        db_url, "integrations", "add", "prestashop", "S", "--url", shop.url, "--key", KEY, "--warehouses", "NOPE"
    )
    assert unknown.exit_code == 2 and "Unknown warehouse code(s): NOPE" in unknown.stderr
    in_url = stockq(
        db_url, "integrations", "add", "prestashop", "S", "--url", f"{shop.url}/?ws_key={KEY}", "--key", KEY
    )
    assert in_url.exit_code == 2 and "must not carry credentials" in in_url.stderr


def test_cli_test_enable_disable(added: str, shop: EmulatorHandle) -> None:
    ok = stockq(added, "integrations", "test", "1")
    assert ok.exit_code == 0, ok.output
    assert "8.1.7" in ok.stdout and "key may write stock_availables" in ok.stdout and "NO" not in ok.stdout
    shop.state.keys[KEY].permissions["stock_availables"] = {"GET"}
    limited = stockq(added, "integrations", "test", "1")
    assert limited.exit_code == 1 and "lacks permission to write stock_availables" in limited.stderr
    assert "disabled" in stockq(added, "integrations", "disable", "1").stdout
    assert json.loads(stockq(added, "integrations", "show", "1", "--json").stdout)["active"] is False
    assert "enabled" in stockq(added, "integrations", "enable", "1").stdout


def test_cli_wrong_key_is_one_clear_line(added: str, shop: EmulatorHandle) -> None:
    shop.state.keys[KEY].active = False
    result = stockq(added, "integrations", "test", "1")
    assert result.exit_code == 1
    assert "Main shop" in result.stderr and "API key was rejected" in result.stderr
    assert "Traceback" not in result.output


def test_cli_link_products_reports_unmatched(added: str) -> None:
    result = stockq(added, "integrations", "link-products", "--integration", "1")
    assert result.exit_code == 0, result.output
    assert "2 of 3 shop items linked (1 by reference, 1 by EAN)" in result.stdout
    assert "unmatched" in result.stdout and "SHOP-ONLY" in result.stdout
    again = json.loads(stockq(added, "integrations", "link-products", "--json").stdout)
    assert again[0]["created"] == 0 and again[0]["unchanged"] == 2


def test_cli_sync_dry_run_then_real_then_logs(added: str, shop: EmulatorHandle) -> None:
    engine = db.get_engine(added)
    linking.link_products(engine, 1)
    receive(engine, "MAIN", {"P1": 5})
    receive(engine, "B2", {"P2": 2})
    shop.state.reset_counters()

    dry = stockq(added, "integrations", "sync-inventory", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "P1" in dry.stdout and "+5" in dry.stdout and "2 would change (dry run)" in dry.stdout
    assert shop.state.requests["PUT"] == shop.state.requests["PATCH"] == 0

    real = stockq(added, "integrations", "sync-inventory", "--integration", "1")
    assert real.exit_code == 0, real.output
    assert "success, 2 checked, 2 changed, 0 failed" in real.stdout
    # PrestaShop 8: the quantity alone is PATCHed
    assert (shop.state.requests["PATCH"], shop.state.requests["PUT"]) == (2, 0)
    assert shop.state.quantity(1) == 5 and shop.state.quantity(2) == 2

    not_due = stockq(added, "integrations", "sync-inventory")
    assert not_due.exit_code == 0 and "not due before" in not_due.stderr
    forced = json.loads(stockq(added, "integrations", "sync-inventory", "--force", "--json").stdout)
    assert forced[0]["status"] == "success" and forced[0]["changed"] == 0

    logs = json.loads(stockq(added, "integrations", "sync-logs", "--json").stdout)
    assert [(log["status"], log["dry_run"], log["changed"]) for log in logs] == [
        ("success", False, 0), ("success", False, 2), ("success", True, 2),
    ]  # fmt: skip
    table = stockq(added, "integrations", "sync-logs", "--limit", "1")
    assert table.exit_code == 0 and "Sync runs" in table.stdout


def test_cli_sync_failures_exit_non_zero_and_never_show_the_key(added: str, shop: EmulatorHandle) -> None:
    engine = db.get_engine(added)
    linking.link_products(engine, 1)
    receive(engine, "MAIN", {"P1": 5, "P2": 1})
    shop.state.stock[shop.state.stock_id(2)]["depends_on_stock"] = "1"
    partial = stockq(added, "integrations", "sync-inventory")
    assert partial.exit_code == 1 and "1 item(s) failed" in partial.stderr

    shop.state.set_fault("500")  # the shop echoes the request URL with ws_key=<key> in its error
    down = stockq(added, "integrations", "sync-inventory", "--force")
    assert down.exit_code == 1
    assert "Main shop" in down.stderr and "server error HTTP 500" in down.stderr and "ws_key=********" in down.stderr
    failed_logs = stockq(added, "integrations", "sync-logs", "--failed", "--json")
    runs = json.loads(failed_logs.stdout)
    assert [r["status"] for r in runs] == ["failed", "partial"]
    assert runs[1]["items"][0]["sku"] == "P2"
    shop.state.set_fault("hang", hang_seconds=2)
    timed_out = stockq(added, "integrations", "sync-inventory", "--force")
    assert timed_out.exit_code == 1 and "no answer within 0.5 s" in timed_out.stderr
    shop.state.set_fault(None)
    shop.state.keys[KEY].active = False
    wrong_key = stockq(added, "integrations", "sync-inventory", "--force")
    assert wrong_key.exit_code == 1 and "Main shop" in wrong_key.stderr and "API key was rejected" in wrong_key.stderr
    everything = "\n".join(outputs)
    assert KEY not in everything and "server error" in everything


def test_cli_full_sync_corrects_a_quantity_changed_in_the_shop(added: str, shop: EmulatorHandle) -> None:
    engine = db.get_engine(added)
    linking.link_products(engine, 1)
    receive(engine, "MAIN", {"P1": 5})
    assert stockq(added, "integrations", "sync-inventory").exit_code == 0
    shop.state.set_quantity(1, 99)  # edited in the shop's back office

    steady = stockq(added, "integrations", "sync-inventory", "--force", "--json")
    assert json.loads(steady.stdout)[0]["changed"] == 0 and shop.state.quantity(1) == 99
    full = stockq(added, "integrations", "sync-inventory", "--force", "--full", "--json")
    assert full.exit_code == 0, full.output
    assert json.loads(full.stdout)[0]["changed"] == 1 and shop.state.quantity(1) == 5


def test_cli_queue_flags_dispatch_jobs(added: str) -> None:
    from stockq.queue import api

    assert stockq(added, "integrations", "sync-inventory", "--queue").exit_code == 0
    assert stockq(added, "integrations", "link-products", "--queue").exit_code == 0
    counts = {c.queue: c.pending for c in api.repository(added).counts()}
    assert counts["integrations"] == 2
    assert stockq(added, "integrations", "sync-inventory", "--queue", "--full").exit_code == 0
    with db.get_engine(added).connect() as conn:
        payloads = list(conn.execute(sa.text("SELECT payload FROM jobs ORDER BY id")).scalars())
    assert [json.loads(p)["data"].get("full") for p in payloads if '"SyncInventory"' in p] == [None, True]
    assert stockq(added, "integrations", "sync-inventory", "--queue", "--dry-run").exit_code == 2


def test_cli_commands_have_help() -> None:
    from stockq.cli import integrations as integrations_cli

    for command in integrations_cli.app.registered_commands + integrations_cli.add_app.registered_commands:
        assert command.callback is not None and command.callback.__doc__, command.name
