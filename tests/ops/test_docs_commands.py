"""Every example command in README.md and docs/commands.pl.md runs, in document order, against a database with
the demo's example data, so that the docs cannot drift from the CLI."""

from __future__ import annotations

import http.server
import os
import re
import shlex
import threading
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stockq.cli import app
from stockq.demo import catalogue
from stockq.demo.run import DEMO_KEY, run_demo, start_shop

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", ROOT / "docs" / "commands.pl.md"]
# Commands whose documented outcome is not 0, with the codes they may end with.
EXPECTED_EXIT = [
    (re.compile(r"recalculate-stocks"), {0, 3}),
    (re.compile(r"queue monitor"), {0, 3}),
    (re.compile(r"8d260588-57df-4f55-b2f2-c47f6055a8ef"), {1}),  # the manual's example uuid is not in this database
    (re.compile(r"queue retry (--queue|--range)"), {0, 1}),  # 1: nothing failed on that queue / in that range
]


@dataclass(frozen=True, slots=True)
class Result:
    returncode: int
    stdout: str
    output: str


def doc_commands(path: Path) -> list[str]:
    """The `stockq …` lines of the ```bash blocks (comments and other programs left out; `watch 'x'` → x)."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", path.read_text(), re.S):
        for line in block.splitlines():
            line = line.split("   #")[0].strip()
            watched = re.match(r"^watch '(.+)'$", line)
            if watched:
                line = watched.group(1)
            if line.startswith(".venv/bin/stockq "):
                line = line.removeprefix(".venv/bin/")
            if line.startswith("stockq ") and "&&" not in line:
                commands.append(line.rstrip(" &"))
    return commands


@pytest.fixture
def feed_server(tmp_path: Path) -> Iterator[str]:
    (tmp_path / "ceneo.xml").write_bytes(catalogue.supplier_feed_xml())

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(tmp_path), **kwargs)  # type: ignore[arg-type]

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/ceneo.xml"
    server.shutdown()
    server.server_close()


@pytest.mark.slow
def test_every_documented_command_runs(tmp_path: Path, feed_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    demo = run_demo(tmp_path / "demo", output=lambda text: None)
    shop = start_shop()
    monkeypatch.chdir(demo.workdir)
    runner = CliRunner()
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("STOCKQ_")}
    env.update({
        "STOCKQ_DATABASE_URL": f"sqlite:///{demo.workdir / 'stockq.db'}", "STOCKQ_IMPORT_ROOT": str(demo.workdir),
        "PRESTASHOP_KEY": DEMO_KEY, "COLUMNS": "120",
    })  # fmt: skip

    def stockq(command: str) -> Result:
        args = shlex.split(command.replace("$PRESTASHOP_KEY", DEMO_KEY))[1:]
        if args[:2] == ["queue", "work"] and not {"--once", "--stop-when-empty"} & set(args):
            args.append("--stop-when-empty")
        result = runner.invoke(app, args, env=env)
        output = result.stdout + result.stderr
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            output += "".join(traceback.format_exception(result.exception))
        return Result(result.exit_code, result.stdout, output)

    try:
        assert stockq(f"stockq integrations update 1 --url {shop.url}").returncode == 0
        seen = 0
        for path in DOCS:
            for command in doc_commands(path):
                command = command.replace("https://supplier.example/ceneo.xml", feed_server)
                command = command.replace("https://shop.example", shop.url)
                result = stockq(command)
                allowed = next((codes for pattern, codes in EXPECTED_EXIT if pattern.search(command)), {0})
                assert result.returncode in allowed, (
                    f"{path.name}: `{command}` exited {result.returncode}:\n{result.output}"
                )
                assert "Traceback" not in result.output, command
                seen += 1
        assert seen >= 60
    finally:
        shop.stop()
