"""ruff and mypy (strict) are part of the suite, so style and types cannot rot between reviews."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_check_and_format() -> None:
    check = _run("ruff", "check", "src", "tests", "bench", "migrations")
    assert check.returncode == 0, check.stdout
    fmt = _run("ruff", "format", "--check", "src", "tests", "bench", "migrations")
    assert fmt.returncode == 0, fmt.stdout


@pytest.mark.slow
def test_mypy_strict() -> None:
    result = _run("mypy")
    assert result.returncode == 0, result.stdout
