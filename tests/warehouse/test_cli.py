"""`stockq warehouse …` and `stockq products …` through the CLI: output, exit codes, one-line errors."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner, Result

from stockq import db
from stockq.cli import app

runner = CliRunner()
MONTH = f"{date.today():%Y/%m}"


@pytest.fixture
def env(cli_env: dict[str, str]) -> dict[str, str]:
    return {"STOCKQ_DATABASE_URL": cli_env["STOCKQ_DATABASE_URL"]}


def stockq(env: dict[str, str], *args: str) -> Result:
    return runner.invoke(app, list(args), env=env)


def ok(env: dict[str, str], *args: str) -> str:
    result = stockq(env, *args)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result.stdout


def one_line_error(result: Result, code: int, text: str) -> None:
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert text in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert len([line for line in result.stderr.splitlines() if line.strip()]) == 1


@pytest.fixture
def setup(env: dict[str, str]) -> dict[str, str]:
    ok(env, "warehouse", "add", "MAIN", "--name", "Main")
    ok(env, "warehouse", "add", "WH2", "--name", "Second", "--allow-negative")
    ok(env, "products", "add", "LAMP-1", "--name", "Lampa biurkowa", "--ean", "5901234123457")
    ok(env, "products", "add", "BULB-2", "--name", "Żarówka E27")
    return env


def test_warehouse_and_products_lists(setup: dict[str, str]) -> None:
    assert json.loads(ok(setup, "warehouse", "list", "--json")) == [
        {"code": "MAIN", "name": "Main", "allow_negative_stock": False},
        {"code": "WH2", "name": "Second", "allow_negative_stock": True},
    ]
    assert "allowed" in ok(setup, "warehouse", "list")
    found = json.loads(ok(setup, "products", "list", "--search", "lampa", "--json"))
    assert [p["sku"] for p in found] == ["LAMP-1"] and found[0]["ean"] == "5901234123457"
    assert "Żarówka E27" in ok(setup, "products", "list")
    one_line_error(stockq(setup, "warehouse", "add", "MAIN", "--name", "x"), 2, "Warehouse MAIN already exists")
    one_line_error(stockq(setup, "products", "add", "LAMP-1", "--name", "x"), 2, "Product LAMP-1 already exists")


def test_document_create_post_show_list_and_stock(setup: dict[str, str], tmp_path: Path) -> None:
    number = ok(
        setup,
        "warehouse",
        "document",
        "create",
        "--type",
        "PZ",
        "--warehouse",
        "MAIN",
        "--item",
        "LAMP-1:10,5:129.99",
        "--item",
        "BULB-2:4",
        "--contractor",
        "Lumax",
        "--post",
    ).strip()
    assert number == f"PZ/{MONTH}/0001"
    items = tmp_path / "wz.csv"
    items.write_text("sku;qty;price\nLAMP-1;2,5;\nBULB-2;1;\n", encoding="utf-8")
    draft = ok(
        setup, "warehouse", "document", "create", "--type", "WZ", "--warehouse", "MAIN", "--items", str(items)
    ).strip()
    assert draft.startswith("#")
    assert ok(setup, "warehouse", "document", "post", draft).strip() == f"WZ/{MONTH}/0001"
    assert "already posted" in ok(setup, "warehouse", "document", "post", f"WZ/{MONTH}/0001")
    shown = json.loads(ok(setup, "warehouse", "document", "show", number, "--json"))
    assert shown["status"] == "posted" and shown["contractor"] == "Lumax"
    assert shown["items"][0] == {
        "line": 1,
        "sku": "LAMP-1",
        "quantity": "10.5",
        "counted_quantity": None,
        "unit_price": "129.99",
    }
    text = ok(setup, "warehouse", "document", "show", number)
    assert number in text and "LAMP-1" in text and "129.99" in text
    listed = json.loads(ok(setup, "warehouse", "document", "list", "--type", "WZ", "--json"))
    assert [(d["number"], d["lines"]) for d in listed] == [(f"WZ/{MONTH}/0001", 2)]
    assert json.loads(ok(setup, "warehouse", "document", "list", "--since", "2999-01-01", "--json")) == []
    assert "No documents" in ok(setup, "warehouse", "document", "list", "--status", "draft")
    assert json.loads(ok(setup, "warehouse", "stock", "--json")) == [
        {"warehouse": "MAIN", "sku": "BULB-2", "name": "Żarówka E27", "quantity": "3"},
        {"warehouse": "MAIN", "sku": "LAMP-1", "name": "Lampa biurkowa", "quantity": "8"},
    ]
    assert json.loads(ok(setup, "warehouse", "stock", "--sku", "LAMP-1", "--warehouse", "MAIN", "--json")) == [
        {"warehouse": "MAIN", "sku": "LAMP-1", "name": "Lampa biurkowa", "quantity": "8"}
    ]
    assert "Lampa biurkowa" in ok(setup, "warehouse", "stock")


def test_document_mm_cancel_and_errors(setup: dict[str, str]) -> None:
    ok(setup, "warehouse", "document", "create", "--type", "PZ", "--warehouse", "MAIN", "--item", "LAMP-1:5", "--post")
    mm = ok(
        setup,
        "warehouse",
        "document",
        "create",
        "--type",
        "MM",
        "--warehouse",
        "MAIN",
        "--to",
        "WH2",
        "--item",
        "LAMP-1:2",
        "--post",
    ).strip()
    cancelled = ok(setup, "warehouse", "document", "cancel", mm)
    assert f"cancelled by correction [KOR/{MONTH}/0001]" in cancelled.replace("\n", "")
    assert json.loads(ok(setup, "warehouse", "stock", "--json", "--sku", "LAMP-1")) == [
        {"warehouse": "MAIN", "sku": "LAMP-1", "name": "Lampa biurkowa", "quantity": "5"},
        {"warehouse": "WH2", "sku": "LAMP-1", "name": "Lampa biurkowa", "quantity": "0"},
    ]
    one_line_error(
        stockq(
            setup,
            "warehouse",
            "document",
            "create",
            "--type",
            "WZ",
            "--warehouse",
            "MAIN",
            "--item",
            "LAMP-1:6",
            "--post",
        ),
        1,
        "Not enough stock: LAMP-1 in MAIN: 5 in stock, 6 needed",
    )
    one_line_error(
        stockq(setup, "warehouse", "document", "create", "--type", "WZ", "--warehouse", "MAIN"), 2, "either with --item"
    )
    one_line_error(
        stockq(setup, "warehouse", "document", "create", "--type", "PZ", "--warehouse", "MAIN", "--item", "NOPE:1"),
        2,
        "Unknown SKU: NOPE",
    )
    one_line_error(
        stockq(setup, "warehouse", "document", "create", "--type", "MM", "--warehouse", "MAIN", "--item", "LAMP-1:1"),
        2,
        "needs a target warehouse",
    )
    one_line_error(
        stockq(setup, "warehouse", "document", "create", "--type", "PZ", "--warehouse", "NOPE", "--item", "LAMP-1:1"),
        1,
        "Warehouse NOPE does not exist",
    )
    one_line_error(stockq(setup, "warehouse", "document", "post", "PZ/1999/01/0001"), 1, "does not exist")
    one_line_error(stockq(setup, "warehouse", "document", "cancel", mm), 2, "already cancelled")


def test_recalculate_stocks_exit_status_dry_run_and_repair(setup: dict[str, str]) -> None:
    ok(
        setup,
        "warehouse",
        "document",
        "create",
        "--type",
        "PZ",
        "--warehouse",
        "MAIN",
        "--item",
        "LAMP-1:5",
        "--item",
        "BULB-2:2",
        "--post",
    )
    assert "consistent" in ok(setup, "warehouse", "recalculate-stocks")
    engine = db.create(setup["STOCKQ_DATABASE_URL"])
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE warehouse_stock_totals SET quantity = 1"))
    engine.dispose()
    dry = stockq(setup, "warehouse", "recalculate-stocks", "--dry-run")
    assert dry.exit_code == 3, dry.stderr
    assert "LAMP-1" in dry.stdout and "BULB-2" in dry.stdout
    assert "2 stock totals differ from the ledger (dry run: nothing changed)" in dry.stderr
    dry_json = stockq(setup, "warehouse", "recalculate-stocks", "--dry-run", "--json")
    assert dry_json.exit_code == 3
    assert json.loads(dry_json.stdout)["differences"] == [
        {"warehouse": "MAIN", "sku": "BULB-2", "stored": "1", "recomputed": "2", "delta": "1"},
        {"warehouse": "MAIN", "sku": "LAMP-1", "stored": "1", "recomputed": "5", "delta": "4"},
    ]
    only_wh2 = stockq(setup, "warehouse", "recalculate-stocks", "--warehouse", "WH2")
    assert only_wh2.exit_code == 0
    repaired = stockq(setup, "warehouse", "recalculate-stocks", "--json")
    assert repaired.exit_code == 3
    assert json.loads(repaired.stdout)["repaired"] is True
    assert json.loads(ok(setup, "warehouse", "recalculate-stocks", "--json")) == {
        "dry_run": False,
        "consistent": True,
        "repaired": False,
        "differences": [],
    }
    one_line_error(stockq(setup, "warehouse", "recalculate-stocks", "--warehouse", "NOPE"), 1, "does not exist")


def test_commands_have_help(env: dict[str, str]) -> None:
    for command in [
        ["warehouse", "add"],
        ["warehouse", "list"],
        ["warehouse", "stock"],
        ["warehouse", "recalculate-stocks"],
        ["warehouse", "document", "create"],
        ["warehouse", "document", "post"],
        ["warehouse", "document", "cancel"],
        ["warehouse", "document", "show"],
        ["warehouse", "document", "list"],
        ["products", "add"],
        ["products", "list"],
    ]:
        result = stockq(env, *command, "--help")
        assert result.exit_code == 0 and len(result.stdout) > 100, command
    assert "3 drift was found" in stockq(env, "warehouse", "recalculate-stocks", "--help").stdout


def test_inventory_document_through_the_cli_books_counted_minus_stock(setup: dict[str, str]) -> None:
    ok(setup, "warehouse", "document", "create", "--type", "PZ", "--warehouse", "MAIN", "--item", "LAMP-1:5", "--post")
    number = ok(
        setup,
        "warehouse",
        "document",
        "create",
        "--type",
        "INW",
        "--warehouse",
        "MAIN",
        "--item",
        "LAMP-1:3,5",
        "--item",
        "BULB-2:2",
        "--post",
    ).strip()
    assert number == f"INW/{MONTH}/0001"
    shown = json.loads(ok(setup, "warehouse", "document", "show", number, "--json"))
    assert [(i["sku"], i["counted_quantity"], i["quantity"]) for i in shown["items"]] == [
        ("LAMP-1", "3.5", "-1.5"),
        ("BULB-2", "2", "2"),
    ]
    assert [(s["sku"], s["quantity"]) for s in json.loads(ok(setup, "warehouse", "stock", "--json"))] == [
        ("BULB-2", "2"),
        ("LAMP-1", "3.5"),
    ]
