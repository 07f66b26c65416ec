"""Everything the CLI prints: Laravel-style banners and dotted rows, rich tables, JSON. The only rich importer."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.table import Table

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

_BANNER_STYLES = {"INFO": "white on blue", "ERROR": "white on red", "WARN": "black on yellow"}


def terminal_width() -> int:
    """Laravel's width for dotted rows: the terminal's, at most 150; 80 when unknown."""
    columns = os.environ.get("COLUMNS")
    if columns and columns.isdigit():
        return min(int(columns), 150)
    if sys.stdout.isatty():
        return min(shutil.get_terminal_size((80, 24)).columns, 150)
    return 80


def _finish(message: str) -> str:
    return message if message.endswith((".", "!", "?", ":")) else message + "."


def info(message: str) -> None:
    banner("INFO", message)


def warn(message: str) -> None:
    banner("WARN", message, stderr=True)


def error(message: str) -> None:
    """A one-line error on stderr, in Laravel's ERROR banner style."""
    banner("ERROR", message, stderr=True)


def banner(label: str, message: str, *, stderr: bool = False) -> None:
    console = err if stderr else out
    console.print()
    console.print(f"  [{_BANNER_STYLES[label]}] {label} [/] {_escape(_finish(message))}")
    console.print()


def dotted(left: str, right: str, *, left_style: str = "", right_style: str = "", width: int | None = None) -> str:
    """``left ....... right`` filling the terminal width, as Laravel's twoColumnDetail."""
    width = width or terminal_width()
    dots = max(width - len(left) - len(right) - 6, 1)
    left_text = f"[{left_style}]{_escape(left)}[/]" if left_style else _escape(left)
    right_text = f"[{right_style}]{_escape(right)}[/]" if right_style else _escape(right)
    return f"  {left_text} [bright_black]{'.' * dots}[/] {right_text}"


def line(text: str = "", *, stderr: bool = False) -> None:
    (err if stderr else out).print(text)


def plain(text: str, *, stderr: bool = False) -> None:
    """Print text verbatim (no markup)."""
    (err if stderr else out).print(text, markup=False)


def json_out(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def json_line(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def table(
    title: str | None,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    justify: dict[str, str] | None = None,
) -> None:
    justify = justify or {}
    grid = Table(title=title, show_lines=False, header_style="bold")
    for column in columns:
        grid.add_column(column, justify=justify.get(column, "left"))  # type: ignore[arg-type]
    for row in rows:
        grid.add_row(*("" if cell is None else str(cell) for cell in row))
    out.print(grid)


@contextmanager
def byte_progress(label: str, *, enabled: bool = True) -> Iterator[Callable[[int, int, int], None]]:
    """A transient progress bar on stderr over bytes read; yields ``update(records, bytes_done, bytes_total)``."""
    if not enabled:
        yield lambda records, done, total: None
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn(f"  {_escape(label)}"),
        BarColumn(),
        DownloadColumn(),
        TextColumn("{task.fields[records]} records"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=None, records=0)

        def update(records: int, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total or None, records=records)

        yield update


def _escape(text: str) -> str:
    return text.replace("[", r"\[")
