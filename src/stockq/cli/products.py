"""`stockq products …`: add and list products (bulk product data arrives through imports)."""

from __future__ import annotations

from typing import Annotated

import typer

from stockq.cli import render
from stockq.cli.context import state
from stockq.warehouse import products

app = typer.Typer(help="Products (SKUs) of the warehouse ledger.", no_args_is_help=True)


@app.command("add")
def add(
    ctx: typer.Context,
    sku: Annotated[str, typer.Argument(help="Unique SKU.")],
    name: Annotated[str, typer.Option("--name", help="Product name.")],
    ean: Annotated[str | None, typer.Option("--ean", help="EAN / GTIN.")] = None,
    unit: Annotated[str, typer.Option("--unit", help="Unit of measure.")] = "szt",
) -> None:
    """Add one product."""
    with state(ctx).engine().begin() as conn:
        product = products.add_product(conn, sku, name=name, ean=ean, unit=unit)
    render.info(f"Product [{product.sku}] added")


@app.command("list")
def list_(
    ctx: typer.Context,
    search: Annotated[str | None, typer.Option("--search", help="Substring of SKU, name or EAN.")] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="At most N products.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List products ordered by SKU."""
    with state(ctx).engine().begin() as conn:
        found = products.list_products(conn, search=search, limit=limit)
    if json_output:
        render.json_out(
            [{"sku": p.sku, "ean": p.ean, "name": p.name, "unit": p.unit, "active": p.active} for p in found]
        )
        return
    if not found:
        render.info("No products")
        return
    render.table(
        None,
        ["SKU", "EAN", "Name", "Unit", "Active"],
        [(p.sku, p.ean or "", p.name, p.unit, "yes" if p.active else "no") for p in found],
    )
