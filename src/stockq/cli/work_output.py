"""The worker's per-job lines: Laravel's RUNNING / DONE / FAIL rows, or JSON lines with --json."""

from __future__ import annotations

import datetime as dt
import sys

from stockq.cli import render
from stockq.queue.worker import JobEvent, JobStatus, current_rss_mb

_RESULTS = {
    JobStatus.SUCCESS: "deleted",
    JobStatus.RELEASED: "released",
    JobStatus.FAILED: "failed",
}


def format_runtime(seconds: float) -> str:
    """``512.31ms`` up to a second, then ``1s 234ms``, ``2m 3s``, ``1h 2m`` (Carbon's short intervals)."""
    ms = seconds * 1000
    if ms <= 1000:
        return f"{ms:.2f}ms"
    total_ms = int(ms)
    hours, rest = divmod(total_ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s {millis}ms"


class WorkOutput:
    """Prints worker events at the chosen verbosity (``quiet``: nothing per job)."""

    def __init__(self, *, verbosity: int = 0, quiet: bool = False, json_lines: bool = False,
                 connection: str = "database") -> None:  # fmt: skip
        self.verbosity = verbosity
        self.quiet = quiet
        self.json_lines = json_lines
        self.connection = connection
        # Logs (supervisor, systemd, cron) get the same rows as plain text: rich's rendering per line would cost
        # more than a fast job.
        self._plain = not sys.stdout.isatty()

    @staticmethod
    def _write(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    def started(self, queues: tuple[str, ...]) -> None:
        if self.quiet or self.json_lines:
            return
        noun = "queue" if len(queues) == 1 else "queues"
        render.info(f"Processing jobs from the [{','.join(queues)}] {noun}.")

    def log(self, message: str) -> None:
        if self.json_lines:
            render.json_line({"level": "warning", "message": message, "timestamp": _timestamp()})
        elif not self.quiet:
            render.plain(f"  {dt.datetime.now():%Y-%m-%d %H:%M:%S} {message}", stderr=True)

    @property
    def wants_events(self) -> bool:
        return self.json_lines or not self.quiet

    def event(self, event: JobEvent) -> None:
        if self.json_lines:
            self._json(event)
        elif not self.quiet:
            self._line(event)

    def _line(self, event: JobEvent) -> None:
        width = render.terminal_width()
        when = f"{event.started_at:%Y-%m-%d %H:%M:%S}"
        name = event.name
        extra = f" {event.job_id} {self.connection} {event.queue}" if self.verbosity >= 1 else ""
        if event.status is JobStatus.STARTING:
            dots = max(width - len(name) - len(extra) - 33, 0)
            if self._plain:
                self._write(f"  {when} {name}{extra} {'.' * dots} RUNNING\n")
                return
            render.line(f"  [bright_black]{when}[/] {_esc(name)}[bright_black]{_esc(extra)}[/] "
                        f"[bright_black]{'.' * dots}[/] [yellow]RUNNING[/]")  # fmt: skip
            return
        runtime = format_runtime(event.duration or 0.0)
        if self.verbosity >= 1:
            runtime = f"{runtime} {current_rss_mb():.1f}MB"
        label, style = {
            JobStatus.SUCCESS: ("DONE", "green"),
            JobStatus.RELEASED: ("FAIL", "yellow"),
            JobStatus.FAILED: ("FAIL", "red"),
        }[event.status]
        dots = max(width - len(name) - len(extra) - len(runtime) - 31, 0)
        if self._plain:
            self._write(f"  {when} {name}{extra} {'.' * dots} {runtime} {label}\n")
        else:
            render.line(f"  [bright_black]{when}[/] {_esc(name)}[bright_black]{_esc(extra)}[/] "
                        f"[bright_black]{'.' * dots}[/] [bright_black]{runtime}[/] [{style}]{label}[/]")  # fmt: skip
        if event.status is not JobStatus.SUCCESS and event.message and self.verbosity >= 1:
            render.plain(f"    {event.exception}: {event.message}", stderr=True)

    def _json(self, event: JobEvent) -> None:
        record: dict[str, object] = {
            "level": "info" if event.status in (JobStatus.STARTING, JobStatus.SUCCESS) else "warning",
            "id": event.job_id,
            "uuid": event.uuid,
            "connection": self.connection,
            "queue": event.queue,
            "job": event.name,
            "status": event.status.value,
            "result": _RESULTS.get(event.status),
            "attempts": event.attempts,
            "exception": event.exception,
            "message": event.message,
            "timestamp": _timestamp(),
        }
        if event.status is not JobStatus.STARTING:
            record["duration"] = round(event.duration or 0.0, 6)
        render.json_line({k: v for k, v in record.items() if v})


def _timestamp() -> str:
    return dt.datetime.now().astimezone().isoformat(timespec="microseconds")


def _esc(text: str) -> str:
    return text.replace("[", r"\[")
