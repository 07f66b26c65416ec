"""Every benchmark in one run: stockq's queue against procrastinate, pgqueuer and huey, and the other benchmarks
(bench_warehouse.py, bench_imports.py, bench_sync.py, when present) against their floors.

    python bench/run_all.py [--quick] [--skip-peers] [--only queue,peers,warehouse,imports,sync] [--output FILE]

Prints one markdown report (machine, versions, sizes, each figure the median of 3, the ratio to its peer or floor
with the issue's target and whether it is met). A full run of everything (no --quick, --only or --skip-peers)
also writes it to bench/RESULTS.md; other runs write a file only when --output is given.

PostgreSQL: --pg-url (default $STOCKQ_BENCH_PG_URL or postgres@127.0.0.1:5432, trust auth); every system gets its
own fresh database, dropped afterwards. Install the peers with ``pip install -e '.[bench]'``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import bench_queue  # noqa: E402
import peers  # noqa: E402
from targets import Target, ratio  # noqa: E402
from targets import read as read_targets  # noqa: E402
from targets import table as targets_table  # noqa: E402

GROUPS = ("queue", "peers", "warehouse", "imports", "sync")
OTHER_BENCHMARKS = {"warehouse": "bench_warehouse.py", "imports": "bench_imports.py", "sync": "bench_sync.py"}
OTHER_TARGETS = {
    "warehouse": "recalculate-stocks over 1,000,000 posted items ≤ 1.5x one bare SUM … GROUP BY over them",
    "imports": "CSV import of 1,000,000 rows ≤ 3x COPY of the same rows into a bare table, peak RSS < 200 MB; "
    "XML feed of 1,000,000 offers ≤ 2x the CSV import of the same data, flat memory",
    "sync": "sync-inventory of 10,000 links, 1% changed, shop latency 50 ms ≤ 1.3x the floor "
    "(changed x latency / concurrency)",
}
OTHER_TIMEOUT_SECONDS = 1800
STOCKQ_PACKAGES = ("sqlalchemy", "psycopg", "alembic", "typer", "lxml", "httpx")
PEER_PACKAGES = ("procrastinate", "pgqueuer", "asyncpg", "psycopg-pool", "huey")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---- machine -------------------------------------------------------------------------------------------------


def _version(name: str) -> str:
    try:
        return package_version(name)
    except PackageNotFoundError:
        return "not installed"


def _ram_gb() -> str:
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    return f"{int(line.split()[1]) / 1024 / 1024:.1f} GB"
    except OSError:
        pass
    return "unknown"


def _postgresql(pg_url: str) -> str:
    import psycopg

    try:
        with psycopg.connect(peers.libpq_url(pg_url), autocommit=True) as conn:
            server = conn.execute("SHOW server_version").fetchone()
            sync = conn.execute("SHOW synchronous_commit").fetchone()
            fsync = conn.execute("SHOW fsync").fetchone()
    except psycopg.Error as exc:
        return f"unreachable ({exc})"
    return f"{server[0] if server else '?'} (synchronous_commit={sync[0] if sync else '?'}, fsync={fsync[0] if fsync else '?'})"


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=BENCH, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "src", "migrations"], cwd=BENCH,
                               capture_output=True, text=True).stdout.strip()  # fmt: skip
        return out.stdout.strip() + (" (uncommitted changes in src/migrations)" if dirty else "")
    except OSError:
        return "unknown"


def machine_section(pg_url: str) -> str:
    load = os.getloadavg()
    return "\n".join(
        [
            "## Machine",
            "",
            f"- {platform.node()}: {os.cpu_count()} cores, {_ram_gb()} RAM, load average at start "
            f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (shared machine: figures are noisy)",
            f"- PostgreSQL {_postgresql(pg_url)}, on the same machine",
            f"- Python {platform.python_version()} ({platform.platform()})",
            f"- stockq {_version('stockq')} at commit {_git_commit()}; "
            + ", ".join(f"{p} {_version(p)}" for p in STOCKQ_PACKAGES),
            "- peers: " + ", ".join(f"{p} {_version(p)}" for p in PEER_PACKAGES),
        ]
    )


# ---- ratios and targets ---------------------------------------------------------------------------------------


def queue_targets(q: bench_queue.QueueFigures, peer_rows: list[peers.PeerFigures]) -> list[Target]:
    pg_peer_drains = {
        f"{row.system}, {setting}": rate
        for row in peer_rows
        if not row.system.startswith("huey")
        for setting, rate in row.drain.items()
    }
    best_drain_name, best_drain = max(pg_peer_drains.items(), key=lambda kv: kv[1], default=("-", None))
    pgq = [row for row in peer_rows if row.system.startswith("pgqueuer")]
    best_bulk = max((r.bulk for r in pgq if r.bulk), default=None)
    best_single = max((r.single for r in pgq if r.single), default=None)
    huey = next((row for row in peer_rows if row.system.startswith("huey")), None)
    huey_drain = next(iter(huey.drain.values())) if huey else None
    d1, d4 = q.pg_drain[1], q.pg_drain[4]
    once = all(q.pg_exactly_once.values())
    curve = " / ".join(f"{q.pg_drain[w]:,.0f}" for w in bench_queue.WORKER_COUNTS)
    crash = q.crash
    return [
        Target(
            "drain, PostgreSQL, 1 worker", f"{d1:,.0f}/s", f"best peer: {best_drain_name} {best_drain or 0:,.0f}/s",
            ratio(d1, best_drain), "> 1x every peer setting", None if best_drain is None else d1 > best_drain,
        ),
        Target(
            "drain, PostgreSQL, 1/2/4/8 workers", f"{curve}/s", "1 worker", ratio(d4, d1),
            "4 workers ≥ 1x, every job exactly once", d4 >= d1 and once,
        ),
        Target(
            "drain, SQLite, 1 worker", f"{q.sqlite_drain:,.0f}/s",
            f"huey SQLite {huey_drain:,.0f}/s" if huey_drain else "huey (not run)", ratio(q.sqlite_drain, huey_drain),
            "≥ 1.5x, no job lost on a crash",
            None if huey_drain is None else q.sqlite_drain >= 1.5 * huey_drain and crash.no_job_lost,
        ),
        Target(
            "bulk dispatch, PostgreSQL", f"{q.pg_bulk:,.0f}/s", f"pgqueuer best {best_bulk or 0:,.0f}/s",
            ratio(q.pg_bulk, best_bulk), "≥ 1.5x", None if best_bulk is None else q.pg_bulk >= 1.5 * best_bulk,
        ),
        Target(
            "single dispatch, PostgreSQL", f"{q.pg_single:,.0f}/s", f"pgqueuer best {best_single or 0:,.0f}/s",
            ratio(q.pg_single, best_single), "≥ 1.5x",
            None if best_single is None else q.pg_single >= 1.5 * best_single,
        ),
        Target(
            "single dispatch, PostgreSQL, against a plain insert", f"{q.pg_single:,.0f}/s",
            f"one prepared INSERT per commit with psycopg's execute {q.pg_single_reference:,.0f}/s",
            ratio(q.pg_single, q.pg_single_reference), "(reference: what a durable commit costs here)", None,
        ),
        Target(
            "idle pick-up latency, PostgreSQL", f"p50 {q.latency_p50_ms:.1f} ms, p99 {q.latency_p99_ms:.1f} ms",
            "absolute", "-", "p50 < 5 ms, p99 < 50 ms", q.latency_p50_ms < 5 and q.latency_p99_ms < 50,
        ),
    ]  # fmt: skip


def side_by_side(q: bench_queue.QueueFigures | None, peer_rows: list[peers.PeerFigures]) -> str:
    """The issue's table, measured here: peers and stockq, one row per system/driver."""
    lines = ["| system and setting | single dispatch/s | bulk dispatch/s | drain/s (1 worker process) |",
             "|---|---:|---:|---|"]  # fmt: skip
    for row in peer_rows:
        settings = " / ".join(row.drain)
        drains = " / ".join(f"{rate:,.0f}" for rate in row.drain.values())
        lines.append(f"| {row.system}, {settings} | {row.single or 0:,.0f} | {row.bulk or 0:,.0f} | {drains} |")
    if q is not None:
        lines.append(
            f"| **stockq, PostgreSQL**, defaults | {q.pg_single:,.0f} | {q.pg_bulk:,.0f} | {q.pg_drain[1]:,.0f} |"
        )
        lines.append(
            f"| **stockq, SQLite**, defaults | {q.sqlite_single:,.0f} | {q.sqlite_bulk:,.0f} | {q.sqlite_drain:,.0f} |"
        )
    return "\n".join(lines)


# ---- running -----------------------------------------------------------------------------------------------------


def peer_measurements(pg_url: str, sizes: peers.Sizes, only: set[str], failures: list[str]) -> list[peers.Measurement]:
    """The peers' measurements, each guarded: a peer that breaks is reported, and the rest of the run goes on."""
    from peers import huey_peer, pgqueuer_peer, procrastinate_peer

    listed: list[tuple[str, Callable[[], list[peers.Measurement]]]] = [
        ("procrastinate", lambda: procrastinate_peer.measurements(pg_url, sizes)),
        ("pgqueuer", lambda: pgqueuer_peer.measurements(pg_url, sizes)),
        ("huey", lambda: huey_peer.measurements(sizes)),
    ]
    found: list[peers.Measurement] = []
    for name, measurements in listed:
        if only and "peers" not in only and name not in only:
            continue
        found += [peers.Measurement(m.system, m.figure, _guarded(m, failures)) for m in measurements()]
    return found


def _guarded(measurement: peers.Measurement, failures: list[str]) -> Callable[[], float]:
    def run() -> float:
        try:
            return measurement.run()
        except (Exception, SystemExit) as exc:  # one broken peer must not lose the rest of the run
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            log(f"{measurement.system}: {measurement.figure} FAILED: {first}")
            failures.append(f"{measurement.system}, {measurement.figure}: {first}")
            return math.nan

    return run


def run_other(name: str, quick: bool, pg_url: str) -> tuple[str, list[Target]]:
    """Run bench/<name>'s script as a subprocess (--quick passed through); its markdown output and its targets."""
    script = BENCH / OTHER_BENCHMARKS[name]
    title = f"## {name.capitalize()} ({script.name})\n\nThe issue's target: {OTHER_TARGETS[name]}.\n\n"
    missing = [Target(OTHER_TARGETS[name], "-", "-", "-", "(see the section)", False)]
    if not script.exists():
        return title + f"{script.name} is not present in this checkout: not run.\n", missing
    log(f"{script.name}{' --quick' if quick else ''}")
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="stockq_bench_targets_") as tmp:
        targets_file = Path(tmp) / "targets.json"
        command = [sys.executable, str(script), "--pg-url", pg_url, "--targets-json", str(targets_file)]
        try:
            done = subprocess.run(
                [*command, *(["--quick"] if quick else [])], capture_output=True, text=True,
                timeout=OTHER_TIMEOUT_SECONDS,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            return title + f"{script.name} did not finish within {OTHER_TIMEOUT_SECONDS} s.\n", missing
        log(f"{script.name} exited {done.returncode} after {time.monotonic() - t0:.0f} s")
        if done.returncode != 0:
            tail = "\n".join(done.stderr.strip().splitlines()[-15:])
            return title + f"{script.name} exited {done.returncode}:\n\n```\n{tail}\n```\n", missing
        return title + done.stdout.strip() + "\n", read_targets(targets_file) or missing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument("--skip-peers", action="store_true", help="stockq and the floors only")
    parser.add_argument(
        "--only", action="append", default=[],
        help=f"run only these (comma-separated, repeatable): {', '.join(GROUPS)}, or one peer "
             "(procrastinate, pgqueuer, huey)",
    )  # fmt: skip
    parser.add_argument("--pg-url", default=os.environ.get("STOCKQ_BENCH_PG_URL", peers.DEFAULT_PG))
    parser.add_argument("--output", type=Path, help="also write the report here")
    args = parser.parse_args()
    only = {name.strip() for item in args.only for name in item.split(",") if name.strip()}
    unknown = only - set(GROUPS) - {"procrastinate", "pgqueuer", "huey"}
    if unknown:
        parser.error(f"unknown --only name(s): {', '.join(sorted(unknown))}")

    def wanted(group: str) -> bool:
        return not only or group in only

    started = time.monotonic()
    sizes = peers.Sizes.for_run(args.quick)
    qsizes = bench_queue.QueueSizes.for_run(args.quick)
    machine = machine_section(args.pg_url)

    peer_failures: list[str] = []
    peer_list: list[peers.Measurement] = []
    if not args.skip_peers and (wanted("peers") or only & {"procrastinate", "pgqueuer", "huey"}):
        peer_list = peer_measurements(args.pg_url, sizes, only, peer_failures)
    queue_figures: bench_queue.QueueFigures | None = None
    if wanted("queue"):
        queue_figures, samples = bench_queue.measure(args.pg_url, qsizes, log=log, also=peer_list)
    else:
        samples = peers.interleaved(peer_list, sizes.runs, log)
    peer_systems = list(dict.fromkeys(m.system for m in peer_list))
    peer_rows = [peers.figures_of(system, samples) for system in peer_systems]
    others = [run_other(name, args.quick, args.pg_url) for name in OTHER_BENCHMARKS if wanted(name)]
    all_targets = queue_targets(queue_figures, peer_rows) if queue_figures is not None else []
    all_targets += [target for _, targets in others for target in targets]

    sections = [
        f"# stockq benchmarks{' (--quick)' if args.quick else ''}",
        "",
        f"Run {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC by `python bench/run_all.py"
        + "".join(f" {a}" for a in sys.argv[1:])
        + f"`, {(time.monotonic() - started) / 60:.1f} min.",
        "",
        machine,
        "",
    ]
    if all_targets:
        unmet = [t.benchmark for t in all_targets if t.met is False]
        sections += [
            "## Every target of this run",
            "",
            targets_table(all_targets),
            "",
            ("Every target measured in this run is met." if not unmet else f"Not met: {'; '.join(unmet)}."),
            "",
        ]
    queue_intro = [
        "## Queue: stockq against its peers",
        "",
        f"Sizes: single dispatch {sizes.single:,} jobs, bulk dispatch {sizes.bulk:,} jobs, drain {sizes.drain:,} "
        f"no-op jobs; every figure is the median of {sizes.runs} runs, each in a fresh database. The runs are "
        "interleaved: in each of the rounds every system's single dispatch is measured back to back, then every "
        "bulk dispatch, then every drain, so that the machine's load changes fall on all systems alike.",
        "",
        "Drain, measured the same way for every system: one worker process of the system (started as a separate "
        "process, with the system's documented high-throughput setting) is running and idle after a warm-up job; "
        "the clock starts when a bulk dispatch has committed and stops when the system's queue table shows no job "
        "left to run (polled every 10 ms). stockq's no-op jobs also log each execution, which checks that every "
        "job ran exactly once. See bench/peers/__init__.py and bench/bench_queue.py.",
        "",
    ]
    if queue_figures is not None or peer_rows:
        sections += queue_intro
    if peer_rows or queue_figures is not None:
        sections += ["### Side by side", "", side_by_side(queue_figures, peer_rows), ""]
    if peer_failures:
        sections += ["Peers that failed in this run: " + "; ".join(peer_failures), ""]
    if queue_figures is not None:
        sections += ["### stockq", "", bench_queue.markdown(queue_figures, qsizes), ""]
    sections += [text for text, _ in others]
    report = "\n".join(sections).rstrip() + "\n"

    print(report)
    output = args.output
    if output is None and not (args.quick or only or args.skip_peers):
        output = BENCH / "RESULTS.md"
    if output is not None:
        output.write_text(report)
        log(f"wrote {output}")


if __name__ == "__main__":
    main()
