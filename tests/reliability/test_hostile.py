"""Hostile and broken input for the queue: corrupt payload rows in front of real workers, and CLI arguments out
of range. Every case ends in a clear one-line error (or a failed_jobs row that says what is wrong), a non-zero exit
where a command is involved, no traceback, and nothing partly applied."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stockq import db
from stockq.cli import app
from stockq.queue.repository import JobRepository, NewJob
from tests.reliability import jobs as rjobs
from tests.reliability.conftest import Spawner, file_runs
from tests.support.testjobs import Explode

U = "00000000-0000-4000-8000-0000000000{:02d}"
# (uuid, raw payload, what failed_jobs.exception must say)
BROKEN_PAYLOADS = [
    (U.format(1), "{not json", "InvalidPayload: The payload is not valid JSON"),
    (U.format(2), "", "InvalidPayload: The payload is not valid JSON"),
    (U.format(3), "[1, 2, 3]", "InvalidPayload: The payload is not a JSON object"),
    (U.format(4), json.dumps({"uuid": U.format(4), "data": {}}), "InvalidPayload: The payload names no job"),
    (U.format(5), json.dumps({"uuid": U.format(5), "job": "os.system", "data": {"command": "rm -rf /"}}),
     "UnknownJob: No job is registered under the name 'os.system'"),
    (U.format(6), json.dumps({"uuid": U.format(6), "job": "tests.Noop", "data": [1]}),
     "InvalidPayload: The payload's data is not a JSON object"),
    (U.format(7), json.dumps({"uuid": U.format(7), "job": "tests.Noop", "data": {"queue": 1}}),
     "InvalidPayload: Cannot build tests.Noop from its payload"),
    (U.format(8), json.dumps({"uuid": U.format(8), "job": "tests.Noop", "data": {}, "maxTries": "many"}),
     "InvalidPayload: The payload has an invalid field"),
    (U.format(9), json.dumps({"uuid": U.format(9), "job": "tests.Noop", "data": {}, "backoff": [-5]}),
     "InvalidPayload: The payload has an invalid field"),
    (U.format(10), "\x01\x02binary\xff", "InvalidPayload: The payload is not valid JSON"),
]  # fmt: skip


def _cli(db_url: str, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env={"STOCKQ_DATABASE_URL": db_url, "STOCKQ_JOBS": ""})
    return result.exit_code, result.stdout, result.stderr


def _one_line_error(stderr: str) -> str:
    """The single error line of a failed command (Typer's usage errors also print a usage hint above it)."""
    assert "Traceback" not in stderr
    lines = [line.strip() for line in stderr.splitlines() if "ERROR" in line or line.startswith("Error:")]
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.mark.slow
def test_broken_payload_rows_fail_clearly_and_the_real_worker_goes_on(
    db_url: str, spawn: Spawner, tmp_path: Path
) -> None:
    repo = JobRepository(db.get_engine(db_url))
    runs_file = tmp_path / "runs.txt"
    rjobs.FileRecord(path=str(runs_file), seconds=0).dispatch(database_url=db_url)
    for uuid, raw, _ in BROKEN_PAYLOADS:
        repo.push(NewJob(uuid=uuid, queue="default", payload=raw))
    rjobs.FileRecord(path=str(runs_file), seconds=0).dispatch(database_url=db_url)
    worker = spawn(db_url, "--stop-when-empty", "-v", capture=True)
    out, err = worker.communicate(timeout=60)
    assert worker.returncode == 0, err
    assert "Traceback" not in out + err
    assert out.count("FAIL") == len(BROKEN_PAYLOADS) and out.count("DONE") == 2
    assert [r.finished is not None for r in file_runs(runs_file)] == [True, True]  # the jobs around them ran
    failures = {f.uuid: f.exception for f in repo.failed()}
    assert sorted(failures) == sorted(uuid for uuid, _, _ in BROKEN_PAYLOADS)
    for uuid, _, message in BROKEN_PAYLOADS:
        assert message in failures[uuid], (uuid, failures[uuid])
    assert repo.counts() == []

    # The failed list shows them without choking on the payloads.
    code, stdout, _ = _cli(db_url, "queue", "failed", "--json")
    assert code == 0
    names = {row["id"]: row["class"] for row in json.loads(stdout)}
    assert names[U.format(1)] == "(invalid payload)" and names[U.format(5)] == "os.system"
    code, stdout, _ = _cli(db_url, "queue", "failed", U.format(10))
    assert code == 0 and "not valid JSON" in stdout


CLI_CASES = [
    (["queue", "work", "--timeout=-1"], 2, "--timeout"),
    (["queue", "work", "--memory=0"], 2, "--memory"),
    (["queue", "work", "--sleep=-1"], 2, "--sleep"),
    (["queue", "work", "--max-jobs=-1"], 2, "--max-jobs"),
    (["queue", "work", "--tries=-1"], 2, "--tries"),
    (["queue", "work", "--backoff=-5"], 2, "Invalid --backoff [-5]"),
    (["queue", "work", "--backoff=soon"], 2, "Invalid --backoff [soon]"),
    (["queue", "work", "--queue= , "], 2, "--queue names no queue"),
    (["queue", "work", "redis"], 2, "Unknown queue connection [redis]"),
    (["queue", "retry", "--range", "5-1"], 2, "Invalid range [5-1]: 5 is greater than 1"),
    (["queue", "retry", "--range", "1-x"], 2, "Invalid range [1-x]"),
    (["queue", "retry", "--range", "-3-2"], 2, "Invalid range [-3-2]"),
    (["queue", "retry", U.format(99)], 1, f"Unable to find failed job with ID [{U.format(99)}]"),
    (["queue", "forget", U.format(99)], 1, "No failed job matches the given ID"),
    (["queue", "failed", U.format(99)], 1, f"No failed job matches the given ID [{U.format(99)}]"),
    (["queue", "failed", "'; DROP TABLE jobs; --"], 1, "No failed job matches the given ID"),
    (["queue", "flush", "--hours=-1"], 2, "--hours"),
    (["queue", "monitor", "default", "--max=-1"], 2, "--max"),
    (["queue", "dispatch", "tests.Nope"], 2, "No job is registered under the name 'tests.Nope'"),
    (["queue", "dispatch", "tests.Noop", "--data", "[1]"], 2, "--data must be a JSON object"),
    (["queue", "dispatch", "tests.Noop", "--data", "{bad"], 2, "--data is not valid JSON"),
    (["queue", "dispatch", "tests.Noop", "--delay=-3"], 2, "--delay"),
]


@pytest.mark.parametrize(("args", "exit_code", "message"), CLI_CASES, ids=[" ".join(c[0]) for c in CLI_CASES])
def test_cli_arguments_out_of_range_are_one_line_errors(
    sqlite_url: str, args: list[str], exit_code: int, message: str
) -> None:
    code, stdout, stderr = _cli(sqlite_url, *args)
    assert code == exit_code, stdout + stderr
    assert message in _one_line_error(stderr)
    assert "Traceback" not in stdout
    repo = JobRepository(db.get_engine(sqlite_url))
    assert repo.counts() == [] and repo.workers() == []  # nothing queued, no worker started


def test_bad_range_retries_nothing_even_beside_a_good_one(db_url: str) -> None:
    repo = JobRepository(db.get_engine(db_url))
    uuid = Explode().dispatch(database_url=db_url)
    (job,) = repo.reserve("default", "w")
    repo.fail(job.id, "w", "RuntimeError: boom")
    (failed,) = repo.failed()
    code, _, stderr = _cli(db_url, "queue", "retry", "--range", f"{failed.id}-{failed.id}", "--range", "9-2")
    assert code == 2 and "Invalid range [9-2]" in _one_line_error(stderr)
    assert [f.uuid for f in repo.failed()] == [uuid] and repo.counts() == []  # not partly applied
