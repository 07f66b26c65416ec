"""Shared fixtures: a migrated database per test, on SQLite and on PostgreSQL.

Every test that takes ``db_url`` runs twice, once on a fresh SQLite file and once on a fresh PostgreSQL database
cloned from a migrated template (CREATE DATABASE … TEMPLATE), so several processes can see each other's commits.
PostgreSQL is required: set STOCKQ_TEST_PG_URL to point elsewhere than postgres@127.0.0.1:5432.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

for _name in [n for n in os.environ if n.startswith("STOCKQ_") and not n.startswith("STOCKQ_TEST_")]:
    del os.environ[_name]

from stockq import db, schema  # noqa: E402

PG_ADMIN_URL = os.environ.get("STOCKQ_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
BACKENDS = ["sqlite", "postgresql"]


def _pg_url(dbname: str) -> str:
    return sa.engine.make_url(PG_ADMIN_URL).set(database=dbname).render_as_string(hide_password=False)


def _pg_admin() -> sa.Engine:
    return sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)


@pytest.fixture(autouse=True)
def _worker_memory_counts_from_test_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process workers measure --memory from the test's start, as a fresh ``stockq queue work`` process would.

    The pytest process's own heap grows over the session (glibc keeps what earlier tests freed), and a worker run
    inside it would otherwise trip the default --memory=128 and exit 12 for memory that is not its own.
    """
    from stockq.queue import worker

    process_rss_mb = worker.current_rss_mb
    baseline = process_rss_mb()
    monkeypatch.setattr(worker, "current_rss_mb", lambda: max(0.0, process_rss_mb() - baseline))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = db.create(f"sqlite:///{path}")
    schema.upgrade(engine)
    engine.dispose()  # closing the last connection checkpoints the WAL into the file
    db.dispose_engines()
    assert not Path(f"{path}-wal").exists() or Path(f"{path}-wal").stat().st_size == 0
    return path


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    name = f"stockq_tpl_{uuid.uuid4().hex[:10]}"
    admin = _pg_admin()
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    engine = db.create(_pg_url(name))
    schema.upgrade(engine)
    engine.dispose()
    db.dispose_engines()
    yield name
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def fresh_database(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "stockq.db"
        shutil.copyfile(template, path)
        yield f"sqlite:///{path}"
        db.dispose_engines()
        return
    template_name: str = request.getfixturevalue("pg_template")
    name = f"stockq_t_{uuid.uuid4().hex[:12]}"
    admin = _pg_admin()
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{template_name}"')
    try:
        yield _pg_url(name)
    finally:
        db.dispose_engines()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database: SQLite file or PostgreSQL database."""
    yield from fresh_database(request.param, tmp_path, request)


@pytest.fixture
def sqlite_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from fresh_database("sqlite", tmp_path, request)


@pytest.fixture
def pg_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from fresh_database("postgresql", tmp_path, request)


@pytest.fixture
def engine(db_url: str) -> sa.Engine:
    return db.get_engine(db_url)


@pytest.fixture
def cli_env(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment for running the CLI (in-process or as a subprocess) against the test database."""
    monkeypatch.setenv("STOCKQ_DATABASE_URL", db_url)
    monkeypatch.chdir(tmp_path)
    env = dict(os.environ)
    env["STOCKQ_DATABASE_URL"] = db_url
    return env
