"""deploy/: every crontab line parses and its command runs against a test database; the unit files agree."""

from __future__ import annotations

import configparser
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
FIELD = re.compile(r"^(\*|\d+)(-\d+)?(/\d+)?(,(\d+)(-\d+)?)*$")


def cron_entries() -> list[tuple[list[str], str]]:
    entries = []
    for line in (DEPLOY / "crontab").read_text().splitlines():
        if not line.strip() or line.startswith("#") or re.match(r"^[A-Z_]+=", line):
            continue
        parts = line.split(None, 5)
        entries.append((parts[:5], parts[5]))
    return entries


def test_crontab_has_the_manuals_entries_with_valid_fields() -> None:
    entries = cron_entries()
    commands = [command for _, command in entries]
    assert any("integrations run-imports" in c for c in commands)
    assert any("integrations sync-inventory" in c for c in commands)
    assert any("queue restart" in c for c in commands)
    assert any("recalculate-stocks --dry-run" in c for c in commands)
    for fields, command in entries:
        assert len(fields) == 5 and all(FIELD.match(f) for f in fields), fields
        assert command.startswith("cd /opt/stockq && ") and command.endswith(">> logs/cron.log 2>&1")
    schedules = {c.split("bin/stockq ", 1)[1].split(" >>")[0]: f for f, c in entries}
    assert schedules["integrations run-imports"] == ["*/5", "*", "*", "*", "*"]
    assert schedules["integrations sync-inventory"] == ["0", "*", "*", "*", "*"]
    assert schedules["queue restart"] == ["0", "3", "*", "*", "*"]


@pytest.mark.parametrize("entry", cron_entries(), ids=lambda e: e[1].split("bin/stockq ", 1)[1].split(" >>")[0])
def test_each_cron_command_runs_against_a_test_database(
    entry: tuple[list[str], str], db_url: str, tmp_path: Path
) -> None:
    install = tmp_path / "install"
    (install / ".venv" / "bin").mkdir(parents=True)
    (install / "logs").mkdir()
    shim = install / ".venv" / "bin" / "stockq"
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} -m stockq "$@"\n')
    shim.chmod(0o755)
    (install / "stockq.env").write_text(f"STOCKQ_DATABASE_URL={db_url}\n")
    command = entry[1].replace("/opt/stockq", str(install))
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOCKQ_")}
    result = subprocess.run(["bash", "-c", command], env=env, capture_output=True, text=True, timeout=120)
    log = (install / "logs" / "cron.log").read_text()
    assert result.returncode == 0, log
    assert "Traceback" not in log


def test_supervisor_programs_cover_the_three_queues_with_long_enough_stop_waits() -> None:
    config = configparser.ConfigParser()
    config.read(DEPLOY / "supervisor" / "stockq.conf")
    programs = {s.split(":", 1)[1]: config[s] for s in config.sections() if s.startswith("program:")}
    assert set(programs) == {"stockq-import", "stockq-integrations", "stockq-default"}
    for name, program in programs.items():
        queue = name.removeprefix("stockq-")
        command = program["command"]
        assert f"queue work --queue={queue}" in command
        timeout = int(re.search(r"--timeout=(\d+)", command).group(1))  # type: ignore[union-attr]
        assert int(program["stopwaitsecs"]) > timeout
        assert program["autorestart"] == "true" and program["stopsignal"] == "TERM"
    timeouts = {n: re.search(r"--timeout=(\d+)", p["command"]).group(1) for n, p in programs.items()}  # type: ignore[union-attr]
    assert timeouts == {"stockq-import": "600", "stockq-integrations": "300", "stockq-default": "60"}


def test_systemd_worker_unit_and_timers() -> None:
    unit = (DEPLOY / "systemd" / "stockq-worker@.service").read_text()
    assert "queue work --queue=%i" in unit and "KillSignal=SIGTERM" in unit
    stop = int(re.search(r"TimeoutStopSec=(\d+)", unit).group(1))  # type: ignore[union-attr]
    assert stop > 600
    for timer in ("run-imports", "sync-inventory", "queue-restart", "stock-drift"):
        assert (DEPLOY / "systemd" / f"stockq-{timer}.timer").exists()
        service = (DEPLOY / "systemd" / f"stockq-{timer}.service").read_text()
        assert "ExecStart=/opt/stockq/.venv/bin/stockq " in service
