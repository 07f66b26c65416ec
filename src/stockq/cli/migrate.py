"""`stockq migrate`: bring the schema to head, or show where it stands."""

from __future__ import annotations

from typing import Annotated

import typer

from stockq import schema
from stockq.cli import render
from stockq.cli.context import state


def migrate(
    ctx: typer.Context,
    show_status: Annotated[bool, typer.Option("--status", help="Show the current and the head revision only.")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Upgrade the database schema to the newest revision (or show its status)."""
    engine = state(ctx).engine(check_schema=False)
    current = schema.status(engine) if show_status else schema.upgrade(engine)
    if json_output:
        render.json_out({"current": current.current, "head": current.head, "up_to_date": current.up_to_date})
    elif show_status:
        render.line(render.dotted("Current revision", current.current or "none"))
        render.line(render.dotted("Head revision", current.head))
        render.line(render.dotted("Status", "up to date" if current.up_to_date else "run `stockq migrate`"))
    else:
        render.info(f"Database migrated to revision [{current.head}]")
    if show_status and not current.up_to_date:
        raise typer.Exit(1)
