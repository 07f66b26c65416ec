"""`stockq integrations …`: shops (PrestaShop), product links, inventory sync and its logs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

# Imported for its side effect: the stock-change listener, so that a document posted from any stockq command
# queues the coalesced SyncInventory job.
import stockq.jobs.integrations  # noqa: F401
from stockq.cli import render
from stockq.cli.context import state

if TYPE_CHECKING:
    from stockq.integrations.sync import SyncResult

app = typer.Typer(help="Integrations: imports, PrestaShop shops, product links, inventory sync.", no_args_is_help=True)
add_app = typer.Typer(help="Add an integration.", no_args_is_help=True)
app.add_typer(add_app, name="add")

IntegrationOption = Annotated[int | None, typer.Option("--integration", help="Only this integration id.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


@add_app.command("prestashop")
def add_prestashop(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A name for the shop.")],
    url: Annotated[str, typer.Option("--url", help="The shop's base URL (the API is URL/api/).")],
    key: Annotated[
        str,
        typer.Option("--key", envvar="STOCKQ_PRESTASHOP_KEY", help="Webservice key (32 chars); never printed."),
    ],
    shop: Annotated[
        int | None, typer.Option("--shop", help="Shop id in a multistore (default: the default shop).")
    ] = None,
    warehouses: Annotated[str, typer.Option("--warehouses", help="Warehouse codes whose stock it sells: MAIN,…")] = "",
    interval: Annotated[int, typer.Option("--interval", help="Minutes between scheduled syncs.")] = 60,
    buffer: Annotated[int, typer.Option("--buffer", help="Units held back from the published quantity.")] = 0,
    concurrency: Annotated[int, typer.Option("--concurrency", help="Requests in flight to the shop at most.")] = 4,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for the shop per request.")] = 30.0,
) -> None:
    """Add a PrestaShop shop (active at once); test it with `stockq integrations test ID`."""
    from stockq.integrations import shops

    integration = shops.add_prestashop(
        state(ctx).engine(),
        name,
        url=url,
        key=key,
        shop_id=shop,
        warehouses=tuple(warehouses.split(",")),
        interval_minutes=interval,
        stock_buffer=buffer,
        concurrency=concurrency,
        timeout_seconds=timeout,
    )
    render.info(f"Integration [{integration.id}] {integration.name} added (key {integration.masked_key})")


@app.command("update")
def update(
    ctx: typer.Context,
    integration_id: Annotated[int, typer.Argument(help="Integration id.")],
    url: Annotated[str | None, typer.Option("--url", help="The shop's base URL.")] = None,
    key: Annotated[str | None, typer.Option("--key", help="New webservice key (32 chars); never printed.")] = None,
    shop: Annotated[int | None, typer.Option("--shop", help="Shop id in a multistore (0: the default shop).")] = None,
    warehouses: Annotated[str | None, typer.Option("--warehouses", help="Warehouse codes: MAIN,…")] = None,
    interval: Annotated[int | None, typer.Option("--interval", help="Minutes between scheduled syncs.")] = None,
    buffer: Annotated[int | None, typer.Option("--buffer", help="Units held back from the published quantity.")] = None,
    concurrency: Annotated[int | None, typer.Option("--concurrency", help="Requests in flight at most.")] = None,
    timeout: Annotated[float | None, typer.Option("--timeout", help="Seconds to wait per request.")] = None,
) -> None:
    """Change an integration's settings (only the options given)."""
    from stockq.integrations import shops

    integration = shops.update(
        state(ctx).engine(),
        integration_id,
        url=url,
        key=key,
        shop_id=shop,
        warehouses=tuple(warehouses.split(",")) if warehouses is not None else None,
        interval_minutes=interval,
        stock_buffer=buffer,
        concurrency=concurrency,
        timeout_seconds=timeout,
    )
    render.info(f"Integration [{integration.id}] {integration.name} updated")


@app.command("list")
def list_integrations(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List integrations (keys masked)."""
    from stockq.integrations import shops

    rows = [i.public() for i in shops.list_all(state(ctx).engine())]
    if as_json:
        render.json_out(rows)
        return
    if not rows:
        render.info("No integrations")
        return
    render.table(
        None,
        ["ID", "Name", "URL", "Key", "Warehouses", "Active", "Last sync"],
        [
            [r["id"], r["name"], r["url"], r["api_key"], ",".join(r["warehouses"]), "yes" if r["active"] else "no",
             r["last_synced_at"] or "never"]
            for r in rows
        ],
    )  # fmt: skip


@app.command("show")
def show(
    ctx: typer.Context,
    integration_id: Annotated[int, typer.Argument(help="Integration id.")],
    as_json: JsonOption = False,
) -> None:
    """Show one integration (key masked)."""
    from stockq.integrations import shops

    data = shops.get(state(ctx).engine(), integration_id).public()
    if as_json:
        render.json_out(data)
        return
    for name, value in data.items():
        shown = ",".join(value) if isinstance(value, list) else value
        render.line(render.dotted(name, "-" if shown in (None, "") else str(shown)))


@app.command("test")
def test(ctx: typer.Context, integration_id: Annotated[int, typer.Argument(help="Integration id.")]) -> None:
    """Reach the shop: its PrestaShop version and what the key may do."""
    from stockq import errors
    from stockq.integrations import shops

    info = shops.test_connection(state(ctx).engine(), integration_id)
    render.line(render.dotted("PrestaShop version", info.version))
    checks = [
        ("read products", info.can_read_products),
        ("read combinations", info.can_read_combinations),
        ("read stock_availables", info.can_read_stock),
        ("write stock_availables", info.can_write_stock),
    ]
    for label, ok in checks:
        render.line(render.dotted(f"key may {label}", "yes" if ok else "NO"))
    missing = [label for label, ok in checks if not ok]
    if missing:
        raise errors.StockqError(f"The key lacks permission to {', '.join(missing)}")
    render.info("The shop answers and the key has every permission stockq needs")


@app.command("enable")
def enable(ctx: typer.Context, integration_id: Annotated[int, typer.Argument(help="Integration id.")]) -> None:
    """Enable an integration (it is synced again)."""
    from stockq.integrations import shops

    integration = shops.set_active(state(ctx).engine(), integration_id, True)
    render.info(f"Integration [{integration.id}] {integration.name} enabled")


@app.command("disable")
def disable(ctx: typer.Context, integration_id: Annotated[int, typer.Argument(help="Integration id.")]) -> None:
    """Disable an integration (never synced until enabled)."""
    from stockq.integrations import shops

    integration = shops.set_active(state(ctx).engine(), integration_id, False)
    render.info(f"Integration [{integration.id}] {integration.name} disabled")


@app.command("link-products")
def link_products(
    ctx: typer.Context,
    integration: IntegrationOption = None,
    queue: Annotated[bool, typer.Option("--queue", help="Queue LinkIntegrationProducts jobs instead.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Link local products to the shop's products and combinations (reference = SKU, then EAN13)."""
    from stockq.integrations import linking, shops
    from stockq.jobs.integrations import LinkIntegrationProducts

    engine = state(ctx).engine()
    targets = [shops.get(engine, integration)] if integration is not None else shops.list_all(engine, active_only=True)
    if queue:
        from stockq.queue import api

        for target in targets:
            with engine.begin() as conn:
                uuid = api.dispatch(LinkIntegrationProducts(integration_id=target.id), conn=conn)
            render.info(f"LinkIntegrationProducts queued for [{target.id}] {target.name} ({uuid})")
        return
    reports = [linking.link_products(engine, target.id) for target in targets]
    if as_json:
        render.json_out([r.as_dict() for r in reports])
        return
    for target, report in zip(targets, reports, strict=True):
        render.info(
            f"[{target.id}] {target.name}: {report.linked} of {report.shop_items} shop items linked "
            f"({report.by_reference} by reference, {report.by_ean} by EAN); {report.created} new, "
            f"{report.updated} updated, {report.removed} removed, {report.unchanged} unchanged"
        )
        for item in report.unmatched:
            render.line(render.dotted("unmatched", item.label))
        for ambiguity in report.ambiguous:
            render.line(render.dotted("ambiguous", ambiguity.reason))
        for item in report.without_stock_row:
            render.line(render.dotted("no stock row", item.label))


@contextmanager
def _progress_bar(enabled: bool) -> Iterator[object]:
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("  sync"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=render.err, transient=True
    ) as bar:
        task = bar.add_task("sync", total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


@app.command("sync-inventory")
def sync_inventory(
    ctx: typer.Context,
    integration: IntegrationOption = None,
    force: Annotated[bool, typer.Option("--force", help="Ignore the sync intervals.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan; change nothing.")] = False,
    queue: Annotated[bool, typer.Option("--queue", help="Queue SyncInventory jobs on `integrations` instead.")] = False,
    full: Annotated[
        bool,
        typer.Option(
            "--full",
            help="Read every stock row from the shop and correct any that differ, also those changed in the "
            "shop's back office (otherwise done once a day; other runs send only what changed in stockq).",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Publish stock levels to every active shop whose interval has passed (only differences are sent)."""
    from stockq import errors
    from stockq.integrations import shops, sync

    engine = state(ctx).engine()
    if queue:
        if dry_run:
            raise errors.InvalidInput("--dry-run runs in the foreground; it cannot be queued")
        from stockq.jobs.integrations import SyncInventory
        from stockq.queue import api

        due, skipped = sync.select_integrations(engine, integration_id=integration, force=force, now=shops.utcnow())
        for result in skipped:
            render.warn(f"[{result.integration_id}] {result.integration_name} skipped: {result.message}")
        for target in due:
            with engine.begin() as conn:
                job = SyncInventory(integration_id=target.id, force=True, full=True if full else None)
                uuid = api.dispatch(job, conn=conn)
            render.info(f"SyncInventory queued for [{target.id}] {target.name} ({uuid})")
        return
    with _progress_bar(not as_json and render.err.is_terminal) as progress:
        results = sync.sync_inventory(
            engine,
            integration_id=integration,
            force=force,
            dry_run=dry_run,
            full=True if full else None,
            progress=progress,  # type: ignore[arg-type]
        )
    if as_json:
        render.json_out([r.as_dict() for r in results])
    else:
        _print_results(results, dry_run)
    sync.require_ok(results)


def _print_results(results: list[SyncResult], dry_run: bool) -> None:
    if not results:
        render.info("No active integrations")
    for result in results:
        title = f"[{result.integration_id}] {result.integration_name}"
        if result.status == "skipped":
            render.warn(f"{title} skipped: {result.message}")
            continue
        if dry_run:
            changes = [p for p in result.plan if p.change != 0]
            if changes:
                render.table(
                    f"{title}: plan (dry run, nothing changed)",
                    ["SKU", "stockq", "shop", "change"],
                    [
                        [p.sku, p.stockq, "missing" if p.shop is None else p.shop,
                         "-" if p.change is None else f"{p.change:+d}"]
                        for p in changes
                    ],
                    justify={"stockq": "right", "shop": "right", "change": "right"},
                )  # fmt: skip
            render.info(f"{title}: {result.checked} checked, {result.changed} would change (dry run)")
            continue
        summary = (
            f"{title}: {result.status}, {result.checked} checked, {result.changed} changed, {result.failed} failed"
        )
        if result.status == "failed":
            render.error(f"{title}: {result.message}")
        elif result.failed:
            render.warn(summary)
            for item in result.items:
                if item.result == "failed":
                    render.line(render.dotted(item.sku, item.error or "failed"))
        else:
            render.info(summary)


@app.command("sync-logs")
def sync_logs(
    ctx: typer.Context,
    integration: IntegrationOption = None,
    failed: Annotated[bool, typer.Option("--failed", help="Only runs and items that failed.")] = False,
    limit: Annotated[int, typer.Option("--limit", help="How many runs, newest first.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """Show the sync logs: one row per run, then its changed or failed items."""
    from stockq.integrations import synclogs

    logs = synclogs.sync_logs(state(ctx).engine(), integration_id=integration, failed_only=failed, limit=limit)
    if as_json:
        render.json_out([log.as_dict() for log in logs])
        return
    if not logs:
        render.info("No sync runs logged")
        return
    render.table(
        "Sync runs (UTC)",
        ["Run", "Shop", "Started", "Secs", "Status", "Dry", "Chk/chg/fail", "Message"],
        [
            [log.id, log.integration, f"{log.started_at:%Y-%m-%d %H:%M:%S}",
             f"{(log.finished_at - log.started_at).total_seconds():.0f}" if log.finished_at else "-", log.status,
             "yes" if log.dry_run else "no", f"{log.checked}/{log.changed}/{log.failed}", log.message or ""]
            for log in logs
        ],
    )  # fmt: skip
    items = [(log.id, item) for log in logs for item in log.items]
    if items:
        render.table(
            "Items",
            ["Run", "SKU", "From", "To", "Result", "Error"],
            [[run, i["sku"], i["from"], i["to"], i["result"], i["error"] or ""] for run, i in items],
        )
