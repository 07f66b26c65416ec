"""Fixtures of the import tests: a database with warehouse MAG, and an import root."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from stockq import db
from stockq.warehouse import warehouses


@pytest.fixture
def store(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> sa.Engine:
    """A migrated database with warehouse MAG; STOCKQ_DATABASE_URL and STOCKQ_IMPORT_ROOT (= tmp_path) set."""
    monkeypatch.setenv("STOCKQ_DATABASE_URL", db_url)
    monkeypatch.setenv("STOCKQ_IMPORT_ROOT", str(tmp_path))
    engine = db.get_engine(db_url)
    with engine.begin() as conn:
        warehouses.add_warehouse(conn, "MAG", name="Magazyn")
    return engine
