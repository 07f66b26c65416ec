"""One import run: fetch → parse → validate → batched upsert → one INW document for the stock.

All writes of a run happen in ONE transaction: a feed that cannot be fetched, is cut off or is not well-formed
rolls everything back, so nothing is half applied and no product missing from a truncated feed is touched. Only
the run's own record (status, counts, message, rejected records) is written outside it. Stock is never written
to the totals directly: the counted quantities of the feed's products go into one posted inventory (INW) document
booking the differences (products absent from the feed keep their stock). Prices go to ``import_prices``, since
products carry no price column. The profile's ETag/Last-Modified are stored only with a successful run, so a
failed run is retried in full next time instead of being skipped by a 304.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from stockq import db, errors
from stockq.imports import models
from stockq.imports.feeds import BadRecord, RawRecord, RecordBatch
from stockq.imports.feeds.csv import detect_encoding, read_csv, read_csv_batches
from stockq.imports.feeds.xml import read_xml, read_xml_batches
from stockq.imports.fetch import FetchOptions, fetch
from stockq.imports.profiles import Profile, get_profile
from stockq.warehouse import documents, products
from stockq.warehouse import models as warehouse_models
from stockq.warehouse._sql import insert as dialect_insert
from stockq.warehouse._sql import utcnow

BATCH_SIZE = 2000
MAX_STORED_REJECTIONS = 1000
MAX_SKU_LENGTH = 64

Progress = Callable[[int, int, int], None]
"""progress(records_read, bytes_read, bytes_total)"""

_EAN = re.compile(r"\d{8,14}")
_NUMBER = re.compile(r"-?\d+(\.\d+)?")
_CURRENCY = re.compile(r"\s*(?:[A-Za-z]{3}|zł|PLN|EUR|€|\$)\s*$")
_CONTROL = re.compile(r"[\x00-\x1f]")
_PLAIN = re.compile(r"-?\d+(?:([.,])\d+)?")
_GROUPED = re.compile(r"-?\d{1,3}(_\d{3})+")
_SPACES = str.maketrans("", "", " \u00a0\u202f\u2009'")


@dataclass(slots=True)
class RunResult:
    """What a run did."""

    run_id: int
    profile: str
    status: str
    read: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    stock_document: str | None = None
    message: str | None = None
    rejections: list[tuple[int, str]] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.status == "failed"


@dataclass(slots=True)
class _Row:
    number: int
    product: dict[str, Any]
    price: Decimal | None
    quantity: Decimal | None


class _Rejected(Exception):
    pass


def parse_number(text: str, *, decimal: str = "auto", thousands: str | None = "auto") -> Decimal:
    """A number as Polish and other exports write it: ``1 049,00``, ``1.234,50``, ``1234.50``, ``129.99 PLN``.

    ``decimal``: ``,`` or ``.`` or ``auto`` (the last of ``,``/``.`` when both occur; a single ``,`` or ``.``
    otherwise). Spaces (also no-break) and apostrophes always group digits. ValueError when it is not a number.
    """
    value = _CURRENCY.sub("", text.strip()).translate(_SPACES)
    if decimal == "auto":
        comma, dot = value.rfind(","), value.rfind(".")
        if comma >= 0 and dot >= 0:
            decimal = "," if comma > dot else "."
        elif value.count(",") == 1:
            decimal = ","
        else:
            decimal = "."
    group = ("." if decimal == "," else ",") if thousands in ("auto", None, "") else str(thousands)
    integer, _, fraction = value.partition(decimal) if decimal in value else (value, "", "")
    if group and group != decimal and group in integer:
        if not _GROUPED.fullmatch(integer.replace(group, "_")):
            raise ValueError(f"{text.strip()[:40]!r} is not a number")
        integer = integer.replace(group, "")
    value = f"{integer}.{fraction}" if fraction else integer
    if not _NUMBER.fullmatch(value):
        raise ValueError(f"{text.strip()[:40]!r} is not a number")
    try:
        return Decimal(value)
    except InvalidOperation:
        raise ValueError(f"{text.strip()[:40]!r} is not a number") from None


def _validated(record: RawRecord, options: dict[str, Any], match_key: str) -> _Row:
    fields = record.fields
    product: dict[str, Any] = {}
    for name in ("sku", "ean", "name", "unit"):
        value = fields.get(name)
        if value is None:
            continue
        if "\x00" in value:
            raise _Rejected(f"{name} contains a NUL byte")
        product[name] = value.strip()
    sku = product.get("sku") or ""
    if not sku:
        product.pop("sku", None)
        if match_key != "ean" or not product.get("ean"):
            raise _Rejected("no SKU")
    if len(sku) > MAX_SKU_LENGTH:
        raise _Rejected(f"SKU longer than {MAX_SKU_LENGTH} characters")
    if _CONTROL.search(sku):
        raise _Rejected("SKU contains control characters")
    ean = product.get("ean")
    if ean == "":
        product["ean"] = None
    elif ean is not None and not _EAN.fullmatch(ean):
        raise _Rejected(f"EAN {ean[:20]!r} is not 8 to 14 digits")
    decimal = str(options.get("decimal") or "auto")
    thousands = options.get("thousands") or "auto"
    price = _number(fields.get("price"), "price", decimal, thousands)
    if price is not None and price < 0:
        raise _Rejected(f"negative price {price}")
    quantity = _number(fields.get("quantity"), "quantity", decimal, thousands)
    if quantity is not None and quantity < 0:
        if not options.get("ignore_negative_quantity"):
            raise _Rejected(f"negative quantity {quantity}")
        quantity = None
    return _Row(record.number, product, price, quantity)


def _number(text: str | None, what: str, decimal: str, thousands: str) -> Decimal | None:
    if text is None or not text.strip():
        return None
    plain = _PLAIN.fullmatch(text)
    if plain is not None and (plain.group(1) is None or decimal in ("auto", plain.group(1))):
        return Decimal(text.replace(",", ".") if plain.group(1) == "," else text)  # the common case, quickly
    try:
        return parse_number(text, decimal=decimal, thousands=thousands)
    except ValueError as exc:
        raise _Rejected(f"{what}: {exc}") from None


def _records(profile: Profile, binary: IO[bytes], path: Path) -> Iterator[RawRecord | BadRecord]:
    mapping, reader = _reader_options(profile, path)
    if profile.format == "csv":
        return read_csv(binary, mapping=mapping, **reader)
    return read_xml(binary, mapping=mapping, **reader)


def _record_batches(profile: Profile, binary: IO[bytes], path: Path) -> Iterator[RecordBatch]:
    mapping, reader = _reader_options(profile, path)
    if profile.format == "csv":
        return read_csv_batches(binary, mapping=mapping, batch_size=BATCH_SIZE, **reader)
    return read_xml_batches(binary, mapping=mapping, batch_size=BATCH_SIZE, **reader)


def _reader_options(profile: Profile, path: Path) -> tuple[dict[str, str], dict[str, Any]]:
    """The profile's effective mapping, and the keyword arguments its format's reader takes."""
    options, mapping = profile.effective()
    if profile.format == "csv":
        reader: dict[str, Any] = {
            "encoding": str(options.get("encoding") or detect_encoding(path)),
            "delimiter": options.get("delimiter"),
            "quotechar": str(options.get("quotechar") or '"'),
            "header": bool(options.get("header", True)),
        }
    else:
        reader = {"records": list(options.get("records") or []), "namespaces": options.get("namespaces") or {}}
    return mapping, reader


class _Importer:
    """Applies validated rows in batches inside the run's transaction and keeps the counts."""

    def __init__(self, conn: Connection, profile: Profile, result: RunResult) -> None:
        self.conn = conn
        self.profile = profile
        self.result = result
        self.batch: list[_Row] = []
        self.counted: dict[str, Decimal] = {}

    def reject(self, number: int, reason: str) -> None:
        self.result.rejected += 1
        if len(self.result.rejections) < MAX_STORED_REJECTIONS:
            self.result.rejections.append((number, reason[:500]))

    def add(self, row: _Row) -> None:
        self.batch.append(row)
        if len(self.batch) >= BATCH_SIZE:
            self.flush()

    def flush(self) -> None:
        rows, self.batch = self.batch, []
        if not rows:
            return
        if self.profile.match_key == "ean":
            rows = self._resolve_by_ean(rows)
        counts = products.upsert_products(self.conn, (r.product for r in rows), batch_size=len(rows) or 1)
        self.result.created += counts.created
        self.result.updated += counts.updated
        self.result.unchanged += counts.unchanged
        priced = [r for r in rows if r.price is not None]
        if priced:
            self._store_prices(priced)
        if self.profile.stock_warehouse:
            for r in rows:
                if r.quantity is not None:
                    self.counted[r.product["sku"]] = r.quantity

    def _resolve_by_ean(self, rows: list[_Row]) -> list[_Row]:
        table = warehouse_models.products
        eans = sorted({r.product["ean"] for r in rows if r.product.get("ean")})
        known: dict[str, str] = {}
        if eans:
            found = self.conn.execute(sa.select(table.c.ean, table.c.sku).where(table.c.ean.in_(eans)))
            known = {str(ean): str(sku) for ean, sku in found}
        kept: list[_Row] = []
        for r in rows:
            ean = r.product.get("ean")
            if ean and ean in known:
                r.product["sku"] = known[ean]
            elif not r.product.get("sku"):
                self.reject(r.number, f"record {r.number}: no product with EAN {ean} and no SKU to create one")
                continue
            kept.append(r)
        return kept

    def _store_prices(self, rows: list[_Row]) -> None:
        now = utcnow()
        values = {
            r.product["sku"]: {
                "profile_id": self.profile.id,
                "sku": r.product["sku"],
                "price": r.price,
                "updated_at": now,
            }
            for r in rows
        }
        statement = dialect_insert(self.conn, models.import_prices)
        statement = statement.on_conflict_do_update(
            index_elements=["profile_id", "sku"],
            set_={"price": statement.excluded.price, "updated_at": statement.excluded.updated_at},
        )
        self.conn.execute(statement, list(values.values()))

    def post_stock(self, run_id: int) -> None:
        if not self.profile.stock_warehouse or not self.counted:
            return
        document = documents.post_inventory(
            self.conn,
            self.profile.stock_warehouse,
            self.counted,
            note=f"Import {self.profile.name} (run {run_id})",
        )
        if document is not None:
            self.result.stock_document = document.number


# Python's str.strip() set (every character whose isspace() is true), for btrim() to strip exactly as Python does.
PYTHON_WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
    "\u200a\u2028\u2029\u202f\u205f\u3000"
)
_SKU_VALUE = rf"[^\s\x00-\x1f](?:[^\x00-\x1f]{{0,{MAX_SKU_LENGTH - 2}}}[^\s\x00-\x1f])?"
_EAN_VALUE = r"(?:[0-9]{8,14})?"


# FREEZE: the table is new in this transaction, so its rows need no visibility hint bits written later.
_STAGING_COPY = "COPY stockq_import_raw ({columns}) FROM STDIN (FREEZE)"
_STAGING_COPY_ANY = _STAGING_COPY.format(columns="…")  # the statement its errors name (the columns vary)


def _column_pattern(value: str) -> re.Pattern[str]:
    return re.compile(rf"(?:{value})(?:\n(?:{value}))*")


class _PostgresStagingImporter(_Importer):
    """PostgreSQL, matching by SKU: batches of raw records stream through COPY into a temporary table, then a few
    set-based statements validate and apply them (new products inserted, changed ones updated, prices upserted),
    with the same semantics, counts and rejection reasons as the per-record path (a field absent from a record is
    left as it is; a SKU repeated in the feed: the last record wins). A batch whose every value has the plain form
    (a SKU without surrounding spaces or control characters, an EAN of 8-14 digits or nothing, non-negative plain
    numbers) goes in as it was read and is converted in SQL; any other batch is validated record by record by
    ``_validated`` (exact reasons) and its accepted records go in already converted. The temp tables are dropped
    at commit or rollback."""

    def __init__(self, conn: Connection, profile: Profile, result: RunResult, stack: ExitStack) -> None:
        super().__init__(conn, profile, result)
        options, _ = profile.effective()
        self.options = options
        self.unit = "line" if profile.format == "csv" else "record"
        decimal = str(options.get("decimal") or "auto")
        separator = {"auto": "[.,]", ",": ",", ".": r"\."}.get(decimal)
        fraction = rf"(?:{separator}[0-9]+)?" if separator else ""
        number = rf"(?:[0-9]{{1,14}}{fraction})?"
        self.plain_values = {"sku": _SKU_VALUE, "ean": _EAN_VALUE, "price": number, "quantity": number}
        self.fields: tuple[str, ...] = ()
        self.checks: list[tuple[int, re.Pattern[str]]] = []
        # For this run's transaction: sorts of a million staged rows in memory; and no JIT, since the staged
        # statements' cost estimates pass jit_above_cost and compiling their expressions costs more than it saves
        # (the CTAS of a 1,000,000-row re-import took 3.27 s with JIT, 2.98 s without).
        conn.exec_driver_sql("SELECT set_config('work_mem', '256MB', true), set_config('jit', 'off', true)")
        conn.exec_driver_sql(
            "CREATE TEMPORARY TABLE stockq_import_raw (line bigint NOT NULL, sku text, ean text, name text, "
            "unit text, price text, quantity text) ON COMMIT DROP"
        )
        self._copy: Any = None
        self._stack = stack

    def _start_copy(self, fields: tuple[str, ...]) -> None:
        self.fields = fields
        self.checks = [
            (index, _column_pattern(self.plain_values[name]))
            for index, name in enumerate(fields)
            if name in self.plain_values
        ]
        cursor = self._stack.enter_context(self.conn.connection.driver_connection.cursor())  # type: ignore[union-attr]
        columns = ", ".join(("line", *fields))
        self._copy = self._stack.enter_context(cursor.copy(_STAGING_COPY.format(columns=columns)))

    def add_batch(self, batch: RecordBatch) -> None:
        with db.driver_errors(_STAGING_COPY_ANY):
            self._add_batch(batch)

    def _add_batch(self, batch: RecordBatch) -> None:
        if self._copy is None:
            self._start_copy(batch.fields)
        rows = batch.rows
        if rows and self._plain(rows) and self._write_plain(batch.numbers, rows):
            for bad in batch.rejected:
                self.reject(bad.number, bad.reason)
            return
        rejected = [(bad.number, bad.reason) for bad in batch.rejected]
        converted: list[tuple[Any, ...]] = []
        for number, values in zip(batch.numbers, rows, strict=True):
            try:
                row = _validated(RawRecord(number, dict(zip(self.fields, values, strict=True))), self.options, "sku")
            except _Rejected as exc:
                rejected.append((number, f"{self.unit} {number}: {exc}"))
                continue
            converted.append((number, *self._canonical(row)))
        for converted_row in converted:
            self._copy.write_row(converted_row)
        for number, reason in sorted(rejected, key=lambda item: item[0]):
            self.reject(number, reason)

    def _plain(self, rows: list[tuple[str | None, ...]]) -> bool:
        if "sku" not in self.fields:
            return False
        for index, pattern in self.checks:
            column = [row[index] for row in rows]
            if None in column:  # absent: left as it is; but every record needs its SKU
                if self.fields[index] == "sku":
                    return False
                column = [value for value in column if value is not None]
                if not column:
                    continue
            text = "\n".join(column)  # type: ignore[arg-type]
            if text.count("\n") != len(column) - 1 or pattern.fullmatch(text) is None:
                return False
        return True

    def _write_plain(self, numbers: Sequence[int], rows: list[tuple[str | None, ...]]) -> bool:
        """Write rows of plain values as they are; False (nothing written) when a value holds a NUL byte."""
        try:
            text = "\n".join(map("{}\t{}".format, numbers, map("\t".join, rows))) + "\n"  # type: ignore[arg-type]
        except TypeError:  # an absent (None) value: psycopg writes it as NULL
            text = ""
        if "\x00" in text:
            return False
        if (
            text
            and "\\" not in text
            and "\r" not in text
            and text.count("\n") == len(rows)
            and text.count("\t") == len(rows) * len(self.fields)
        ):
            self._copy.write(text)
            return True
        if any(value is not None and "\x00" in value for values in rows for value in values):
            return False
        for number, values in zip(numbers, rows, strict=True):
            self._copy.write_row((number, *values))
        return True

    def _canonical(self, row: _Row) -> tuple[str | None, ...]:
        """The staged text of a validated row, in ``fields`` order; the SQL conversion leaves it as it is."""
        product = row.product
        values: dict[str, str | None] = {
            "sku": product.get("sku"),
            "ean": (product["ean"] or "") if "ean" in product else None,
            "name": product.get("name"),
            "unit": product.get("unit"),
            "price": None if row.price is None else str(row.price),
            "quantity": None if row.quantity is None else str(row.quantity),
        }
        return tuple(values[name] for name in self.fields)

    def add(self, row: _Row) -> None:
        raise NotImplementedError("the staging importer takes batches (add_batch)")

    def flush(self) -> None:
        with db.driver_errors(_STAGING_COPY_ANY):
            self._stack.close()  # ends the COPY (if a batch started it)
        conn = self.conn
        params = {"ws": PYTHON_WHITESPACE, "profile": self.profile.id}
        # One pass decides everything: the last record per SKU, its product (new, changed or not) and its price
        # (new, changed or not), so the writes below touch only the rows that need it.
        conn.exec_driver_sql(
            "CREATE TEMPORARY TABLE stockq_import_final ON COMMIT DROP AS "
            "SELECT s.*, p.id AS product_id, p.id IS NULL AS is_new, "
            "(p.id IS NOT NULL AND ((s.name IS NOT NULL AND s.name IS DISTINCT FROM p.name) "
            " OR (s.ean IS NOT NULL AND NULLIF(s.ean, '') IS DISTINCT FROM p.ean) "
            " OR (s.unit IS NOT NULL AND s.unit IS DISTINCT FROM p.unit))) AS is_changed, "
            "s.price IS NOT NULL AND ip.sku IS NULL AS price_is_new, "
            "s.price IS NOT NULL AND ip.price <> s.price AS price_is_changed "
            'FROM (SELECT DISTINCT ON (sku) line, sku COLLATE "C" AS sku, ean, '
            "left(btrim(name, %(ws)s), 255) AS name, NULLIF(left(btrim(unit, %(ws)s), 16), '') AS unit, "
            "replace(NULLIF(price, ''), ',', '.')::numeric(18, 4) AS price, "
            "replace(NULLIF(quantity, ''), ',', '.')::numeric(18, 4) AS quantity "
            "FROM stockq_import_raw ORDER BY sku, line DESC) s "
            "LEFT JOIN products p ON p.sku = s.sku "
            "LEFT JOIN import_prices ip ON ip.profile_id = %(profile)s AND ip.sku = s.sku",
            params,
        )
        conn.exec_driver_sql("ANALYZE stockq_import_final")  # temp tables get no autovacuum statistics
        created, updated, unchanged = conn.exec_driver_sql(
            "SELECT count(*) FILTER (WHERE is_new), count(*) FILTER (WHERE is_changed), "
            "count(*) FILTER (WHERE NOT is_new AND NOT is_changed) FROM stockq_import_final"
        ).one()
        now = utcnow()
        inserted = self._insert_new_products(now) if created else 0
        update = (
            "UPDATE products p SET name = COALESCE(f.name, p.name), "
            "ean = CASE WHEN f.ean IS NULL THEN p.ean ELSE NULLIF(f.ean, '') END, "
            "unit = COALESCE(f.unit, p.unit), updated_at = %(now)s FROM stockq_import_final f WHERE "
        )
        if updated:
            conn.exec_driver_sql(update + "f.is_changed AND p.id = f.product_id", {"now": now})
        if inserted < created:
            conn.exec_driver_sql(update + "f.is_new AND p.sku = f.sku", {"now": now})
            updated += created - inserted
            created = inserted
        # Two plain statements instead of INSERT … ON CONFLICT, which costs several times more per row here.
        conn.exec_driver_sql(
            "UPDATE import_prices ip SET price = f.price, updated_at = %(now)s FROM stockq_import_final f "
            "WHERE f.price_is_changed AND ip.profile_id = %(profile)s AND ip.sku = f.sku",
            {"profile": self.profile.id, "now": now},
        )
        conn.exec_driver_sql(
            "INSERT INTO import_prices (profile_id, sku, price, updated_at) "
            "SELECT %(profile)s, f.sku, f.price, %(now)s FROM stockq_import_final f WHERE f.price_is_new",
            {"profile": self.profile.id, "now": now},
        )
        self.result.created += int(created)
        self.result.updated += int(updated)
        self.result.unchanged += int(unchanged)
        if self.profile.stock_warehouse:
            rows = conn.exec_driver_sql("SELECT sku, quantity FROM stockq_import_final WHERE quantity IS NOT NULL")
            self.counted = {str(sku): Decimal(quantity) for sku, quantity in rows}

    def _insert_new_products(self, now: object) -> int:
        """Insert the products the snapshot did not have; how many were inserted.

        A plain INSERT costs well under half of INSERT … ON CONFLICT per row. Only another run creating some of
        the same SKUs since the snapshot (another process) makes it fail, on a unique key or a deadlock between the
        two; then it is rolled back to its savepoint and done with ON CONFLICT DO NOTHING in SKU order, which waits
        for the other run and leaves its products to the update of the caller (as if they had existed)."""
        insert = (
            "INSERT INTO products (sku, ean, name, unit, active, created_at, updated_at) "
            "SELECT sku, NULLIF(ean, ''), COALESCE(name, ''), COALESCE(unit, 'szt'), true, %(now)s, %(now)s "
            "FROM stockq_import_final WHERE is_new"
        )
        try:
            with self.conn.begin_nested():
                return int(self.conn.exec_driver_sql(insert, {"now": now}).rowcount)
        except sa.exc.DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) not in ("23505", "40P01"):  # unique_violation, deadlock_detected
                raise
        return int(
            self.conn.exec_driver_sql(
                f"WITH inserted AS ({insert} ORDER BY sku ON CONFLICT (sku) DO NOTHING RETURNING 1) "
                "SELECT count(*) FROM inserted",
                {"now": now},
            ).scalar_one()
        )


def run_import(
    engine: Engine,
    name_or_id: str | int,
    *,
    import_root: Path,
    progress: Progress | None = None,
) -> RunResult:
    """Run one profile now and record the run; a failed run is recorded and returned (status ``failed``)."""
    with engine.begin() as conn:
        profile = get_profile(conn, name_or_id)
        run_id = int(
            conn.execute(
                models.import_runs.insert()
                .values(profile_id=profile.id, status="running", started_at=utcnow())
                .returning(models.import_runs.c.id)
            ).scalar_one()
        )
    result = RunResult(run_id=run_id, profile=profile.name, status="running")
    try:
        _apply(engine, profile, result, import_root=import_root, progress=progress)
    except (errors.StockqError, OSError) as exc:
        result.status = "failed"
        result.message = exc.message if isinstance(exc, errors.StockqError) else f"{type(exc).__name__}: {exc}"
        result.created = result.updated = result.unchanged = 0
        result.stock_document = None
    except BaseException as exc:
        result.status = "failed"
        result.message = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        result.created = result.updated = result.unchanged = 0
        result.stock_document = None
        _finish(engine, profile, result)
        raise
    _finish(engine, profile, result)
    return result


def _apply(
    engine: Engine, profile: Profile, result: RunResult, *, import_root: Path, progress: Progress | None
) -> None:
    options, _ = profile.effective()
    fetch_options = FetchOptions(
        **{k: options[k] for k in ("connect_timeout", "read_timeout", "max_bytes", "max_redirects") if k in options}
    )
    with fetch(
        profile.source,
        import_root=import_root,
        etag=profile.etag,
        last_modified=profile.last_modified,
        options=fetch_options,
    ) as fetched:
        if fetched.path is None:
            result.status = "not_modified"
            result.message = "The feed has not changed since the last run (HTTP 304); nothing applied"
            return
        with fetched.path.open("rb") as binary, engine.begin() as conn, ExitStack() as stack:
            unit = "line" if profile.format == "csv" else "record"
            if conn.dialect.name == "postgresql" and profile.match_key == "sku":
                staging = _PostgresStagingImporter(conn, profile, result, stack)
                importer: _Importer = staging
                for batch in _record_batches(profile, binary, fetched.path):
                    result.read += len(batch.rows) + len(batch.rejected)
                    staging.add_batch(batch)
                    if progress is not None:
                        progress(result.read, _position(binary), fetched.size)
            else:
                importer = _Importer(conn, profile, result)
                for item in _records(profile, binary, fetched.path):
                    result.read += 1
                    if isinstance(item, BadRecord):
                        importer.reject(item.number, item.reason)
                        continue
                    try:
                        row = _validated(item, options, profile.match_key)
                    except _Rejected as exc:
                        importer.reject(item.number, f"{unit} {item.number}: {exc}")
                        continue
                    importer.add(row)
                    if progress is not None and result.read % BATCH_SIZE == 0:
                        progress(result.read, _position(binary), fetched.size)
            importer.flush()
            importer.post_stock(result.run_id)
            if progress is not None:
                progress(result.read, fetched.size, fetched.size)
            table = models.import_profiles
            conn.execute(
                table.update()
                .where(table.c.id == profile.id)
                .values(etag=fetched.etag, last_modified=fetched.last_modified)
            )
        result.status = "succeeded"
        result.message = None


def _position(binary: IO[bytes]) -> int:
    try:
        return os.lseek(binary.fileno(), 0, os.SEEK_CUR)
    except OSError:
        return 0


def _finish(engine: Engine, profile: Profile, result: RunResult) -> None:
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(
            models.import_runs.update()
            .where(models.import_runs.c.id == result.run_id)
            .values(
                status=result.status,
                finished_at=now,
                records_read=result.read,
                created=result.created,
                updated=result.updated,
                unchanged=result.unchanged,
                rejected=result.rejected,
                stock_document=result.stock_document,
                message=result.message,
            )
        )
        if result.rejections:
            conn.execute(
                models.import_rejections.insert(),
                [{"run_id": result.run_id, "record_no": n, "reason": reason} for n, reason in result.rejections],
            )
        table = models.import_profiles
        conn.execute(table.update().where(table.c.id == profile.id).values(last_run_at=now))


@dataclass(frozen=True, slots=True)
class RunRecord:
    """A stored run, for ``imports runs``."""

    id: int
    profile: str
    status: str
    started_at: Any
    finished_at: Any
    read: int
    created: int
    updated: int
    unchanged: int
    rejected: int
    stock_document: str | None
    message: str | None


def list_runs(conn: Connection, profile: str | None = None, *, limit: int = 20) -> list[RunRecord]:
    """The latest runs, newest first (of one profile when given)."""
    runs, profiles = models.import_runs, models.import_profiles
    query = (
        sa.select(runs, profiles.c.name)
        .join(profiles, profiles.c.id == runs.c.profile_id)
        .order_by(runs.c.id.desc())
        .limit(limit)
    )
    if profile is not None:
        query = query.where(runs.c.profile_id == get_profile(conn, profile).id)
    return [
        RunRecord(
            id=int(m["id"]),
            profile=m["name"],
            status=m["status"],
            started_at=m["started_at"],
            finished_at=m["finished_at"],
            read=int(m["records_read"]),
            created=int(m["created"]),
            updated=int(m["updated"]),
            unchanged=int(m["unchanged"]),
            rejected=int(m["rejected"]),
            stock_document=m["stock_document"],
            message=m["message"],
        )
        for m in (row._mapping for row in conn.execute(query))
    ]


def run_rejections(conn: Connection, run_id: int, *, limit: int = 50) -> list[tuple[int, str]]:
    """Stored rejected records of a run, in record order."""
    table = models.import_rejections
    rows = conn.execute(
        sa.select(table.c.record_no, table.c.reason)
        .where(table.c.run_id == run_id)
        .order_by(table.c.record_no, table.c.id)
        .limit(limit)
    )
    return [(int(n), str(reason)) for n, reason in rows]
