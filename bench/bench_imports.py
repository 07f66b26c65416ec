"""Import benchmark: a CSV and a Ceneo XML feed of the same rows imported into PostgreSQL and SQLite, beside
PostgreSQL's COPY of the same CSV into a bare table (the floor).

    python bench/bench_imports.py [--quick] [--pg-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

Full size: 1,000,000 rows (--quick: 50,000), each also at a fifth of the size to show that peak memory does not
grow with the file. Files are generated in a temp dir: a Polish CSV (``;``, decimal commas, UTF-8 without BOM, so
the encoding check reads the whole file) and a Ceneo offers XML. Every import runs in a child process on a fresh
database (PostgreSQL: a new database ``stockq_bench_<hex>``, dropped afterwards; SQLite: a temp file), migrated
first; each feed is imported twice (the second run finds every product unchanged: the daily case); the profile
maps sku, ean, name and price (no stock warehouse: stock goes through an INW document, which is
the warehouse's benchmark). Wall time is the child's ``run_import`` call; peak RSS is the child's ``ru_maxrss``
(``os.wait4``), so it includes the interpreter and imports (about 60-70 MB).
The floor: ``COPY bare FROM STDIN (FORMAT csv, HEADER, DELIMITER ';')`` of the same CSV file's bytes into an
unindexed table of text columns, in a fresh database, timed the same way. A second reference, "schema floor": the
same COPY into a temp table followed by one plain ``INSERT … SELECT`` into ``products`` and one into
``import_prices`` (no validation, no comparison): what creating the rows costs with the schema's indexes alone;
the two INSERTs are also reported by themselves, the least any import of new rows must write.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
import targets

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
ROOT = Path(__file__).resolve().parents[1]


def write_csv(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write("sku;ean;nazwa;ilosc;cena_brutto\r\n")
        for i in range(rows):
            f.write(
                f'SKU-{i:07d};{5900000000000 + i};"Produkt testowy nr {i}, żółty";{i % 50};{i % 997},{i % 100:02d}\r\n'
            )


def write_xml(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8") as f:
        f.write('<?xml version="1.0" encoding="UTF-8"?>\n<offers version="1"><group name="other">\n')
        for i in range(rows):
            f.write(
                f'<o id="SKU-{i:07d}" url="https://sklep.example.pl/p/{i}" price="{i % 997}.{i % 100:02d}" avail="1" '
                f'stock="{i % 50}"><cat><![CDATA[Oświetlenie]]></cat><name><![CDATA[Produkt testowy nr {i}, żółty]]>'
                f'</name><attrs><a name="Producent">Lumax</a><a name="EAN">{5900000000000 + i}</a></attrs></o>\n'
            )
        f.write("</group></offers>\n")


@contextmanager
def pg_database(admin_url: str) -> Iterator[str]:
    from stockq import db

    name = f"stockq_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(db.normalize_url(admin_url), isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield sa.engine.make_url(db.normalize_url(admin_url)).set(database=name).render_as_string(False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@contextmanager
def sqlite_database() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="stockq_bench_") as directory:
        yield f"sqlite:///{Path(directory) / 'bench.db'}"


@dataclass
class Measured:
    seconds: float
    rows: int
    peak_rss_mb: float
    rerun: float | None = None
    writes: float | None = None  # schema floor: the two INSERT … SELECTs alone


def child_import(url: str, path: Path, fmt: str) -> dict[str, object]:
    """In the child: migrate, add a profile, run it; returns the timing and counts."""
    from stockq import db, schema
    from stockq.imports import profiles, runner

    engine = db.get_engine(url)
    schema.upgrade(engine)
    with engine.begin() as conn:
        if fmt == "csv":
            profiles.add_profile(
                conn,
                "bench",
                source=str(path),
                format="csv",
                import_root=path.parent,
                mapping={"sku": "sku", "ean": "ean", "name": "nazwa", "price": "cena_brutto"},
            )
        else:
            profiles.add_profile(
                conn,
                "bench",
                source=str(path),
                format="xml",
                preset="ceneo",
                import_root=path.parent,
                mapping={"quantity": ""},
            )
    started = time.perf_counter()
    result = runner.run_import(engine, "bench", import_root=path.parent)
    seconds = time.perf_counter() - started
    if result.status != "succeeded" or result.created != result.read:
        raise SystemExit(f"import failed: {result}")
    started = time.perf_counter()
    again = runner.run_import(engine, "bench", import_root=path.parent)
    rerun = time.perf_counter() - started
    if again.status != "succeeded" or again.unchanged != again.read:
        raise SystemExit(f"re-import failed: {again}")
    return {"seconds": seconds, "rows": result.created, "rerun": rerun}


def child_copy(url: str, path: Path) -> dict[str, object]:
    """In the child: COPY the CSV's bytes into a bare table of text columns."""
    import psycopg

    conninfo = sa.engine.make_url(url).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(conninfo) as conn:
        conn.execute("CREATE TABLE bare (sku text, ean text, name text, quantity text, price text)")
        started = time.perf_counter()
        with conn.cursor() as cursor, path.open("rb") as f:
            with cursor.copy("COPY bare FROM STDIN (FORMAT csv, HEADER true, DELIMITER ';')") as copy:
                while chunk := f.read(1 << 20):
                    copy.write(chunk)
            conn.commit()
        seconds = time.perf_counter() - started
        rows = conn.execute("SELECT count(*) FROM bare").fetchone()[0]  # type: ignore[index]
    return {"seconds": seconds, "rows": rows}


def child_schema_floor(url: str, path: Path) -> dict[str, object]:
    """In the child: migrate, then COPY the CSV into a temp table and INSERT it into products and import_prices."""
    import psycopg

    from stockq import db, schema

    engine = db.get_engine(url)
    schema.upgrade(engine)
    engine.dispose()
    conninfo = sa.engine.make_url(url).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(conninfo) as conn:
        started = time.perf_counter()
        conn.execute("CREATE TEMP TABLE bare (sku text, ean text, name text, quantity text, price text)")
        with conn.cursor() as cursor, path.open("rb") as f:
            with cursor.copy("COPY bare FROM STDIN (FORMAT csv, HEADER true, DELIMITER ';')") as copy:
                while chunk := f.read(1 << 20):
                    copy.write(chunk)
        copied = time.perf_counter()
        conn.execute(
            "INSERT INTO products (sku, ean, name, unit, active, created_at, updated_at) "
            "SELECT sku, ean, name, 'szt', true, now(), now() FROM bare"
        )
        conn.execute(
            "INSERT INTO import_prices (profile_id, sku, price, updated_at) "
            "SELECT 1, sku, replace(price, ',', '.')::numeric, now() FROM bare"
        )
        conn.commit()
        finished = time.perf_counter()
        rows = conn.execute("SELECT count(*) FROM products").fetchone()[0]  # type: ignore[index]
    return {"seconds": finished - started, "rows": rows, "writes": finished - copied}


def in_child(*args: str) -> Measured:
    """Run this script with ``--child …`` and measure the child's own peak RSS."""
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    process = subprocess.Popen([sys.executable, __file__, "--child", *args], stdout=subprocess.PIPE, env=env, text=True)
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"child {args} failed with {process.returncode}")
    data = json.loads(output.strip().splitlines()[-1])
    return Measured(
        seconds=float(data["seconds"]),
        rows=int(data["rows"]),
        peak_rss_mb=usage.ru_maxrss / 1024,
        rerun=float(data["rerun"]) if "rerun" in data else None,
        writes=float(data["writes"]) if "writes" in data else None,
    )


def median_of(runs: list[Measured]) -> Measured:
    """The median time and re-run time of ``runs``, with the highest peak RSS among them."""
    reruns = [m.rerun for m in runs if m.rerun is not None]
    writes = [m.writes for m in runs if m.writes is not None]
    return Measured(
        seconds=statistics.median(m.seconds for m in runs),
        rows=runs[0].rows,
        peak_rss_mb=max(m.peak_rss_mb for m in runs),
        rerun=statistics.median(reruns) if reruns else None,
        writes=statistics.median(writes) if writes else None,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50,000 rows instead of 1,000,000")
    parser.add_argument("--pg-url", default=os.environ.get("STOCKQ_TEST_PG_URL", DEFAULT_PG))
    parser.add_argument("--runs", type=int, default=3, help="rounds of the PostgreSQL measurements at full size")
    parser.add_argument("--targets-json", type=Path, help="also write the issue's targets here (for run_all.py)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, url, path = args.child[0], args.child[1], Path(args.child[2])
        if kind == "copy":
            data = child_copy(url, path)
        elif kind == "schema-floor":
            data = child_schema_floor(url, path)
        else:
            data = child_import(url, path, kind)
        print(json.dumps(data))
        return

    full = 50_000 if args.quick else 1_000_000
    lines = [
        "| size | database | format | runs | rows | wall time | rows/s | peak RSS | vs COPY floor | XML vs CSV "
        "| re-run, unchanged feed |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    peaks: dict[tuple[int, str], float] = {}
    with tempfile.TemporaryDirectory(prefix="stockq_bench_imports_") as tmp:
        for rows in (full // 5, full):
            csv_path, xml_path = Path(tmp) / f"feed_{rows}.csv", Path(tmp) / f"feed_{rows}.xml"
            write_csv(csv_path, rows)
            write_xml(xml_path, rows)
            # PostgreSQL: the floors and both imports in rounds (each in a fresh database), so that the machine's
            # load changes fall on all of them alike; the median of the rounds.
            rounds = args.runs if rows == full else 1
            runs: dict[str, list[Measured]] = {"copy": [], "schema-floor": [], "csv": [], "xml": []}
            for _ in range(rounds):
                for kind, path in (
                    ("copy", csv_path),
                    ("schema-floor", csv_path),
                    ("csv", csv_path),
                    ("xml", xml_path),
                ):
                    with pg_database(args.pg_url) as url:
                        runs[kind].append(in_child(kind, url, str(path)))
            pg = {kind: median_of(measured) for kind, measured in runs.items()}
            floor = pg["copy"]
            lines.append(_line(rows, "PostgreSQL", "COPY (floor)", rounds, floor, floor, None))
            lines.append(
                _line(rows, "PostgreSQL", "COPY + INSERT (schema floor)", rounds, pg["schema-floor"], floor, None)
            )
            lines.append(_line(rows, "PostgreSQL", "CSV", rounds, pg["csv"], floor, None))
            lines.append(_line(rows, "PostgreSQL", "XML (Ceneo)", rounds, pg["xml"], floor, pg["csv"]))
            sqlite: dict[str, Measured] = {}
            for fmt, path in (("csv", csv_path), ("xml", xml_path)):
                with sqlite_database() as url:
                    sqlite[fmt] = in_child(fmt, url, str(path))
            lines.append(_line(rows, "SQLite", "CSV", 1, sqlite["csv"], floor, None))
            lines.append(_line(rows, "SQLite", "XML (Ceneo)", 1, sqlite["xml"], floor, sqlite["csv"]))
            for fmt in ("csv", "xml"):
                peaks[(rows, fmt)] = max(pg[fmt].peak_rss_mb, sqlite[fmt].peak_rss_mb)
            if rows == full:
                targets.write(args.targets_json, import_targets(full, pg, sqlite, peaks))
            print(
                f"... {rows:,} rows done ({csv_path.stat().st_size / 1e6:.0f} MB CSV, "
                f"{xml_path.stat().st_size / 1e6:.0f} MB XML)",
                file=sys.stderr,
            )
    print("\n".join(lines))


def import_targets(
    rows: int, pg: dict[str, Measured], sqlite: dict[str, Measured], peaks: dict[tuple[int, str], float]
) -> list[targets.Target]:
    floor, csv, xml = pg["copy"], pg["csv"], pg["xml"]
    csv_peak, xml_peak = peaks[(rows, "csv")], peaks[(rows, "xml")]
    xml_fifth = peaks[(rows // 5, "xml")]
    writes = pg["schema-floor"].writes
    assert csv.rerun is not None and writes is not None
    return [
        targets.Target(
            f"CSV import, {rows:,} rows, PostgreSQL", f"{csv.seconds:.2f} s", f"COPY into a bare table {floor.seconds:.2f} s",
            targets.ratio(csv.seconds, floor.seconds), "≤ 3x", csv.seconds <= 3 * floor.seconds,
        ),
        targets.Target(
            f"CSV import, {rows:,} rows, PostgreSQL, against the schema floor", f"{csv.seconds:.2f} s",
            f"COPY + INSERT … SELECT into products and prices {pg['schema-floor'].seconds:.2f} s",
            targets.ratio(csv.seconds, pg["schema-floor"].seconds), "(what the schema's indexes cost alone)", None,
        ),
        targets.Target(
            f"writing {rows:,} new products and prices alone, PostgreSQL (the schema floor's two INSERT … SELECT)",
            f"{writes:.2f} s", f"COPY into a bare table {floor.seconds:.2f} s", targets.ratio(writes, floor.seconds),
            "(reference: what any import of new rows must write, before reading the feed)", None,
        ),
        targets.Target(
            f"CSV re-import (unchanged feed), {rows:,} rows, PostgreSQL", f"{csv.rerun:.2f} s",
            f"COPY into a bare table {floor.seconds:.2f} s", targets.ratio(csv.rerun, floor.seconds),
            "(the daily case; reference)", None,
        ),
        targets.Target(
            "CSV import, peak RSS", f"{csv_peak:.0f} MB", "absolute (PostgreSQL and SQLite)", "-", "< 200 MB",
            csv_peak < 200,
        ),
        targets.Target(
            f"XML feed import, {rows:,} offers, PostgreSQL", f"{xml.seconds:.2f} s", f"CSV import {csv.seconds:.2f} s",
            targets.ratio(xml.seconds, csv.seconds), "≤ 2x", xml.seconds <= 2 * csv.seconds,
        ),
        targets.Target(
            "XML feed import, flat memory", f"peak {xml_peak:.0f} MB at {rows:,}",
            f"peak {xml_fifth:.0f} MB at {rows // 5:,}", targets.ratio(xml_peak, xml_fifth),
            "≤ 1.15x (memory does not grow with the feed)", xml_peak <= 1.15 * xml_fifth,
        ),
    ]  # fmt: skip


def _line(rows: int, database: str, what: str, runs: int, m: Measured, floor: Measured, csv: Measured | None) -> str:
    ratio = f"{m.seconds / floor.seconds:.1f}x"
    versus_csv = f"{m.seconds / csv.seconds:.2f}x" if csv is not None else ""
    rerun = f"{m.rerun:.2f} s ({m.rerun / floor.seconds:.1f}x COPY)" if m.rerun is not None else ""
    return (
        f"| {rows:,} | {database} | {what} | {runs} | {m.rows:,} | {m.seconds:.2f} s | {m.rows / m.seconds:,.0f} "
        f"| {m.peak_rss_mb:.0f} MB | {ratio} | {versus_csv} | {rerun} |"
    )


if __name__ == "__main__":
    main()
