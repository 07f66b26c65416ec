"""An API key never reaches failed_jobs.exception, worker output (-v, --json) or `queue failed` output.

The jobs get the key from the worker's environment (STOCKQ_TEST_SECRET), never from their payload, as real jobs
carry an integration id and load its key. One registers the key with stockq.redact.register_secret and echoes it
bare, one puts it in a ws_key= query string without registering it, one hides it in the exception's cause.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stockq import db
from stockq.cli import app
from stockq.queue.repository import JobRepository
from stockq.redact import MASK
from tests.reliability import jobs as rjobs
from tests.reliability.conftest import Spawner

pytestmark = pytest.mark.slow

SECRET = "Z9QK4TWS7XJ2MBN5VLC8HRD3FPY6GQ1A"  # the shape of a PrestaShop webservice key
LEAKY = (rjobs.LeakRegistered, rjobs.LeakInUrl, rjobs.LeakChained)


def _cli(db_url: str, *args: str) -> str:
    result = CliRunner().invoke(app, list(args), env={"STOCKQ_DATABASE_URL": db_url, "STOCKQ_JOBS": ""})
    assert result.exit_code == 0, result.output
    return result.stdout + result.stderr


@pytest.mark.parametrize("mode", ["-v", "--json"])
def test_the_key_never_reaches_failures_worker_output_or_queue_failed(
    db_url: str, spawn: Spawner, tmp_path: Path, mode: str
) -> None:
    uuids = [job().dispatch(database_url=db_url) for job in LEAKY]
    worker = spawn(db_url, "--stop-when-empty", "--tries=1", mode, capture=True, STOCKQ_TEST_SECRET=SECRET)
    out, err = worker.communicate(timeout=60)
    assert worker.returncode == 0, err
    assert SECRET not in out + err
    if mode == "--json":
        failures = [json.loads(line) for line in out.splitlines() if '"failed"' in line]
        assert len(failures) == 3 and all(MASK in f["message"] or f["message"] == "sync failed" for f in failures)
    else:
        assert out.count("FAIL") == 3
        assert "shop rejected key ********" in err  # -v prints the (masked) message: it was really there

    repo = JobRepository(db.get_engine(db_url))
    stored = {f.uuid: f.exception for f in repo.failed()}
    assert sorted(stored) == sorted(uuids)
    for text in stored.values():
        assert SECRET not in text and MASK in text  # masked, not merely absent
    assert "ws_key=********" in stored[uuids[1]]
    assert "Authorization failed for ********" in stored[uuids[2]]  # the cause, printed in the traceback

    listing = _cli(db_url, "queue", "failed") + _cli(db_url, "queue", "failed", "--json")
    shown = [_cli(db_url, "queue", "failed", uuid) + _cli(db_url, "queue", "failed", uuid, "--json") for uuid in uuids]
    assert SECRET not in listing + "".join(shown)
    assert all(MASK in text for text in shown)
