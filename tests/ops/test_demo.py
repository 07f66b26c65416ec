"""The quick start (the README's first command) runs end to end on a fresh SQLite file."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from stockq.demo.run import run_demo


@pytest.mark.slow
def test_demo_ends_with_the_shop_in_sync_with_the_ledger(tmp_path: Path) -> None:
    outputs: list[str] = []
    result = run_demo(tmp_path / "demo", output=outputs.append)
    by_sku = {row.sku: row for row in result.rows}
    assert len(by_sku) == 9
    # CSV stock 40 + PZ delivery 20; CSV 0 + delivery 24; supplier XML 3 + delivery 2.
    assert (by_sku["KUB-001"].stockq, by_sku["KUB-001"].shop) == (Decimal(60), 60)
    assert (by_sku["ŁYŻ-040"].stockq, by_sku["ŁYŻ-040"].shop) == (Decimal(24), 24)
    assert (by_sku["EKS-200"].stockq, by_sku["EKS-200"].shop) == (Decimal(5), 5)
    assert result.in_sync
    text = "\n".join(outputs)
    assert "ExecuteIntegrationTask" in text and "SyncInventory" in text and "DONE" in text
    assert "Traceback" not in text
    assert (tmp_path / "demo" / "stockq.db").exists()


@pytest.mark.slow
def test_demo_command_prints_the_side_by_side_table(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "stockq", "demo", "--dir", str(tmp_path / "d"), "-q"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "in sync with the ledger" in result.stdout
    assert "KUB-001" in result.stdout and "60" in result.stdout
