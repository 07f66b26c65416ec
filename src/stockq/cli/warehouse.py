"""`stockq warehouse …`: warehouses, documents, stock, and recalculate-stocks (warehouse:recalculate-stocks)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from stockq import errors
from stockq.cli import render
from stockq.cli.context import state
from stockq.warehouse import documents, items_file, stock, warehouses
from stockq.warehouse.documents import format_quantity

app = typer.Typer(help="Warehouses, documents and stock (the warehouse ledger).", no_args_is_help=True)
document_app = typer.Typer(help="Warehouse documents: create, post, cancel, show, list.", no_args_is_help=True)
app.add_typer(document_app, name="document")

EXIT_DRIFT = 3
MAX_TABLE_ROWS = 1000


@app.command("add")
def add(
    ctx: typer.Context,
    code: Annotated[str, typer.Argument(help="Unique warehouse code, e.g. MAIN.")],
    name: Annotated[str, typer.Option("--name", help="Warehouse name.")],
    allow_negative: Annotated[bool, typer.Option("--allow-negative", help="Let issues take stock below zero.")] = False,
) -> None:
    """Add a warehouse."""
    with state(ctx).engine().begin() as conn:
        warehouse = warehouses.add_warehouse(conn, code, name=name, allow_negative_stock=allow_negative)
    render.info(f"Warehouse [{warehouse.code}] added")


@app.command("list")
def list_(
    ctx: typer.Context,
    json_output: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List warehouses."""
    with state(ctx).engine().begin() as conn:
        found = warehouses.list_warehouses(conn)
    if json_output:
        render.json_out(
            [{"code": w.code, "name": w.name, "allow_negative_stock": w.allow_negative_stock} for w in found]
        )
        return
    if not found:
        render.info("No warehouses")
        return
    render.table(
        None,
        ["Code", "Name", "Negative stock"],
        [(w.code, w.name, "allowed" if w.allow_negative_stock else "no") for w in found],
    )


@app.command("stock")
def stock_(
    ctx: typer.Context,
    warehouse: Annotated[
        list[str] | None, typer.Option("--warehouse", help="Only this warehouse (repeatable).")
    ] = None,
    sku: Annotated[list[str] | None, typer.Option("--sku", help="Only this SKU (repeatable).")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Show stock per warehouse and product (the totals kept by posting)."""
    with state(ctx).engine().begin() as conn:
        levels = stock.stock_levels(conn, warehouse_codes=warehouse or None, skus=sku or None)
    if json_output:
        render.json_out(
            [
                {
                    "warehouse": lv.warehouse_code,
                    "sku": lv.sku,
                    "name": lv.name,
                    "quantity": format_quantity(lv.quantity),
                }
                for lv in levels
            ]
        )
        return
    if not levels:
        render.info("No stock")
        return
    render.table(
        None,
        ["Warehouse", "SKU", "Name", "Quantity"],
        [(lv.warehouse_code, lv.sku, lv.name, format_quantity(lv.quantity)) for lv in levels],
        justify={"Quantity": "right"},
    )


@app.command("recalculate-stocks")
def recalculate_stocks(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the differences, change nothing.")] = False,
    warehouse: Annotated[str | None, typer.Option("--warehouse", help="Only this warehouse.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Rebuild warehouse_stock_totals from the posted documents (warehouse:recalculate-stocks).

    Prints every difference (warehouse, sku, stored, recomputed, delta) and a summary line. Exit status: 0 the
    totals were consistent; 3 drift was found (and repaired, or with --dry-run left as it is); 1 or 2 on errors.
    """
    with state(ctx).engine().begin() as conn:
        drift = stock.recalculate(conn, dry_run=dry_run, warehouse_code=warehouse)
    rows = [
        {
            "warehouse": d.warehouse_code,
            "sku": d.sku,
            "stored": None if d.stored is None else format_quantity(d.stored),
            "recomputed": format_quantity(d.recomputed),
            "delta": format_quantity(d.delta),
        }
        for d in drift
    ]
    if json_output:
        render.json_out(
            {"dry_run": dry_run, "consistent": not drift, "repaired": bool(drift) and not dry_run, "differences": rows}
        )
    else:
        if drift:
            render.table(
                None,
                ["Warehouse", "SKU", "Stored", "Recomputed", "Delta"],
                [
                    (r["warehouse"], r["sku"], r["stored"] or "(missing)", r["recomputed"], r["delta"])
                    for r in rows[:MAX_TABLE_ROWS]
                ],
                justify={"Stored": "right", "Recomputed": "right", "Delta": "right"},
            )
            if len(rows) > MAX_TABLE_ROWS:
                render.line(f"… and {len(rows) - MAX_TABLE_ROWS} more (--json lists them all)")
        scope = f" in {warehouse}" if warehouse else ""
        if not drift:
            render.info(f"Stock totals{scope} are consistent with the ledger")
        elif dry_run:
            render.warn(f"{len(drift)} stock totals{scope} differ from the ledger (dry run: nothing changed)")
        else:
            render.warn(f"{len(drift)} stock totals{scope} differed from the ledger and were repaired")
    if drift:
        raise typer.Exit(EXIT_DRIFT)


@document_app.command("create")
def document_create(
    ctx: typer.Context,
    type_: Annotated[str, typer.Option("--type", help="PZ, WZ, PW, RW, MM, ZW or INW.")],
    warehouse: Annotated[str, typer.Option("--warehouse", help="Warehouse code (the source of an MM).")],
    to: Annotated[str | None, typer.Option("--to", help="Target warehouse of an MM.")] = None,
    item: Annotated[
        list[str] | None,
        typer.Option("--item", help="SKU:QTY[:PRICE] (repeatable); for INW QTY is the counted quantity."),
    ] = None,
    items: Annotated[Path | None, typer.Option("--items", help="CSV of sku;qty[;price] lines.")] = None,
    contractor: Annotated[str | None, typer.Option("--contractor", help="Supplier or customer.")] = None,
    note: Annotated[str | None, typer.Option("--note", help="Free text.")] = None,
    post: Annotated[bool, typer.Option("--post", help="Post the document at once.")] = False,
) -> None:
    """Create a document (a draft, or posted with --post) and print its number (#id for a draft)."""
    if item and items is None:
        lines = [items_file.parse_item_option(text) for text in item]
    elif items is not None and not item:
        lines = items_file.read_items_file(items)
    else:
        raise errors.InvalidInput("Give the lines either with --item (repeatable) or with --items FILE")
    with state(ctx).engine().begin() as conn:
        document = documents.create_and_post(
            conn,
            type=type_,
            warehouse_code=warehouse,
            items=lines,
            target_warehouse_code=to,
            contractor=contractor,
            note=note,
            post=post,
        )
    render.plain(document.label)


@document_app.command("post")
def document_post(
    ctx: typer.Context,
    number: Annotated[str, typer.Argument(help="Document number, or #id of a draft.")],
) -> None:
    """Post a draft document; posting a posted document changes nothing."""
    with state(ctx).engine().begin() as conn:
        result = documents.post_document(conn, number)
    if result.already_posted:
        render.info(f"Document [{result.document.label}] was already posted: nothing changed")
    else:
        render.plain(result.document.label)


@document_app.command("cancel")
def document_cancel(
    ctx: typer.Context,
    number: Annotated[str, typer.Argument(help="Document number, or #id of a draft.")],
) -> None:
    """Cancel a document: a posted one by posting a reversing correction (KOR) that points at it."""
    with state(ctx).engine().begin() as conn:
        result = documents.cancel_document(conn, number)
    if result.correction is None:
        render.info(f"Draft [{result.document.label}] cancelled")
    else:
        render.info(f"Document [{result.document.label}] cancelled by correction [{result.correction.label}]")


def _document_json(document: documents.Document) -> dict[str, Any]:
    return {
        "id": document.id,
        "number": document.number,
        "type": document.type.value,
        "status": document.status.value,
        "warehouse": document.warehouse_code,
        "target_warehouse": document.target_warehouse_code,
        "document_date": document.document_date.isoformat(),
        "posted_at": document.posted_at.isoformat() if document.posted_at else None,
        "cancelled_at": document.cancelled_at.isoformat() if document.cancelled_at else None,
        "corrects": document.corrects_number,
        "contractor": document.contractor,
        "note": document.note,
        "items": [
            {
                "line": line.line_no,
                "sku": line.sku,
                "quantity": format_quantity(line.quantity),
                "counted_quantity": None if line.counted_quantity is None else format_quantity(line.counted_quantity),
                "unit_price": None if line.unit_price is None else format_quantity(line.unit_price),
            }
            for line in document.items
        ],
    }


@document_app.command("show")
def document_show(
    ctx: typer.Context,
    number: Annotated[str, typer.Argument(help="Document number, or #id of a draft.")],
    json_output: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Show a document and its lines."""
    with state(ctx).engine().begin() as conn:
        document = documents.get_document(conn, number)
    data = _document_json(document)
    if json_output:
        render.json_out(data)
        return
    for key in (
        "number",
        "type",
        "status",
        "warehouse",
        "target_warehouse",
        "document_date",
        "posted_at",
        "cancelled_at",
        "corrects",
        "contractor",
        "note",
    ):
        value = data[key] if key != "number" else document.label
        if value is not None:
            render.line(render.dotted(key.replace("_", " ").capitalize(), str(value)))
    render.table(
        None,
        ["#", "SKU", "Quantity", "Counted", "Unit price"],
        [
            (i["line"], i["sku"], i["quantity"], i["counted_quantity"] or "", i["unit_price"] or "")
            for i in data["items"]
        ],
        justify={"Quantity": "right", "Counted": "right", "Unit price": "right"},
    )


@document_app.command("list")
def document_list(
    ctx: typer.Context,
    type_: Annotated[str | None, typer.Option("--type", help="Only this type.")] = None,
    status: Annotated[str | None, typer.Option("--status", help="draft, posted or cancelled.")] = None,
    since: Annotated[
        datetime | None, typer.Option("--since", formats=["%Y-%m-%d"], help="Document date from (YYYY-MM-DD).")
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="At most N documents.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List documents, newest first."""
    with state(ctx).engine().begin() as conn:
        found = documents.list_documents(
            conn, type=type_, status=status, since=since.date() if since else None, limit=limit
        )
    if json_output:
        render.json_out(
            [
                {
                    "id": d.id,
                    "number": d.number,
                    "type": d.type.value,
                    "status": d.status.value,
                    "warehouse": d.warehouse_code,
                    "target_warehouse": d.target_warehouse_code,
                    "document_date": d.document_date.isoformat(),
                    "lines": d.lines,
                }
                for d in found
            ]
        )
        return
    if not found:
        render.info("No documents")
        return
    render.table(
        None,
        ["Number", "Type", "Status", "Warehouse", "To", "Date", "Lines"],
        [
            (
                d.label,
                d.type.value,
                d.status.value,
                d.warehouse_code,
                d.target_warehouse_code or "",
                d.document_date.isoformat(),
                d.lines,
            )
            for d in found
        ],
    )
