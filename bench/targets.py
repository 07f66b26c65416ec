"""The issue's targets as rows: each benchmark script reports its own, run_all.py gathers them into one table.

A script given ``--targets-json FILE`` writes its rows there (a JSON list); ``run_all.py`` passes a temporary file
and reads it back, so the report's first table lists every target of the run, met or not.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class Target:
    benchmark: str
    stockq: str
    against: str
    ratio: str
    target: str
    met: bool | None  # None: a reference figure, or not measured in this run


def ratio(value: float, reference: float | None) -> str:
    return f"{value / reference:.2f}x" if reference else "-"


def verdict(flag: bool | None) -> str:
    return "n/a" if flag is None else ("met" if flag else "**not met**")


def table(targets: list[Target]) -> str:
    lines = [
        "| benchmark | stockq | against | ratio | target | |",
        "|---|---:|---|---:|---|---|",
    ]
    lines += [
        f"| {t.benchmark} | {t.stockq} | {t.against} | {t.ratio} | {t.target} | {verdict(t.met)} |" for t in targets
    ]
    return "\n".join(lines)


def write(path: Path | None, targets: list[Target]) -> None:
    if path is not None:
        path.write_text(json.dumps([asdict(t) for t in targets], ensure_ascii=False, indent=1))


def read(path: Path) -> list[Target]:
    if not path.exists() or not path.read_text().strip():
        return []
    return [Target(**row) for row in json.loads(path.read_text())]
