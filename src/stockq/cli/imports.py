"""`stockq imports …`: CSV/XML import profiles, running one now, and the run history.

Also ``run_imports``, registered as `stockq integrations run-imports` (the manual's integrations:run-imports).
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from stockq import errors
from stockq.cli import render
from stockq.cli.context import state
from stockq.imports import profiles, runner
from stockq.imports.fetch import describe

app = typer.Typer(help="CSV/XML product imports from local files and URLs.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
NameArgument = Annotated[str, typer.Argument(help="Profile name (or id).")]
MapOption = Annotated[
    list[str] | None,
    typer.Option("--map", help="field=column (CSV) or field=path (XML); fields: sku ean name unit price quantity."),
]
OptionOption = Annotated[
    list[str] | None, typer.Option("--option", help="Parsing/fetch option key=value (e.g. read_timeout=30).")
]
NamespaceOption = Annotated[list[str] | None, typer.Option("--namespace", help="XML namespace prefix=uri.")]
RecordOption = Annotated[list[str] | None, typer.Option("--record", help="XML record tag (repeatable).")]

_NUMERIC_OPTIONS = {"connect_timeout": float, "read_timeout": float, "max_bytes": int, "max_redirects": int}


def _options(
    *,
    extra: list[str] | None,
    delimiter: str | None,
    encoding: str | None,
    decimal: str | None,
    thousands: str | None,
    header: bool | None,
    records: list[str] | None,
    namespaces: list[str] | None,
) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for key, value in profiles.parse_pairs(extra, "--option").items():
        if key in _NUMERIC_OPTIONS:
            try:
                options[key] = _NUMERIC_OPTIONS[key](value)
            except ValueError:
                raise errors.InvalidInput(f"--option {key} needs a number, not {value!r}") from None
        else:
            options[key] = value
    if delimiter is not None:
        options["delimiter"] = "\t" if delimiter in ("tab", "\\t") else delimiter
    if encoding is not None:
        options["encoding"] = encoding
    if decimal is not None:
        options["decimal"] = decimal
    if thousands is not None:
        options["thousands"] = " " if thousands == "space" else thousands
    if header is not None:
        options["header"] = header
    if records:
        options["records"] = records
    if namespaces:
        options["namespaces"] = profiles.parse_pairs(namespaces, "--namespace")
    return options


@app.command("add")
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Profile name.")],
    source: Annotated[str, typer.Option("--source", help="A path under STOCKQ_IMPORT_ROOT or an http/https URL.")],
    format: Annotated[str, typer.Option("--format", help="csv or xml.")],
    preset: Annotated[str | None, typer.Option("--preset", help="ceneo, google or idosell (XML).")] = None,
    mapping: MapOption = None,
    interval: Annotated[int, typer.Option("--interval", help="Minutes between scheduled runs.")] = 60,
    stock_warehouse: Annotated[
        str | None, typer.Option("--stock-warehouse", help="Set the stock of this warehouse (INW document).")
    ] = None,
    match: Annotated[str, typer.Option("--match", help="Match products by sku or ean.")] = "sku",
    delimiter: Annotated[str | None, typer.Option("--delimiter", help="CSV delimiter (default: detected).")] = None,
    encoding: Annotated[str | None, typer.Option("--encoding", help="CSV encoding (default: detected).")] = None,
    decimal: Annotated[str | None, typer.Option("--decimal", help="Decimal separator: , . or auto.")] = None,
    thousands: Annotated[str | None, typer.Option("--thousands", help="Thousands separator (or 'space').")] = None,
    header: Annotated[bool | None, typer.Option("--header/--no-header", help="CSV has a header row.")] = None,
    record: RecordOption = None,
    namespace: NamespaceOption = None,
    option: OptionOption = None,
    inactive: Annotated[bool, typer.Option("--inactive", help="Create it disabled.")] = False,
) -> None:
    """Create an import profile (due at once)."""
    app_state = state(ctx)
    options = _options(
        extra=option,
        delimiter=delimiter,
        encoding=encoding,
        decimal=decimal,
        thousands=thousands,
        header=header,
        records=record,
        namespaces=namespace,
    )
    with app_state.engine().begin() as conn:
        profile = profiles.add_profile(
            conn,
            name,
            source=source,
            format=format,
            import_root=app_state.settings.import_root,
            preset=preset,
            options=options,
            mapping=profiles.parse_pairs(mapping, "--map"),
            match_key=match,
            stock_warehouse=stock_warehouse,
            interval_minutes=interval,
            active=not inactive,
        )
    render.info(f"Import profile {profile.name} [{profile.id}] created")


@app.command("edit")
def edit(
    ctx: typer.Context,
    name: NameArgument,
    source: Annotated[str | None, typer.Option("--source", help="New source.")] = None,
    format: Annotated[str | None, typer.Option("--format", help="csv or xml.")] = None,
    preset: Annotated[str | None, typer.Option("--preset", help="Preset ('' removes it).")] = None,
    mapping: MapOption = None,
    interval: Annotated[int | None, typer.Option("--interval", help="Minutes between runs.")] = None,
    stock_warehouse: Annotated[
        str | None, typer.Option("--stock-warehouse", help="Warehouse code ('' stops stock updates).")
    ] = None,
    match: Annotated[str | None, typer.Option("--match", help="sku or ean.")] = None,
    delimiter: Annotated[str | None, typer.Option("--delimiter", help="CSV delimiter ('' = detect).")] = None,
    encoding: Annotated[str | None, typer.Option("--encoding", help="CSV encoding ('' = detect).")] = None,
    decimal: Annotated[str | None, typer.Option("--decimal", help=", . or auto.")] = None,
    thousands: Annotated[str | None, typer.Option("--thousands", help="Thousands separator.")] = None,
    header: Annotated[bool | None, typer.Option("--header/--no-header", help="CSV has a header row.")] = None,
    record: RecordOption = None,
    namespace: NamespaceOption = None,
    option: OptionOption = None,
    active: Annotated[bool | None, typer.Option("--active/--inactive", help="Enable or disable.")] = None,
    rename: Annotated[str | None, typer.Option("--rename", help="New name.")] = None,
) -> None:
    """Change an import profile (options and mapping are merged; an empty value removes one)."""
    app_state = state(ctx)
    options = _options(
        extra=option,
        delimiter=delimiter,
        encoding=encoding,
        decimal=decimal,
        thousands=thousands,
        header=header,
        records=record,
        namespaces=namespace,
    )
    with app_state.engine().begin() as conn:
        profile = profiles.edit_profile(
            conn,
            name,
            import_root=app_state.settings.import_root,
            source=source,
            format=format,
            preset=preset,
            options=options,
            mapping={k: v for k, v in profiles.parse_pairs(mapping, "--map").items()},
            match_key=match,
            stock_warehouse=stock_warehouse,
            interval_minutes=interval,
            active=active,
            rename=rename,
        )
    render.info(f"Import profile {profile.name} updated")


@app.command("remove")
def remove(ctx: typer.Context, name: NameArgument) -> None:
    """Delete an import profile and its run history."""
    with state(ctx).engine().begin() as conn:
        profile = profiles.remove_profile(conn, name)
    render.info(f"Import profile {profile.name} removed")


def _profile_dict(profile: profiles.Profile) -> dict[str, Any]:
    options, mapping = profile.effective()
    return {
        "id": profile.id,
        "name": profile.name,
        "source": describe(profile.source),
        "format": profile.format,
        "preset": profile.preset,
        "match_key": profile.match_key,
        "stock_warehouse": profile.stock_warehouse,
        "interval_minutes": profile.interval_minutes,
        "active": profile.active,
        "next_run_at": profile.next_run_at,
        "last_run_at": profile.last_run_at,
        "job_queued": profile.job_queued_at is not None,
        "options": options,
        "mapping": mapping,
    }


@app.command("list")
def list_(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List the import profiles."""
    with state(ctx).engine().connect() as conn:
        found = profiles.list_profiles(conn)
    if as_json:
        render.json_out([_profile_dict(p) for p in found])
        return
    if not found:
        render.info("No import profiles")
        return
    render.table(
        None,
        ["ID", "Name", "Format", "Preset", "Source", "Every", "Stock", "Active", "Next run", "Last run"],
        [
            (
                p.id,
                p.name,
                p.format,
                p.preset or "",
                describe(p.source),
                f"{p.interval_minutes} min",
                p.stock_warehouse or "",
                "yes" if p.active else "no",
                p.next_run_at,
                p.last_run_at or "never",
            )
            for p in found
        ],
    )


@app.command("show")
def show(ctx: typer.Context, name: NameArgument, as_json: JsonOption = False) -> None:
    """Show one import profile with its effective options and mapping."""
    with state(ctx).engine().connect() as conn:
        profile = profiles.get_profile(conn, name)
    data = _profile_dict(profile)
    if as_json:
        render.json_out(data)
        return
    for key, value in data.items():
        text = json.dumps(value, ensure_ascii=False) if isinstance(value, dict) else str(value)
        render.line(render.dotted(key, text))


@app.command("run")
def run(
    ctx: typer.Context,
    name: NameArgument,
    as_json: JsonOption = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")] = True,
) -> None:
    """Run an import profile now, in the foreground (exit 1 when the run fails)."""
    app_state = state(ctx)
    engine = app_state.engine()
    with render.byte_progress(f"import {name}", enabled=progress and not as_json and sys.stderr.isatty()) as update:
        result = runner.run_import(engine, name, import_root=app_state.settings.import_root, progress=update)
    if as_json:
        render.json_out(
            {
                k: getattr(result, k)
                for k in (
                    "run_id",
                    "profile",
                    "status",
                    "read",
                    "created",
                    "updated",
                    "unchanged",
                    "rejected",
                    "stock_document",
                    "message",
                )
            }
            | {"rejections": [{"record": n, "reason": r} for n, r in result.rejections[:100]]}
        )
    else:
        _print_result(result)
    if result.failed:
        raise typer.Exit(1)


def _print_result(result: runner.RunResult) -> None:
    if result.failed:
        render.error(f"Import {result.profile} failed: {result.message}")
        return
    for number, reason in result.rejections[:20]:
        render.line(render.dotted(f"rejected #{number}", reason))
    if result.rejected > 20:
        render.line(f"  … {result.rejected - 20} more rejected (stockq imports runs {result.profile})")
    if result.status == "not_modified":
        render.info(f"Import {result.profile}: {result.message}")
        return
    summary = (
        f"Import {result.profile}: {result.read} read, {result.created} created, {result.updated} updated, "
        f"{result.unchanged} unchanged, {result.rejected} rejected"
    )
    if result.stock_document:
        summary += f"; stock posted as {result.stock_document}"
    render.info(summary)


@app.command("runs")
def runs(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="Only this profile.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="How many runs.")] = 20,
    rejections: Annotated[bool, typer.Option("--rejections", help="Also list the rejected records.")] = False,
    as_json: JsonOption = False,
) -> None:
    """The import run history, newest first."""
    with state(ctx).engine().connect() as conn:
        found = runner.list_runs(conn, name, limit=limit)
        rejected = {r.id: runner.run_rejections(conn, r.id) for r in found if r.rejected and (rejections or as_json)}
    if as_json:
        render.json_out(
            [
                {
                    **{k: getattr(r, k) for k in r.__dataclass_fields__},
                    "rejections": [{"record": n, "reason": reason} for n, reason in rejected.get(r.id, [])],
                }
                for r in found
            ]
        )
        return
    if not found:
        render.info("No import runs")
        return
    render.table(
        None,
        ["Run", "Profile", "Status", "Started", "Secs", "Read", "New", "Upd", "Same", "Rej", "Stock"],
        [
            (
                r.id,
                r.profile,
                r.status,
                r.started_at.strftime("%Y-%m-%d %H:%M") if r.started_at else "",
                f"{(r.finished_at - r.started_at).total_seconds():.1f}" if r.finished_at and r.started_at else "",
                r.read,
                r.created,
                r.updated,
                r.unchanged,
                r.rejected,
                r.stock_document or "",
            )
            for r in found
        ],
    )
    for r in found:
        if r.message:
            render.line(render.dotted(f"run {r.id} {r.status}", r.message))
    for run_id, items in rejected.items():
        for number, reason in items:
            render.line(render.dotted(f"run {run_id} #{number}", reason))


def run_imports(ctx: typer.Context) -> None:
    """Queue an ExecuteIntegrationTask on `import` for every active import profile that is due."""
    from stockq.jobs.imports import queue_due_imports

    queued = queue_due_imports(state(ctx).engine())
    if not queued:
        render.info("No import profiles are due")
        return
    for profile in queued:
        render.line(render.dotted(profile.name, "queued"))
    render.info(f"Queued {len(queued)} import job(s) on import")
