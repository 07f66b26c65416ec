"""`stockq queue …`: the artisan queue commands, one to one."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from stockq import errors
from stockq.cli import render
from stockq.cli.context import AppState, state
from stockq.cli.work_output import WorkOutput, format_runtime
from stockq.queue import api, commands, payload, registry
from stockq.queue.notify import Notifier
from stockq.queue.repository import JobRepository, NewJob
from stockq.queue.worker import Worker, WorkerOptions, queue_list

app = typer.Typer(help="Workers, failed jobs and queues (the artisan queue:* commands).", no_args_is_help=True)

EXIT_ALERT = 3


def _repo(app_state: AppState) -> JobRepository:
    settings = app_state.settings
    return JobRepository(
        app_state.engine(), lease_seconds=settings.lease_seconds, connection_name=settings.connection_name
    )


def load_jobs(app_state: AppState) -> registry.Registry:
    """Register stockq's own jobs, the STOCKQ_JOBS modules and the `stockq.jobs` entry points."""
    import stockq.jobs  # noqa: F401  (defining the classes registers them)

    registry.load_job_modules(app_state.settings.job_modules)
    return registry.default_registry


def _confirm_in_production(app_state: AppState, force: bool) -> None:
    if not app_state.settings.is_production or force:
        return
    render.warn("APPLICATION IN PRODUCTION")
    try:
        confirmed = typer.confirm("Are you sure you want to run this command?", default=False, err=True)
    except typer.Abort:
        confirmed = False
    if not confirmed:
        render.warn("Command cancelled")
        raise typer.Exit(1)


@app.command("work")
def work(
    ctx: typer.Context,
    connection: Annotated[str, typer.Argument(help="Queue connection (only `database`).")] = "database",
    queue: Annotated[str, typer.Option("--queue", help="Queues in priority order, e.g. import,default.")] = "default",
    name: Annotated[str, typer.Option("--name", help="Worker name, shown by `queue status`.")] = "default",
    once: Annotated[bool, typer.Option("--once", help="Run one job (or wait --sleep for one), then exit.")] = False,
    stop_when_empty: Annotated[bool, typer.Option("--stop-when-empty", help="Exit 0 when no job is ready.")] = False,
    max_jobs: Annotated[int, typer.Option("--max-jobs", min=0, help="Exit after N jobs (0: no limit).")] = 0,
    max_time: Annotated[int, typer.Option("--max-time", min=0, help="Exit after N seconds (0: no limit).")] = 0,
    timeout: Annotated[int, typer.Option("--timeout", min=0, help="Seconds a job may run (0: no limit).")] = 60,
    memory: Annotated[int, typer.Option("--memory", min=1, help="Exit 12 when RSS reaches this many MB.")] = 128,
    sleep: Annotated[float, typer.Option("--sleep", min=0, help="Seconds to wait when no job is ready.")] = 3.0,
    rest: Annotated[float, typer.Option("--rest", min=0, help="Seconds to rest after each job.")] = 0.0,
    tries: Annotated[int, typer.Option("--tries", min=0, help="Attempts before a job fails (0: unlimited).")] = 1,
    backoff: Annotated[str, typer.Option("--backoff", help="Seconds before a retry, e.g. 10 or 1,5,10.")] = "0",
    force: Annotated[bool, typer.Option("--force", help="Accepted for artisan compatibility.")] = False,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="-v: ids and memory.")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing per job.")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Process jobs from the queues (queue:work). Exit 0 on a stop reason, 12 over --memory, 124 when a job
    ignored its timeout (after recording it)."""
    if connection != "database":
        raise errors.InvalidInput(f"Unknown queue connection [{connection}]: stockq has only `database`")
    queues = queue_list(queue)
    if not queues:
        raise errors.InvalidInput("--queue names no queue")
    try:
        backoff_seconds = payload.parse_backoff(backoff) or (0,)
    except (TypeError, ValueError):
        raise errors.InvalidInput(f"Invalid --backoff [{backoff}]: use seconds, e.g. 10 or 1,5,10") from None
    app_state = state(ctx)
    jobs_registry = load_jobs(app_state)
    repo = _repo(app_state)
    _set_process_title(queues)
    output = WorkOutput(verbosity=verbose, quiet=quiet, json_lines=json_output)
    notifier = Notifier(repo.engine.url) if repo.engine.dialect.name == "postgresql" else None
    options = WorkerOptions(
        queues=queues, name=name, once=once, stop_when_empty=stop_when_empty, max_jobs=max_jobs,
        max_time=max_time, timeout=timeout, memory=memory, sleep=sleep, rest=rest, tries=tries,
        backoff=backoff_seconds, force=force,
    )  # fmt: skip
    on_event = output.event if output.wants_events else None
    worker = Worker(repo, jobs_registry, options, on_event=on_event, on_log=output.log, notifier=notifier)
    output.started(queues)
    code = worker.run()
    if verbose >= 1 and not json_output:
        render.plain(f"  Worker stopped: {worker.stop_reason}", stderr=True)
    raise typer.Exit(code)


def _set_process_title(queues: tuple[str, ...]) -> None:
    try:
        import setproctitle
    except ImportError:  # pragma: no cover - a declared dependency
        return
    setproctitle.setproctitle(f"stockq queue:work --queue={','.join(queues)}")


@app.command("failed")
def failed(
    ctx: typer.Context,
    uuid: Annotated[str | None, typer.Argument(help="Show one failed job with its exception.")] = None,
    queue: Annotated[str | None, typer.Option("--queue", help="Only this queue.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List failed jobs, newest first (queue:failed); with a UUID, show that job's payload and exception."""
    repo = _repo(state(ctx))
    if uuid is not None:
        job = repo.find_failed(uuid)
        if job is None:
            raise errors.NotFound(f"No failed job matches the given ID [{uuid}].")
        if json_output:
            render.json_out({
                "id": job.id, "uuid": job.uuid, "connection": job.connection, "queue": job.queue,
                "class": job.display_name, "failed_at": commands.failed_at_local(job),
                "payload": job.payload, "exception": job.exception,
            })  # fmt: skip
            return
        render.line(render.dotted("UUID", job.uuid))
        render.line(render.dotted("ID", str(job.id)))
        render.line(render.dotted("Job", job.display_name))
        render.line(render.dotted("Queue", f"{job.connection}@{job.queue}"))
        render.line(render.dotted("Failed at", commands.failed_at_local(job)))
        render.line()
        render.plain("  Payload:")
        render.plain(f"  {job.payload}")
        render.line()
        render.plain("  Exception:")
        render.plain(job.exception.rstrip())
        return
    jobs = repo.failed(queue=queue)
    if json_output:
        render.json_out([
            {"id": j.uuid, "number": j.id, "connection": j.connection, "queue": j.queue, "class": j.display_name,
             "failed_at": commands.failed_at_local(j)}
            for j in jobs
        ])  # fmt: skip
        return
    if not jobs:
        render.info("No failed jobs found.")
        return
    render.line()
    for job in jobs:
        render.plain(f"{commands.failed_at_local(job)} {job.uuid} {job.connection}@{job.queue} {job.display_name}")
    render.line()


@app.command("retry")
def retry(
    ctx: typer.Context,
    ids: Annotated[list[str] | None, typer.Argument(help="`all`, or failed job UUIDs.")] = None,
    queue: Annotated[str | None, typer.Option("--queue", help="Retry every failed job of this queue.")] = None,
    ranges: Annotated[
        list[str] | None, typer.Option("--range", help="Failed job numbers (failed_jobs.id), e.g. 1-5.")
    ] = None,
) -> None:
    """Push failed jobs back onto their queues (queue:retry). Exit 1 if any ID matched nothing."""
    repo = _repo(state(ctx))
    uuids, missing = commands.retry_targets(repo, ids or [], queue=queue, ranges=ranges or [])
    if not uuids and not missing:
        render.info("No retryable jobs found.")
        return
    render.info("Pushing failed queue jobs back onto the queue.")
    for outcome in commands.retry(repo, uuids):
        if outcome.found:
            render.line(render.dotted(outcome.ident, f"{format_runtime(outcome.seconds)} DONE", right_style="green"))
        else:
            missing.append(outcome.ident)
    for ident in missing:
        render.error(f"Unable to find failed job with ID [{ident}].")
    render.line()
    if missing:
        raise typer.Exit(1)


@app.command("forget")
def forget(ctx: typer.Context, uuid: Annotated[str, typer.Argument(help="The failed job's UUID.")]) -> None:
    """Delete one failed job (queue:forget)."""
    if not _repo(state(ctx)).forget(uuid):
        raise errors.NotFound("No failed job matches the given ID.")
    render.info("Failed job deleted successfully.")


@app.command("flush")
def flush(
    ctx: typer.Context,
    hours: Annotated[float | None, typer.Option("--hours", min=0, help="Only jobs that failed this long ago.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Do not ask in production.")] = False,
) -> None:
    """Delete all failed jobs, or those older than --hours (queue:flush)."""
    app_state = state(ctx)
    _confirm_in_production(app_state, force)
    _repo(app_state).flush(older_than_hours=hours)
    if hours is None:
        render.info("All failed jobs deleted successfully.")
    else:
        render.info(f"All jobs that failed more than {hours:g} hours ago have been deleted successfully.")


@app.command("prune-failed")
def prune_failed(
    ctx: typer.Context,
    hours: Annotated[float, typer.Option("--hours", min=0, help="Delete failures older than this.")] = 24,
) -> None:
    """Delete failed jobs older than --hours, in chunks (queue:prune-failed)."""
    deleted = _repo(state(ctx)).prune_failed(older_than_hours=hours)
    render.info(f"{deleted} entries deleted.")


@app.command("clear")
def clear(
    ctx: typer.Context,
    queue: Annotated[str | None, typer.Option("--queue", help="Queues to clear (comma list); default: all.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Do not ask in production.")] = False,
) -> None:
    """Delete queued jobs (queue:clear); a job a live worker is running is never removed."""
    app_state = state(ctx)
    _confirm_in_production(app_state, force)
    queues = queue_list(queue) if queue else None
    deleted, kept = _repo(app_state).clear(queues)
    noun = "queue" if queues and len(queues) == 1 else "queues"
    where = f"[{', '.join(queues)}] {noun}" if queues else "[all] queues"
    render.info(f"Cleared {deleted} jobs from the {where}.")
    if kept:
        render.warn(f"Kept {kept} jobs that live workers are running; they finish or fail normally")


@app.command("restart")
def restart(ctx: typer.Context) -> None:
    """Tell every worker, on every host, to exit after its current job (queue:restart)."""
    commands.restart(_repo(state(ctx)))
    render.info("Broadcasting queue restart signal.")


@app.command("monitor")
def monitor(
    ctx: typer.Context,
    queues: Annotated[str, typer.Argument(help="Queues to watch, e.g. import,integrations.")],
    max_size: Annotated[int, typer.Option("--max", min=0, help="ALERT at this many jobs.")] = 1000,
    json_output: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Show queue sizes (queue:monitor); exit 3 when a queue is at or over --max, so cron can page."""
    rows = commands.monitor(_repo(state(ctx)), queues.split(","), max_size=max_size)
    if json_output:
        render.json_out([row.as_json() for row in rows])
    else:
        render.line()
        render.line(render.dotted("Queue name", "Size / Status", left_style="bright_black", right_style="bright_black"))
        for row in rows:
            status = "[yellow]ALERT[/]" if row.alert else "[green]OK[/]"
            age = row.oldest_pending_age
            render.line(render.dotted(f"[{row.connection}] {row.counts.queue}", f"[{row.counts.size}]") + f" {status}")
            render.line(render.dotted("Pending jobs", str(row.counts.pending)))
            render.line(render.dotted("Delayed jobs", str(row.counts.delayed)))
            render.line(render.dotted("Reserved jobs", str(row.counts.reserved)))
            render.line(render.dotted("Oldest pending job", "N/A" if age is None else _ago(age)))
            render.line()
    if any(row.alert for row in rows):
        raise typer.Exit(EXIT_ALERT)


def _ago(seconds: int) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    return f"{seconds} second{'s' if seconds != 1 else ''} ago"


@app.command("status")
def status(
    ctx: typer.Context,
    json_output: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Pending, delayed, reserved and failed jobs per queue, and the live workers."""
    app_state = state(ctx)
    report = commands.status(_repo(app_state))
    if json_output:
        render.json_out(report.as_json())
        return
    data = report.as_json()
    queue_rows = data["queues"]
    assert isinstance(queue_rows, list)
    render.table(
        "Queues",
        ["queue", "pending", "delayed", "reserved", "failed"],
        [[q["queue"], q["pending"], q["delayed"], q["reserved"], q["failed"]] for q in queue_rows],
        justify={c: "right" for c in ("pending", "delayed", "reserved", "failed")},
    )
    render.line(f"  Failed jobs in total: {data['failed_total']}")
    worker_rows = [
        [w.hostname, w.pid, w.name, w.queues, w.status if report.worker_alive(w) else "dead?",
         w.current_job or "", w.jobs_processed, f"{report.now - w.heartbeat_at}s ago"]
        for w in report.workers
    ]  # fmt: skip
    if worker_rows:
        render.table("Workers", ["host", "pid", "name", "queues", "status", "current job", "jobs", "heartbeat"],
                     worker_rows)  # fmt: skip
    else:
        render.line("  No workers are running.")


@app.command("dispatch")
def dispatch(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The job's registered name, e.g. ExecuteIntegrationTask.")],
    data: Annotated[str, typer.Option("--data", help="The job's arguments as a JSON object.")] = "{}",
    queue: Annotated[str | None, typer.Option("--queue", help="Queue (default: the job's own).")] = None,
    delay: Annotated[int, typer.Option("--delay", min=0, help="Seconds before it may run.")] = 0,
) -> None:
    """Queue one job from the shell and print its uuid."""
    app_state = state(ctx)
    try:
        arguments = json.loads(data)
    except ValueError as exc:
        raise errors.InvalidInput(f"--data is not valid JSON: {exc}") from None
    if not isinstance(arguments, dict):
        raise errors.InvalidInput("--data must be a JSON object, e.g. '{\"profile_id\": 1}'")
    job_class = load_jobs(app_state).get(name)
    try:
        job = job_class(**arguments)
    except TypeError as exc:
        raise errors.InvalidInput(f"Invalid arguments for {name}: {exc}") from None
    item: NewJob = api.new_job(job, queue=queue, delay=delay)
    _repo(app_state).push(item)
    render.plain(item.uuid)
