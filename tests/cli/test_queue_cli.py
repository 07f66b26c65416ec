from __future__ import annotations

import json
import re

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from stockq import db
from stockq.cli import app
from stockq.queue import api
from stockq.queue.models import failed_jobs
from stockq.queue.repository import JobRepository
from tests.support.testjobs import Explode, Noop

runner = CliRunner()
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


@pytest.fixture
def env(cli_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("STOCKQ_JOBS", "tests.support.testjobs")
    return {"STOCKQ_DATABASE_URL": cli_env["STOCKQ_DATABASE_URL"], "STOCKQ_JOBS": "tests.support.testjobs"}


def stockq(env: dict[str, str], *args: str, input: str | None = None):
    return runner.invoke(app, list(args), env=env, input=input)


def repo(env: dict[str, str]) -> JobRepository:
    return JobRepository(db.get_engine(env["STOCKQ_DATABASE_URL"]))


def fail_jobs(env: dict[str, str], *queues: str) -> list[str]:
    uuids = [api.dispatch(Explode(), queue=q) for q in queues]
    for q in dict.fromkeys(queues):
        result = stockq(env, "queue", "work", f"--queue={q}", "--stop-when-empty", "--tries=1", "--sleep=0", "-q")
        assert result.exit_code == 0, result.output
    return uuids


def test_every_command_has_help() -> None:
    import typer.main

    group = typer.main.get_command(app)
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        assert command.help, f"{name} has no help"
        for sub_name, sub in getattr(command, "commands", {}).items():
            assert sub.help, f"{name} {sub_name} has no help"


def test_dispatch_prints_a_uuid_and_rejects_bad_input(env: dict[str, str]) -> None:
    result = stockq(env, "queue", "dispatch", "tests.Noop", "--data", '{"n": 1}')
    assert result.exit_code == 0
    assert UUID.match(result.stdout.strip())
    bad_json = stockq(env, "queue", "dispatch", "tests.Noop", "--data", "{nope")
    assert bad_json.exit_code == 2 and "not valid JSON" in bad_json.stderr
    unknown = stockq(env, "queue", "dispatch", "NoSuchJob")
    assert unknown.exit_code == 2 and "No job is registered under the name 'NoSuchJob'" in unknown.stderr
    for result in (bad_json, unknown):
        assert "Traceback" not in result.output


def test_work_prints_running_and_done_lines(env: dict[str, str]) -> None:
    api.dispatch(Noop())
    result = stockq(env, "queue", "work", "--stop-when-empty", "--sleep=0")
    assert result.exit_code == 0
    assert "INFO  Processing jobs from the [default] queue." in result.stdout
    assert re.search(r"^  \d{4}-\d\d-\d\d \d\d:\d\d:\d\d tests\.Noop \.+ RUNNING$", result.stdout, re.M)
    assert re.search(r"^  \d{4}-\d\d-\d\d \d\d:\d\d:\d\d tests\.Noop \.+ \d+\.\d\dms DONE$", result.stdout, re.M)


def test_work_json_lines(env: dict[str, str]) -> None:
    api.dispatch(Noop())
    result = stockq(env, "queue", "work", "--stop-when-empty", "--sleep=0", "--json")
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert [(x["status"], x.get("result")) for x in lines] == [("starting", None), ("success", "deleted")]
    assert lines[1]["job"] == "tests.Noop" and lines[1]["connection"] == "database" and "duration" in lines[1]


def test_work_rejects_out_of_range_options(env: dict[str, str]) -> None:
    for args in (["--timeout=-1"], ["--backoff=x"], ["--queue= , "], ["redis"]):
        result = stockq(env, "queue", "work", *args)
        assert result.exit_code == 2, args
        assert "Traceback" not in result.output


def test_failed_lists_newest_first_in_the_manual_format(env: dict[str, str]) -> None:
    empty = stockq(env, "queue", "failed")
    assert "No failed jobs found." in empty.stdout
    first, second = fail_jobs(env, "integrations", "default")
    result = stockq(env, "queue", "failed")
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert re.match(rf"^\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d {second} database@default tests\.Explode$", lines[0])
    assert re.match(rf"^\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d {first} database@integrations tests\.Explode$", lines[1])
    as_json = json.loads(stockq(env, "queue", "failed", "--json").stdout)
    assert [j["id"] for j in as_json] == [second, first]
    detail = stockq(env, "queue", "failed", first)
    assert "RuntimeError: boom" in detail.stdout and "Traceback" in detail.stdout
    assert stockq(env, "queue", "failed", "--queue", "integrations", "--json").stdout.count(first) == 1


def test_retry_all_one_queue_and_range(env: dict[str, str]) -> None:
    a, b, c = fail_jobs(env, "default", "default", "integrations")
    result = stockq(env, "queue", "retry", a)
    assert result.exit_code == 0 and "Pushing failed queue jobs back onto the queue." in result.stdout
    assert re.search(rf"{a} \.+ .*DONE", result.stdout)
    assert {f.uuid for f in repo(env).failed()} == {b, c}
    assert stockq(env, "queue", "retry", "--queue", "integrations").exit_code == 0
    assert {f.uuid for f in repo(env).failed()} == {b}
    missing = stockq(env, "queue", "retry", "--queue", "nothing")
    assert missing.exit_code == 1 and "Unable to find failed jobs for queue [nothing]." in missing.stderr
    with db.get_engine(env["STOCKQ_DATABASE_URL"]).connect() as conn:
        number = conn.execute(sa.select(failed_jobs.c.id)).scalar_one()
    ranged = stockq(env, "queue", "retry", f"--range={number}-{number + 1}")
    assert ranged.exit_code == 1
    assert f"Unable to find failed job with ID [{number + 1}]." in ranged.stderr
    assert repo(env).failed() == []
    counts = {q.queue: q.pending for q in repo(env).counts()}
    assert counts == {"default": 2, "integrations": 1}
    assert "No retryable jobs found." in stockq(env, "queue", "retry", "all").stdout


def test_retry_reports_unknown_ids_and_bad_ranges(env: dict[str, str]) -> None:
    unknown = stockq(env, "queue", "retry", "00000000-0000-4000-8000-000000000000")
    assert unknown.exit_code == 1 and "Unable to find failed job with ID" in unknown.stderr
    backwards = stockq(env, "queue", "retry", "--range=5-1")
    assert backwards.exit_code == 2 and "5 is greater than 1" in backwards.stderr


def test_forget_flush_and_prune(env: dict[str, str]) -> None:
    a, _b, _c = fail_jobs(env, "default", "default", "default")
    assert "Failed job deleted successfully." in stockq(env, "queue", "forget", a).stdout
    again = stockq(env, "queue", "forget", a)
    assert again.exit_code == 1 and "No failed job matches the given ID." in again.stderr
    kept = stockq(env, "queue", "flush", "--hours", "48")
    assert "failed more than 48 hours ago" in kept.stdout and len(repo(env).failed()) == 2
    assert "0 entries deleted." in stockq(env, "queue", "prune-failed", "--hours", "24").stdout
    assert "All failed jobs deleted successfully." in stockq(env, "queue", "flush").stdout
    assert repo(env).failed() == []


def test_clear_all_or_some_queues_and_asks_in_production(env: dict[str, str]) -> None:
    api.dispatch_many([Noop(), Noop()], queue="integrations")
    api.dispatch(Noop(), queue="import")
    result = stockq(env, "queue", "clear", "--queue", "integrations")
    assert "Cleared 2 jobs from the [integrations] queue." in result.stdout
    prod = {**env, "STOCKQ_ENV": "production"}
    refused = stockq(prod, "queue", "clear", input="n\n")
    assert refused.exit_code == 1 and "Command cancelled." in refused.stderr
    assert repo(env).counts()[0].pending == 1
    confirmed = stockq(prod, "queue", "clear", input="y\n")
    assert confirmed.exit_code == 0 and "Cleared 1 jobs from the [all] queues." in confirmed.stdout
    assert stockq(prod, "queue", "clear", "--force").exit_code == 0


def test_monitor_alerts_with_a_non_zero_exit(env: dict[str, str]) -> None:
    api.dispatch_many([Noop() for _ in range(3)], queue="import")
    ok = stockq(env, "queue", "monitor", "import,default", "--max", "10")
    assert ok.exit_code == 0 and "[database] import" in ok.stdout and "Pending jobs" in ok.stdout
    alert = stockq(env, "queue", "monitor", "database:import", "--max", "3", "--json")
    assert alert.exit_code == 3
    (row,) = json.loads(alert.stdout)
    assert row == {"connection": "database", "queue": "import", "size": 3, "pending": 3, "delayed": 0,
                   "reserved": 0, "oldest_pending": row["oldest_pending"], "status": "ALERT"}  # fmt: skip


def test_status_replaces_the_tinker_snippet(env: dict[str, str]) -> None:
    api.dispatch(Noop(), queue="import")
    fail_jobs(env, "integrations")
    data = json.loads(stockq(env, "queue", "status", "--json").stdout)
    by_queue = {q["queue"]: q for q in data["queues"]}
    assert by_queue["import"]["pending"] == 1
    assert by_queue["integrations"]["failed"] == 1
    assert data["failed_total"] == 1
    table = stockq(env, "queue", "status")
    assert "import" in table.stdout and "No workers are running." in table.stdout


def test_restart_is_stored_in_the_database(env: dict[str, str]) -> None:
    result = stockq(env, "queue", "restart")
    assert "Broadcasting queue restart signal." in result.stdout
    assert repo(env).signal_value("restart") is not None


def test_migrate_status_and_unmigrated_database(env: dict[str, str], tmp_path) -> None:
    status = stockq(env, "migrate", "--status", "--json")
    assert json.loads(status.stdout)["up_to_date"] is True
    if env["STOCKQ_DATABASE_URL"].startswith("postgresql"):
        from alembic import command

        import stockq.schema as schema_module

        engine = db.get_engine(env["STOCKQ_DATABASE_URL"])
        with engine.begin() as conn:
            command.downgrade(schema_module.alembic_config(conn), "base")
        schema_module._checked.clear()
        result = stockq(env, "queue", "status")
        assert result.exit_code == 1 and "run `stockq migrate`" in result.stderr
        assert "Database migrated" in stockq(env, "migrate").stdout
        assert stockq(env, "queue", "status").exit_code == 0
    else:
        fresh = {**env, "STOCKQ_DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.db'}"}
        assert stockq(fresh, "queue", "status").exit_code == 0  # SQLite is migrated on first use


def test_unreachable_database_is_one_line(env: dict[str, str]) -> None:
    bad = {**env, "STOCKQ_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/nothing"}
    result = stockq(bad, "queue", "status")
    assert result.exit_code == 1
    assert "The database is unavailable" in result.stderr and "Traceback" not in result.output
