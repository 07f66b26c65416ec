"""What each process of the ledger-interleaving test runs: plans of warehouse operations, taken from a queue.

A process is started once per test and serves one plan per hypothesis example: it waits at the barrier with the
other processes, so that their plans run at the same time, executes its operations one transaction (or one command)
each, and reports one ``Outcome`` per operation. Postings and cancellations go through the warehouse API (what the
integrations call); imports and recalculations go through the CLI commands, in process.
"""

from __future__ import annotations

import json
import traceback
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from typer.testing import CliRunner

from stockq import db, errors
from stockq.cli import app
from stockq.warehouse import documents
from stockq.warehouse.errors import InsufficientStock, InvalidDocumentState

# Refusals the ledger may answer under concurrency; anything else raised is a crash.
EXPECTED_REFUSALS = (InsufficientStock, InvalidDocumentState)

Post = tuple[str, str, str, str | None, list[tuple[str, Decimal]]]  # ("post", type, warehouse, target, lines)
Cancel = tuple[str, int]  # ("cancel", pick): the pick-th posted document (mod their number) at that moment
Import = tuple[str, dict[str, Decimal]]  # ("import", counted quantity per SKU; NEW… are new products)
Recalculate = tuple[str, bool]  # ("recalculate", dry_run)
Operation = Post | Cancel | Import | Recalculate


@dataclass(frozen=True)
class Outcome:
    """``status``: ok, refused (an expected refusal; ``detail`` is its message) or crash (``detail``: traceback).
    ``documents``: documents this operation created (a posting: 1; a cancellation: its correction; an import: its
    INW, if the counts differed from the stock)."""

    kind: str
    status: str
    detail: str = ""
    documents: int = 0
    cancelled: int = 0


def profile_name(index: int) -> str:
    return f"feed{index}"


def feed_file(import_root: Path, index: int) -> Path:
    return import_root / f"feed{index}.csv"


def serve(url: str, import_root: str, index: int, plans: Any, barrier: Any, results: Any) -> None:
    """Run plans from ``plans`` until it yields None."""
    engine = db.create(url)
    cli = CliRunner()
    env = {"STOCKQ_DATABASE_URL": url, "STOCKQ_IMPORT_ROOT": import_root, "STOCKQ_JOBS": ""}
    while (task := plans.get()) is not None:
        example, plan = task
        barrier.wait(timeout=120)
        outcomes = [run_operation(engine, cli, env, Path(import_root), index, example, op) for op in plan]
        results.put((index, outcomes))
    engine.dispose()


def new_sku(name: str, example: int) -> str:
    """``NEW1`` in example 7 is product ``N0071``: new to the catalogue in that example, for every process."""
    return f"N{example:03d}{name.removeprefix('NEW')}" if name.startswith("NEW") else name


def run_operation(
    engine: sa.Engine, cli: CliRunner, env: dict[str, str], import_root: Path, index: int, example: int, op: Any
) -> Outcome:
    kind = str(op[0])
    try:
        if kind == "post":
            _, type_, warehouse, target, lines = op
            with engine.begin() as conn:
                documents.create_and_post(
                    conn,
                    type=type_,
                    warehouse_code=warehouse,
                    target_warehouse_code=target,
                    items=[(sku, quantity, None) for sku, quantity in lines],
                )
            return Outcome(kind, "ok", documents=1)
        if kind == "cancel":
            with engine.begin() as conn:
                candidates = conn.execute(
                    sa.text("SELECT id FROM warehouse_documents WHERE status = 'posted' AND type <> 'KOR' ORDER BY id")
                ).scalars()
                ids = list(candidates)
                if not ids:
                    return Outcome(kind, "ok")
                documents.cancel_document(conn, int(ids[op[1] % len(ids)]))
            return Outcome(kind, "ok", documents=1, cancelled=1)
        if kind == "import":
            counted: dict[str, Decimal] = op[1]
            rows = "".join(f"{new_sku(sku, example)};Product {sku};{quantity}\n" for sku, quantity in counted.items())
            feed_file(import_root, index).write_text("sku;name;quantity\n" + rows)
            result = cli.invoke(app, ["imports", "run", profile_name(index), "--json"], env=env)
            return _command_outcome(kind, result, stock_document=True)
        if kind == "recalculate":
            args = ["warehouse", "recalculate-stocks", "--json"] + (["--dry-run"] if op[1] else [])
            return _command_outcome(kind, cli.invoke(app, args, env=env))
        raise ValueError(f"unknown operation {kind}")
    except EXPECTED_REFUSALS as exc:
        return Outcome(kind, "refused", detail=exc.message)
    except errors.StockqError as exc:
        return Outcome(kind, "crash", detail=f"unexpected {type(exc).__name__}: {exc.message}")
    except Exception:
        return Outcome(kind, "crash", detail=traceback.format_exc())


def _command_outcome(kind: str, result: Any, *, stock_document: bool = False) -> Outcome:
    """A command must exit 0 with JSON on stdout: an import that succeeded, totals found consistent."""
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        trace = "".join(traceback.format_exception(result.exception))
        return Outcome(kind, "crash", detail=trace)
    if result.exit_code != 0 or "Traceback" in result.output:
        return Outcome(kind, "crash", detail=f"exit {result.exit_code}: {result.output.strip()[-2000:]}")
    data = json.loads(result.stdout)
    if stock_document:
        if data["status"] != "succeeded":
            return Outcome(kind, "crash", detail=f"import {data['status']}: {data['message']}")
        return Outcome(kind, "ok", documents=1 if data["stock_document"] else 0)
    if not data["consistent"]:
        return Outcome(kind, "crash", detail=f"recalculate-stocks found drift: {data['differences']}")
    return Outcome(kind, "ok")
