"""The wheel carries the migrations, so `stockq migrate` works from an installed package, not only a checkout."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_wheel_contains_every_migration(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("stockq-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "stockq/_migrations/env.py" in names
    for migration in (ROOT / "migrations" / "versions").glob("*.py"):
        assert f"stockq/_migrations/versions/{migration.name}" in names
    assert "stockq/py.typed" in names
