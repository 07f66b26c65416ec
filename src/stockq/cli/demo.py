"""`stockq demo`: the quick start that shows the whole system in under a minute."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stockq import errors
from stockq.cli import render
from stockq.demo.run import DemoFailed, DemoStep, run_demo


def demo(
    directory: Annotated[
        Path, typer.Option("--dir", help="Where the demo keeps its SQLite file and feeds (recreated).")
    ] = Path("stockq-demo"),
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only the final table.")] = False,
) -> None:
    """Run the quick start: a fresh SQLite database, an example catalogue (CSV and XML feeds), a PrestaShop shop
    emulated on loopback, linking, a delivery, the workers, and the stock in stockq and in the shop side by side.
    Every step is a real `stockq` command."""

    def show_step(number: int, step: DemoStep) -> None:
        if not quiet:
            render.line()
            render.line(f"[bold cyan]{number:>2}. {step.title}[/]")
            render.plain(f"    $ stockq {' '.join(_quote(a) for a in step.args)}")

    def output(text: str) -> None:
        if not quiet:
            render.plain(text)

    try:
        result = run_demo(directory.resolve(), show_step=show_step, output=output)
    except DemoFailed as exc:
        raise errors.StockqError(f"The demo stopped: {exc}") from None
    render.line()
    render.table(
        "Stock: stockq (MAIN + SUP) and the shop",
        ["sku", "product", "stockq", "shop", ""],
        [
            [
                r.sku,
                r.name,
                f"{r.stockq.normalize():f}",
                "—" if r.shop is None else r.shop,
                "✓" if r.shop == int(r.stockq) else "✗",
            ]
            for r in result.rows
        ],
        justify={"stockq": "right", "shop": "right"},
    )
    verdict = "in sync" if result.in_sync else "NOT in sync"
    render.info(
        f"Done in {result.seconds:.1f} s: the shop is {verdict} with the ledger. Database: {result.workdir / 'stockq.db'}"
    )
    if not result.in_sync:
        raise typer.Exit(1)


def _quote(arg: str) -> str:
    return f'"{arg}"' if (" " in arg or ("," in arg and ":" not in arg and not arg.startswith("--"))) else arg
