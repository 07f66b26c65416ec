"""The queue core knows nothing of warehouses: it imports no domain package."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

QUEUE = Path(__file__).resolve().parents[2] / "src" / "stockq" / "queue"
FORBIDDEN = ("stockq.jobs", "stockq.warehouse", "stockq.imports", "stockq.integrations", "stockq.cli")


@pytest.mark.parametrize("module", sorted(QUEUE.glob("*.py")), ids=lambda p: p.name)
def test_queue_core_imports_no_domain_or_cli(module: Path) -> None:
    tree = ast.parse(module.read_text())
    imported = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.append(node.module)
    bad = [name for name in imported if name.startswith(FORBIDDEN)]
    assert not bad, f"{module.name} imports {bad}"
