"""A 2 GB feed, generated and streamed by a loopback HTTP server, through `stockq imports run` in a real process.

Over the size cap (the default 1 GiB, or a lower one set on the profile) the run must stop reading at the cap,
fail with one clear line and exit 1, apply nothing and record the failure; with the cap raised above the feed, the
whole feed must be parsed and applied in bounded memory. The CLI runs as a child process, and its peak RSS is the
kernel's high-water mark of that process after its exec (VmHWM in /proc/<pid>/status, read every 10 ms until it
exits). Not ``ru_maxrss``: that also counts the forked copy of the test process before the exec, so it grows with
whatever the test session has allocated.

Sizes: the cap-rejection cases always stream the full 2 GB feed (they stop at the cap, in seconds). Parsing a whole
feed goes at tens of MB/s, so the full-parse cases use ``STOCKQ_TEST_HUGE_PARSE_BYTES`` (default 96 MB; set
2147483648 for the whole 2 GB, a few minutes).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from stockq import db
from stockq.imports import profiles
from stockq.imports.fetch import DEFAULT_MAX_BYTES
from stockq.warehouse import documents, products, warehouses
from tests.reliability.generated_feed import DISTINCT_SKUS, feed_server, feed_size, records_in

TWO_GB = 2 * 1024**3
PARSE_BYTES = int(os.environ.get("STOCKQ_TEST_HUGE_PARSE_BYTES", str(96 * 1024**2)))
RSS_LIMIT_MB = 200
XML_RECORDS = ["--record", "o", "--map", "sku=@id", "--map", "name=name", "--map", "quantity=stock"]


@dataclass(frozen=True)
class ChildRun:
    exit_code: int
    stdout: str
    stderr: str
    peak_rss_mb: float
    seconds: float


def run_cli(env: dict[str, str], cwd: Path, *args: str) -> ChildRun:
    """Run ``python -m stockq ARGS``, following its peak RSS until it exits."""
    out_path, err_path = cwd / "cli.out", cwd / "cli.err"
    started = time.monotonic()
    peak_kb = 0
    with out_path.open("w") as out, err_path.open("w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "stockq", *args], env=env, cwd=cwd, stdout=out, stderr=err)
        while True:
            peak_kb = max(peak_kb, _high_water_kb(proc.pid))
            pid, status = os.waitpid(proc.pid, os.WNOHANG)  # not reaped until it has exited: /proc stays readable
            if pid:
                break
            time.sleep(0.01)
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here; tell Popen so it does not wait again
    return ChildRun(
        exit_code=proc.returncode,
        stdout=out_path.read_text(),
        stderr=err_path.read_text(),
        peak_rss_mb=peak_kb / 1024,
        seconds=time.monotonic() - started,
    )


def _high_water_kb(pid: int) -> int:
    """VmHWM of a live process (0 once it is a zombie). Popen returns after the exec, so this is the new image."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def prepare_shop(url: str, root: Path) -> tuple[sa.Engine, dict[str, str]]:
    """Warehouse MAG with the feed's products at known stock (5 each), and the CLI's environment."""
    engine = db.get_engine(url)
    skus = [f"HUGE{i:04d}" for i in range(DISTINCT_SKUS)]
    with engine.begin() as conn:
        warehouses.add_warehouse(conn, "MAG", name="Magazyn")
        products.upsert_products(conn, [{"sku": sku, "name": "before"} for sku in skus])
    with engine.begin() as conn:
        documents.create_and_post(
            conn, type="PZ", warehouse_code="MAG", items=[(sku, Decimal(5), None) for sku in skus]
        )
    env = {
        **os.environ,
        "STOCKQ_DATABASE_URL": url,
        "STOCKQ_IMPORT_ROOT": str(root),
        "TMPDIR": str(root),  # the download's temp file, so that the test can see it is gone afterwards
    }
    return engine, env


@pytest.fixture
def shop(db_url: str, tmp_path: Path) -> tuple[sa.Engine, dict[str, str]]:
    return prepare_shop(db_url, tmp_path)


@pytest.fixture
def sqlite_shop(sqlite_url: str, tmp_path: Path) -> tuple[sa.Engine, dict[str, str]]:
    """The cap is checked while downloading, before the database is touched: one database suffices."""
    return prepare_shop(sqlite_url, tmp_path)


def add_profile(engine: sa.Engine, root: Path, name: str, url: str, kind: str, **options: object) -> None:
    mapping = {"sku": "@id", "name": "name", "quantity": "stock", "price": "price"} if kind == "xml" else {}
    with engine.begin() as conn:
        profiles.add_profile(
            conn,
            name,
            source=url,
            format=kind,
            import_root=root,
            options={"records": ["o"]} | options if kind == "xml" else {"delimiter": ";", **options},
            mapping=mapping,
            stock_warehouse="MAG",
        )


def snapshot(engine: sa.Engine) -> tuple[object, ...]:
    with engine.begin() as conn:
        return (
            conn.execute(sa.text("SELECT sku, name, ean, unit FROM products ORDER BY sku")).all(),
            conn.execute(
                sa.text("SELECT product_id, warehouse_id, quantity FROM warehouse_stock_totals ORDER BY 1, 2")
            ).all(),
            conn.execute(sa.text("SELECT count(*) FROM warehouse_documents")).scalar_one(),
            conn.execute(sa.text("SELECT count(*) FROM import_prices")).scalar_one(),
        )


def last_run(engine: sa.Engine) -> tuple[str, str | None, int, str | None]:
    """(status, message, records_read, stock_document) of the latest import run."""
    with engine.begin() as conn:
        row = conn.execute(
            sa.text("SELECT status, message, records_read, stock_document FROM import_runs ORDER BY id DESC LIMIT 1")
        ).one()
    return str(row[0]), row[1], int(row[2]), row[3]


def one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr[-2000:]
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr[-2000:]
    return lines[0]


def leftover_downloads(root: Path) -> list[Path]:
    return list(root.glob("stockq-import-*"))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kind", "mode", "cap", "expected"),
    [
        # Content-Length says 2 GB: refused before a byte of the body is read.
        ("csv", "length", None, "is {size} bytes, more than the limit of {cap}"),
        # Chunked, size unknown until the end: refused once the cap is passed.
        ("csv", "chunked", None, "is larger than the limit of {cap} bytes"),
        ("xml", "chunked", 256 * 1024**2, "is larger than the limit of {cap} bytes"),
        # A gzip bomb: ~28 MB on the wire that inflate to 2 GB; the cap counts the inflated bytes.
        ("xml", "gzip", None, "is larger than the limit of {cap} bytes"),
    ],
)
def test_a_2_gb_feed_over_the_cap_is_refused_early_in_bounded_memory(
    sqlite_shop: tuple[sa.Engine, dict[str, str]], tmp_path: Path, kind: str, mode: str, cap: int | None, expected: str
) -> None:
    engine, env = sqlite_shop
    limit = cap or DEFAULT_MAX_BYTES
    before = snapshot(engine)
    with feed_server() as server:
        add_profile(
            engine, tmp_path, "huge", server.url(kind, TWO_GB, mode), kind, **({"max_bytes": cap} if cap else {})
        )
        run = run_cli(env, tmp_path, "imports", "run", "huge", "--no-progress")
        assert server.done.wait(30)
    error = one_error_line(run.stderr)
    print(
        f"\n{kind} {mode} {feed_size(kind, TWO_GB):,} B, cap {limit:,}: exit {run.exit_code}, {run.seconds:.1f} s, "
        f"peak RSS {run.peak_rss_mb:.0f} MB, server wrote {server.sent[0]:,} B; {error}"
    )
    assert run.exit_code == 1
    assert expected.format(size=feed_size(kind, TWO_GB), cap=limit) in error
    assert run.peak_rss_mb < RSS_LIMIT_MB
    if mode == "length":
        assert server.sent[0] < 64 * 1024**2  # at most what the socket buffers took before the client hung up
    elif mode == "chunked":
        assert limit <= server.sent[0] < limit + 64 * 1024**2  # read up to the cap, and stopped there
    else:
        assert server.sent[0] < 64 * 1024**2  # compressed bytes: the cap was reached after ~1/77 of the wire
    assert snapshot(engine) == before  # nothing applied
    status, message, records_read, stock_document = last_run(engine)
    assert (status, records_read, stock_document) == ("failed", 0, None)
    assert expected.format(size=feed_size(kind, TWO_GB), cap=limit) in (message or "")
    assert leftover_downloads(tmp_path) == []


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "mode"), [("csv", "chunked"), ("xml", "gzip")])
def test_a_huge_feed_under_a_raised_cap_is_parsed_whole_in_bounded_memory(
    shop: tuple[sa.Engine, dict[str, str]], tmp_path: Path, kind: str, mode: str
) -> None:
    engine, env = shop
    with feed_server() as server:
        add_profile(engine, tmp_path, "huge", server.url(kind, PARSE_BYTES, mode), kind, max_bytes=3 * 1024**3)
        run = run_cli(env, tmp_path, "imports", "run", "huge", "--no-progress")
    size = feed_size(kind, PARSE_BYTES)
    print(
        f"\n{kind} {mode} {size:,} B whole, cap 3 GiB: exit {run.exit_code}, {run.seconds:.1f} s "
        f"({size / run.seconds / 1e6:.0f} MB/s), peak RSS {run.peak_rss_mb:.0f} MB; {run.stdout.strip()}"
    )
    assert run.exit_code == 0, run.stderr[-2000:]
    assert "Traceback" not in run.stderr
    assert run.peak_rss_mb < RSS_LIMIT_MB
    status, message, records_read, stock_document = last_run(engine)
    assert (status, message, records_read) == ("succeeded", None, records_in(kind, PARSE_BYTES))
    assert stock_document is not None
    with engine.begin() as conn:
        stock: dict[str, object] = dict(
            conn.execute(
                sa.text("SELECT p.sku, t.quantity FROM warehouse_stock_totals t JOIN products p ON p.id = t.product_id")
            ).all()
        )
    # The counted quantities replaced the 5 of each: record i says i % 7 + 1 (the block repeats, the last wins).
    assert {sku: Decimal(str(q)) for sku, q in stock.items()} == {
        f"HUGE{i:04d}": Decimal(i % 7 + 1) for i in range(DISTINCT_SKUS)
    }
    assert leftover_downloads(tmp_path) == []
