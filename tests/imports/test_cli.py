"""`stockq imports …` and `stockq integrations run-imports`, ExecuteIntegrationTask, and the worker on `import`."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from stockq.cli import app
from stockq.imports import models, profiles
from stockq.jobs.imports import ExecuteIntegrationTask, queue_due_imports
from stockq.queue import api
from stockq.queue import models as queue_models
from stockq.queue.registry import default_registry
from stockq.queue.worker import Worker, WorkerOptions
from stockq.warehouse import stock
from tests.imports.helpers import DATA

runner = CliRunner()


def _cli(db_url: str, root: Path, *args: str) -> object:
    return runner.invoke(
        app, list(args), env={"STOCKQ_DATABASE_URL": db_url, "STOCKQ_IMPORT_ROOT": str(root), "COLUMNS": "150"}
    )


def _import_jobs(engine: sa.Engine) -> list[dict[str, object]]:
    jobs = queue_models.jobs
    with engine.begin() as conn:
        rows = conn.execute(sa.select(jobs.c.queue, jobs.c.payload)).all()
    found = []
    for queue, payload in rows:
        data = json.loads(payload)
        if "ExecuteIntegrationTask" in payload:
            found.append({"queue": queue, "payload": data})
    return found


def test_profile_commands(store: sa.Engine, db_url: str, tmp_path: Path) -> None:
    shutil.copy(DATA / "pl_cp1250.csv", tmp_path / "pl.csv")
    result = _cli(
        db_url,
        tmp_path,
        "imports",
        "add",
        "pl",
        "--source",
        "pl.csv",
        "--format",
        "csv",
        "--map",
        "name=nazwa",
        "--map",
        "quantity=ilosc",
        "--map",
        "price=cena_brutto",
        "--delimiter",
        ";",
        "--decimal",
        ",",
        "--interval",
        "15",
        "--stock-warehouse",
        "MAG",
    )
    assert result.exit_code == 0, result.output
    assert "Import profile pl [1] created" in result.stdout

    shown = json.loads(_cli(db_url, tmp_path, "imports", "show", "pl", "--json").stdout)
    assert shown["mapping"] == {"name": "nazwa", "quantity": "ilosc", "price": "cena_brutto"}
    assert shown["options"] == {"delimiter": ";", "decimal": ","}
    assert (shown["interval_minutes"], shown["stock_warehouse"], shown["active"]) == (15, "MAG", True)

    listed = json.loads(_cli(db_url, tmp_path, "imports", "list", "--json").stdout)
    assert [p["name"] for p in listed] == ["pl"]

    edited = _cli(db_url, tmp_path, "imports", "edit", "pl", "--interval", "30", "--inactive", "--map", "ean=ean")
    assert edited.exit_code == 0, edited.output
    shown = json.loads(_cli(db_url, tmp_path, "imports", "show", "pl", "--json").stdout)
    assert (shown["interval_minutes"], shown["active"], shown["mapping"]["ean"]) == (30, False, "ean")

    run = _cli(db_url, tmp_path, "imports", "run", "pl")
    assert run.exit_code == 0, run.output
    assert "8 read, 4 created, 0 updated, 0 unchanged, 4 rejected; stock posted as INW/" in run.stdout
    assert "line 6: EAN '12AB' is not 8 to 14 digits" in run.stdout

    runs = json.loads(_cli(db_url, tmp_path, "imports", "runs", "pl", "--json").stdout)
    assert len(runs) == 1 and runs[0]["status"] == "succeeded" and runs[0]["rejected"] == 4
    assert [r["record"] for r in runs[0]["rejections"]] == [5, 6, 7, 9]
    table = _cli(db_url, tmp_path, "imports", "runs", "--rejections")
    assert table.exit_code == 0 and "succeeded" in table.stdout and "negative quantity -3" in table.stdout

    removed = _cli(db_url, tmp_path, "imports", "remove", "pl")
    assert removed.exit_code == 0
    assert json.loads(_cli(db_url, tmp_path, "imports", "list", "--json").stdout) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--source", "/etc/passwd", "--format", "csv"], "outside the import root"),
        (["--source", "file:///etc/passwd", "--format", "csv"], "Only http and https"),
        (["--source", "f.xml", "--format", "xml", "--preset", "nope"], "Unknown preset 'nope'"),
        (["--source", "f.xml", "--format", "xml"], "needs a preset or a record tag"),
        (["--source", "f.csv", "--format", "csv", "--map", "colour=x"], "Unknown product field(s) colour"),
        (["--source", "f.csv", "--format", "json"], "Format must be one of csv, xml"),
        (["--source", "f.csv", "--format", "csv", "--map", "broken"], "--map must look like key=value"),
    ],
)
def test_add_refuses_bad_profiles(store: sa.Engine, db_url: str, tmp_path: Path, args: list[str], message: str) -> None:
    result = _cli(db_url, tmp_path, "imports", "add", "bad", *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_failed_run_exits_1_with_one_line(store: sa.Engine, db_url: str, tmp_path: Path) -> None:
    shutil.copy(DATA / "xxe.xml", tmp_path / "x.xml")
    assert (
        _cli(
            db_url, tmp_path, "imports", "add", "x", "--source", "x.xml", "--format", "xml", "--preset", "ceneo"
        ).exit_code
        == 0
    )
    result = _cli(db_url, tmp_path, "imports", "run", "x")
    assert result.exit_code == 1
    assert "Import x failed: The feed declares a DOCTYPE" in result.stderr
    assert "Traceback" not in result.output and "root:" not in result.output
    missing = _cli(db_url, tmp_path, "imports", "run", "nope")
    assert missing.exit_code == 1 and "No import profile nope" in missing.stderr


def test_run_imports_queues_each_due_profile_once(store: sa.Engine, db_url: str, tmp_path: Path) -> None:
    shutil.copy(DATA / "ceneo.xml", tmp_path / "c.xml")
    with store.begin() as conn:
        due = profiles.add_profile(conn, "due", source="c.xml", format="xml", preset="ceneo", import_root=tmp_path)
        profiles.add_profile(
            conn, "off", source="c.xml", format="xml", preset="ceneo", import_root=tmp_path, active=False
        )
        later = profiles.add_profile(conn, "later", source="c.xml", format="xml", preset="ceneo", import_root=tmp_path)
        conn.execute(
            sa.update(models.import_profiles)
            .where(models.import_profiles.c.id == later.id)
            .values(next_run_at=profiles.utcnow() + timedelta(hours=1))
        )

    first = _cli(db_url, tmp_path, "integrations", "run-imports")
    assert first.exit_code == 0, first.output
    assert "Queued 1 import job(s)" in first.stdout
    jobs = _import_jobs(store)
    assert len(jobs) == 1 and jobs[0]["queue"] == "import"
    assert json.dumps(jobs[0]["payload"]).count(f'"profile_id": {due.id}') == 1

    second = _cli(db_url, tmp_path, "integrations", "run-imports")
    assert "No import profiles are due" in second.stdout
    assert len(_import_jobs(store)) == 1

    # due again (the clock moved past next_run_at) but its job is still queued: nothing more is queued
    with store.begin() as conn:
        conn.execute(sa.update(models.import_profiles).values(next_run_at=profiles.utcnow()))
    assert [p.name for p in queue_due_imports(store)] == ["later"]
    assert sum(1 for j in _import_jobs(store) if f'"profile_id": {due.id}' in json.dumps(j["payload"])) == 1


def test_job_handle_runs_the_profile_and_clears_the_marker(store: sa.Engine, tmp_path: Path) -> None:
    shutil.copy(DATA / "ceneo.xml", tmp_path / "c.xml")
    with store.begin() as conn:
        profiles.add_profile(
            conn, "c", source="c.xml", format="xml", preset="ceneo", import_root=tmp_path, stock_warehouse="MAG"
        )
    [profile] = queue_due_imports(store)
    with store.begin() as conn:
        assert profiles.get_profile(conn, "c").job_queued_at is not None
    ExecuteIntegrationTask(profile_id=profile.id).handle()
    with store.begin() as conn:
        assert profiles.get_profile(conn, "c").job_queued_at is None
        assert {lv.sku: lv.quantity for lv in stock.stock_levels(conn, ["MAG"])}["SKU-1001"] == Decimal("14.0000")

    (tmp_path / "c.xml").write_text("<offers><o id='A'")  # now malformed: the job fails, the marker is cleared
    with pytest.raises(Exception, match="Import c failed: The XML is not well-formed"):
        ExecuteIntegrationTask(profile_id=profile.id).handle()
    with store.begin() as conn:
        assert profiles.get_profile(conn, "c").job_queued_at is None


def test_worker_runs_the_queued_import_on_the_import_queue(store: sa.Engine, db_url: str, tmp_path: Path) -> None:
    shutil.copy(DATA / "pl_cp1250.csv", tmp_path / "pl.csv")
    with store.begin() as conn:
        profiles.add_profile(
            conn,
            "pl",
            source="pl.csv",
            format="csv",
            import_root=tmp_path,
            stock_warehouse="MAG",
            mapping={"name": "nazwa", "quantity": "ilosc", "price": "cena_brutto"},
        )
    assert [p.name for p in queue_due_imports(store)] == ["pl"]
    events: list[object] = []
    worker = Worker(
        api.repository(db_url),
        default_registry,
        WorkerOptions(queues=("import",), stop_when_empty=True, sleep=0.05, timeout=60),
        on_event=events.append,
    )
    assert worker.run() == 0
    assert [(getattr(e, "name", None), str(getattr(e, "status", ""))) for e in events][-1][1] == "success"
    with store.begin() as conn:
        levels = {lv.sku: lv.quantity for lv in stock.stock_levels(conn, ["MAG"])}
        run = conn.execute(sa.select(models.import_runs)).one()._mapping
        inw = conn.execute(sa.text("SELECT count(*) FROM warehouse_documents WHERE type = 'INW'")).scalar_one()
        assert profiles.get_profile(conn, "pl").job_queued_at is None
    assert levels["SKU-1001"] == Decimal("14.0000") and levels["SKU-1007"] == Decimal("1234.5000")
    assert run["status"] == "succeeded" and inw == 1
    assert _import_jobs(store) == []


def test_a_database_lost_during_the_staging_copy_is_one_line_and_applies_nothing(
    store: sa.Engine, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL: the connection dies while records stream through COPY (the server terminated it): the run ends
    with the CLI's one database line, no traceback, and no product is created."""
    if store.dialect.name != "postgresql":
        pytest.skip("the staging COPY is PostgreSQL's")
    from stockq.imports import runner as import_runner

    (tmp_path / "feed.csv").write_text("sku;nazwa\n" + "".join(f"S{i};Produkt {i}\n" for i in range(5000)))
    assert _cli(db_url, tmp_path, "imports", "add", "feed", "--source", "feed.csv", "--format", "csv").exit_code == 0
    add_batch = import_runner._PostgresStagingImporter._add_batch
    backend: list[int] = []

    def connection_killed_after_the_first_batch(self: object, batch: object) -> None:
        if not backend:  # before the first batch starts the COPY, which holds the connection until it ends
            backend.append(self.conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())  # type: ignore[attr-defined]
        elif len(backend) == 1:
            backend.append(0)
            with sa.create_engine(db_url, poolclass=sa.pool.NullPool).connect() as other:
                other.exec_driver_sql(f"SELECT pg_terminate_backend({int(backend[0])})")
        add_batch(self, batch)  # type: ignore[arg-type]

    monkeypatch.setattr(import_runner._PostgresStagingImporter, "_add_batch", connection_killed_after_the_first_batch)
    result = _cli(db_url, tmp_path, "imports", "run", "feed")
    lines = result.output.strip().splitlines()  # type: ignore[attr-defined]
    assert result.exit_code == 1, result.output  # type: ignore[attr-defined]
    assert "Traceback" not in result.output and len(lines) == 1, lines  # type: ignore[attr-defined]
    assert "The database is unavailable: the connection is lost" in lines[0], lines
    with store.begin() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM products").scalar_one() == 0
        assert conn.execute(sa.select(models.import_runs.c.status)).scalars().all() == ["failed"]
