"""The ledger uses the queue only through listeners registered from outside: it imports no queue, job or CLI."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

WAREHOUSE = Path(__file__).resolve().parents[2] / "src" / "stockq" / "warehouse"
FORBIDDEN = ("stockq.queue", "stockq.jobs", "stockq.cli", "stockq.integrations", "stockq.imports", "rich")


@pytest.mark.parametrize("module", sorted(WAREHOUSE.glob("*.py")), ids=lambda p: p.name)
def test_warehouse_imports_no_queue_jobs_or_cli(module: Path) -> None:
    imported: list[str] = []
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.Import):
            imported += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.append(node.module)
    assert not [name for name in imported if name.startswith(FORBIDDEN)]
