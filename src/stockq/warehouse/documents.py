"""Warehouse documents: create (draft), post, cancel by correction, stocktaking, numbering.

Public API (stable; the imports and integrations use it):

- ``create_document(conn, *, type, warehouse_code, items, target_warehouse_code=None, contractor=None, note=None,
  document_date=None) -> Document``: a draft. ``items`` is a list of ``(sku, quantity, unit_price | None)``;
  quantities are positive Decimals (for INW: the counted quantity, zero allowed). MM needs a target warehouse
  different from the source; other types take none.
- ``post_document(conn, number_or_id) -> PostResult``: books the document's effect on ``warehouse_stock_totals``
  and assigns its number. Posting a posted document changes nothing (``PostResult.already_posted``).
- ``cancel_document(conn, number_or_id) -> CancelResult``: a draft is just marked cancelled; a posted document is
  marked cancelled and a correction (KOR) with the negated lines is created and posted, pointing at it.
- ``post_inventory(conn, warehouse_code, counted, note=None) -> Document | None``: creates and posts an INW for the
  SKUs whose counted quantity differs from the current stock; None when nothing differs.
- ``get_document``, ``list_documents``.

``number_or_id`` is a document number (``PZ/2026/11/0001``) or a document id (``17`` or ``#17``); drafts have no
number yet and are addressed by id.

Numbering: numbers are assigned **at posting** from a series per (type, year, month of the document date), e.g.
``PZ/2026/11/0001``. The counter row of the series (``warehouse_document_series``) is incremented with one
``INSERT … ON CONFLICT DO UPDATE … RETURNING``; that row stays locked until the posting commits, so a posting that
rolls back gives its number back, and numbers are gap-free and unique per series (SQLite: the IMMEDIATE transaction
already serialises writers).

Locking: a posting first locks the document row, then the stock total rows it touches in (warehouse_id,
product_id) order (PostgreSQL: missing rows are inserted with ON CONFLICT DO NOTHING in that order, then
``SELECT … ORDER BY … FOR UPDATE``), and only then the series counter. Every posting takes its locks in this
order, so concurrent postings neither deadlock nor lose updates. The negative-stock check uses the locked values.

Every function runs inside the caller's transaction (``conn``); nothing here commits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from stockq import errors
from stockq.warehouse import hooks, models
from stockq.warehouse._sql import insert, quantize, utcnow
from stockq.warehouse.errors import InsufficientStock, InvalidDocumentState
from stockq.warehouse.products import product_ids_by_sku
from stockq.warehouse.warehouses import warehouse_by_code, warehouses_by_id


class DocumentType(StrEnum):
    """Document types (PL: dokumenty magazynowe)."""

    PZ = "PZ"  # external receipt (+)
    WZ = "WZ"  # external issue (-)
    PW = "PW"  # internal receipt (+)
    RW = "RW"  # internal issue (-)
    MM = "MM"  # transfer: - source, + target
    ZW = "ZW"  # internal return (+)
    INW = "INW"  # stocktaking: books counted - current
    KOR = "KOR"  # correction: negated lines of the document it corrects


class DocumentStatus(StrEnum):
    DRAFT = "draft"
    POSTED = "posted"
    CANCELLED = "cancelled"


STOCK_SIGN: dict[DocumentType, int] = {
    DocumentType.PZ: 1,
    DocumentType.PW: 1,
    DocumentType.ZW: 1,
    DocumentType.INW: 1,
    DocumentType.WZ: -1,
    DocumentType.RW: -1,
    DocumentType.MM: -1,
}

ItemInput = tuple[str, Decimal, Decimal | None]
StockKey = tuple[int, int]


@dataclass(frozen=True, kw_only=True, slots=True)
class DocumentItem:
    line_no: int
    product_id: int
    sku: str
    quantity: Decimal
    counted_quantity: Decimal | None
    unit_price: Decimal | None


@dataclass(frozen=True, kw_only=True, slots=True)
class Document:
    """A document header with its lines."""

    id: int
    type: DocumentType
    status: DocumentStatus
    number: str | None
    warehouse_code: str
    target_warehouse_code: str | None
    document_date: date
    contractor: str | None
    note: str | None
    created_at: datetime
    posted_at: datetime | None
    cancelled_at: datetime | None
    corrects_document_id: int | None
    corrects_number: str | None
    items: tuple[DocumentItem, ...]

    @property
    def label(self) -> str:
        """The number, or ``#id`` while the document is a draft."""
        return self.number or f"#{self.id}"


@dataclass(frozen=True, kw_only=True, slots=True)
class DocumentSummary:
    id: int
    type: DocumentType
    status: DocumentStatus
    number: str | None
    warehouse_code: str
    target_warehouse_code: str | None
    document_date: date
    posted_at: datetime | None
    lines: int

    @property
    def label(self) -> str:
        return self.number or f"#{self.id}"


@dataclass(frozen=True, kw_only=True, slots=True)
class PostResult:
    """The posted document, the (warehouse_id, product_id) pairs whose stock changed, and whether it had been
    posted before (then nothing changed)."""

    document: Document
    changed: list[StockKey]
    already_posted: bool


@dataclass(frozen=True, kw_only=True, slots=True)
class CancelResult:
    document: Document
    correction: Document | None


def create_document(
    conn: Connection,
    *,
    type: str,
    warehouse_code: str,
    items: Sequence[ItemInput],
    target_warehouse_code: str | None = None,
    contractor: str | None = None,
    note: str | None = None,
    document_date: date | None = None,
) -> Document:
    """Create a draft document (see the module docstring); InvalidInput for anything that cannot be posted."""
    document_id = _create_draft(
        conn,
        type=type,
        warehouse_code=warehouse_code,
        items=items,
        target_warehouse_code=target_warehouse_code,
        contractor=contractor,
        note=note,
        document_date=document_date,
    )
    return get_document(conn, document_id)


def _create_draft(
    conn: Connection,
    *,
    type: str,
    warehouse_code: str,
    items: Sequence[ItemInput],
    target_warehouse_code: str | None,
    contractor: str | None,
    note: str | None,
    document_date: date | None,
) -> int:
    doc_type = _document_type(type)
    if doc_type is DocumentType.KOR:
        raise errors.InvalidInput("Corrections (KOR) are created by cancelling a posted document")
    warehouse = warehouse_by_code(conn, warehouse_code)
    target_id: int | None = None
    if doc_type is DocumentType.MM:
        if not target_warehouse_code:
            raise errors.InvalidInput("An MM document needs a target warehouse (--to)")
        target = warehouse_by_code(conn, target_warehouse_code)
        if target.id == warehouse.id:
            raise errors.InvalidInput("An MM document needs a target warehouse different from the source")
        target_id = target.id
    elif target_warehouse_code:
        raise errors.InvalidInput(f"Only MM documents have a target warehouse, not {doc_type}")
    if not items:
        raise errors.InvalidInput("A document needs at least one item")
    product_ids = product_ids_by_sku(conn, (sku for sku, _, _ in items))
    unknown = sorted({sku for sku, _, _ in items if sku not in product_ids})
    if unknown:
        raise errors.InvalidInput(f"Unknown SKU: {', '.join(unknown[:10])}" + (" …" if len(unknown) > 10 else ""))
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for line_no, (sku, quantity, price) in enumerate(items, start=1):
        quantity = _decimal(quantity, f"quantity of {sku}")
        if doc_type is DocumentType.INW:
            if quantity < 0:
                raise errors.InvalidInput(f"Counted quantity of {sku} must not be negative")
            if sku in seen:
                raise errors.InvalidInput(f"SKU {sku} is counted twice in one stocktaking")
            seen.add(sku)
        elif quantity <= 0:
            raise errors.InvalidInput(f"Quantity of {sku} must be positive, not {quantity}")
        unit_price = None if price is None else _decimal(price, f"price of {sku}")
        if unit_price is not None and unit_price < 0:
            raise errors.InvalidInput(f"Price of {sku} must not be negative")
        counted = quantity if doc_type is DocumentType.INW else None
        rows.append(
            {
                "line_no": line_no,
                "product_id": product_ids[sku],
                "quantity": Decimal(0) if doc_type is DocumentType.INW else quantity,
                "counted_quantity": counted,
                "unit_price": unit_price,
            }
        )
    document_id = _insert_header(
        conn,
        doc_type=doc_type,
        warehouse_id=warehouse.id,
        target_warehouse_id=target_id,
        stock_sign=STOCK_SIGN[doc_type],
        contractor=contractor,
        note=note,
        document_date=document_date or utcnow().date(),
    )
    conn.execute(models.document_items.insert(), [{**row, "document_id": document_id} for row in rows])
    return document_id


def post_document(conn: Connection, number_or_id: str | int) -> PostResult:
    """Post a draft: lock, check stock, update totals, number it, announce the change (module docstring)."""
    header = _lock_document(conn, number_or_id)
    status = DocumentStatus(header["status"])
    if status is DocumentStatus.POSTED:
        return PostResult(document=get_document(conn, header["id"]), changed=[], already_posted=True)
    if status is DocumentStatus.CANCELLED:
        raise InvalidDocumentState(f"Document {_label(header)} is cancelled and cannot be posted")
    changed = _book(conn, header)
    series = _series(DocumentType(header["type"]), header["document_date"])
    sequence = _next_number(conn, series)
    number = f"{series}/{sequence:04d}"
    docs = models.documents
    conn.execute(
        docs.update()
        .where(docs.c.id == header["id"])
        .values(status=DocumentStatus.POSTED.value, series=series, sequence=sequence, number=number, posted_at=utcnow())
    )
    hooks.announce(conn, changed)
    return PostResult(document=get_document(conn, header["id"]), changed=changed, already_posted=False)


def cancel_document(conn: Connection, number_or_id: str | int) -> CancelResult:
    """Cancel a draft, or cancel a posted document by posting a reversing correction (KOR) that points at it."""
    header = _lock_document(conn, number_or_id)
    status = DocumentStatus(header["status"])
    docs = models.documents
    if status is DocumentStatus.CANCELLED:
        raise InvalidDocumentState(f"Document {_label(header)} is already cancelled")
    if status is DocumentStatus.DRAFT:
        conn.execute(
            docs.update()
            .where(docs.c.id == header["id"])
            .values(status=DocumentStatus.CANCELLED.value, cancelled_at=utcnow())
        )
        return CancelResult(document=get_document(conn, header["id"]), correction=None)
    if header["type"] == DocumentType.KOR:
        raise InvalidDocumentState(f"Document {_label(header)} is a correction and cannot be cancelled")
    correction_id = _insert_header(
        conn,
        doc_type=DocumentType.KOR,
        warehouse_id=header["warehouse_id"],
        target_warehouse_id=header["target_warehouse_id"],
        stock_sign=header["stock_sign"],
        contractor=header["contractor"],
        note=f"Cancels {header['number']}",
        document_date=utcnow().date(),
        corrects_document_id=header["id"],
    )
    items = models.document_items
    conn.execute(
        items.insert().from_select(
            ["document_id", "line_no", "product_id", "quantity", "counted_quantity", "unit_price"],
            sa.select(
                sa.literal(correction_id, type_=items.c.document_id.type),
                items.c.line_no,
                items.c.product_id,
                -items.c.quantity,
                sa.null(),
                items.c.unit_price,
            ).where(items.c.document_id == header["id"]),
        )
    )
    posted = post_document(conn, correction_id)
    conn.execute(
        docs.update()
        .where(docs.c.id == header["id"])
        .values(status=DocumentStatus.CANCELLED.value, cancelled_at=utcnow())
    )
    return CancelResult(document=get_document(conn, header["id"]), correction=posted.document)


def post_inventory(
    conn: Connection, warehouse_code: str, counted: Mapping[str, Decimal], note: str | None = None
) -> Document | None:
    """Create and post an INW booking the differences between ``counted`` and the current stock of those SKUs;
    None (and no document) when every counted quantity equals the stock."""
    warehouse = warehouse_by_code(conn, warehouse_code)
    product_ids = product_ids_by_sku(conn, counted)
    unknown = sorted(set(counted) - set(product_ids))
    if unknown:
        raise errors.InvalidInput(f"Unknown SKU: {', '.join(unknown[:10])}")
    current = _lock_totals(conn, [(warehouse.id, pid) for pid in product_ids.values()])
    differing = [
        (sku, _decimal(qty, f"counted quantity of {sku}"), None)
        for sku, qty in sorted(counted.items())
        if quantize(qty) != current.get((warehouse.id, product_ids[sku]), Decimal(0))
    ]
    if not differing:
        return None
    draft = create_document(
        conn, type=DocumentType.INW, warehouse_code=warehouse_code, items=differing, note=note or "Stocktaking"
    )
    return post_document(conn, draft.id).document


def get_document(conn: Connection, number_or_id: str | int) -> Document:
    """One document with its lines; NotFound otherwise."""
    docs = models.documents
    source = models.warehouses.alias("source")
    target = models.warehouses.alias("target")
    header = conn.execute(
        sa.select(docs, source.c.code.label("source_code"), target.c.code.label("target_code"))
        .join(source, source.c.id == docs.c.warehouse_id)
        .outerjoin(target, target.c.id == docs.c.target_warehouse_id)
        .where(_identify(number_or_id))
    ).first()
    if header is None:
        raise errors.NotFound(f"Document {number_or_id} does not exist")
    h = header._mapping
    items = models.document_items
    lines = conn.execute(
        sa.select(items, models.products.c.sku)
        .join(models.products, models.products.c.id == items.c.product_id)
        .where(items.c.document_id == h["id"])
        .order_by(items.c.line_no)
    )
    corrects_number = None
    if h["corrects_document_id"] is not None:
        corrects_number = conn.execute(
            sa.select(docs.c.number).where(docs.c.id == h["corrects_document_id"])
        ).scalar_one()
    return Document(
        id=int(h["id"]),
        type=DocumentType(h["type"]),
        status=DocumentStatus(h["status"]),
        number=h["number"],
        warehouse_code=str(h["source_code"]),
        target_warehouse_code=h["target_code"],
        document_date=h["document_date"],
        contractor=h["contractor"],
        note=h["note"],
        created_at=h["created_at"],
        posted_at=h["posted_at"],
        cancelled_at=h["cancelled_at"],
        corrects_document_id=h["corrects_document_id"],
        corrects_number=corrects_number,
        items=tuple(
            DocumentItem(
                line_no=int(line.line_no),
                product_id=int(line.product_id),
                sku=str(line.sku),
                quantity=quantize(line.quantity),
                counted_quantity=None if line.counted_quantity is None else quantize(line.counted_quantity),
                unit_price=None if line.unit_price is None else quantize(line.unit_price),
            )
            for line in lines
        ),
    )


def list_documents(
    conn: Connection,
    *,
    type: str | None = None,
    status: str | None = None,
    since: date | None = None,
    limit: int | None = None,
) -> list[DocumentSummary]:
    """Documents newest first, filtered by type, status and document date (``since`` inclusive)."""
    docs, items = models.documents, models.document_items
    lines = (
        sa.select(sa.func.count())
        .select_from(items)
        .where(items.c.document_id == docs.c.id)
        .scalar_subquery()
        .label("lines")
    )
    query = sa.select(docs, lines).order_by(docs.c.document_date.desc(), docs.c.id.desc())
    if type:
        query = query.where(docs.c.type == _document_type(type).value)
    if status:
        try:
            query = query.where(docs.c.status == DocumentStatus(status.lower()).value)
        except ValueError:
            raise errors.InvalidInput(f"Unknown status {status!r} (draft, posted, cancelled)") from None
    if since:
        query = query.where(docs.c.document_date >= since)
    if limit is not None:
        query = query.limit(limit)
    by_id = warehouses_by_id(conn)
    return [
        DocumentSummary(
            id=int(r.id),
            type=DocumentType(r.type),
            status=DocumentStatus(r.status),
            number=r.number,
            warehouse_code=by_id[r.warehouse_id].code,
            target_warehouse_code=by_id[r.target_warehouse_id].code if r.target_warehouse_id else None,
            document_date=r.document_date,
            posted_at=r.posted_at,
            lines=int(r.lines),
        )
        for r in conn.execute(query)
    ]


# --- internals ---------------------------------------------------------------------------------------------------


def _document_type(value: str) -> DocumentType:
    try:
        return DocumentType(str(value).upper())
    except ValueError:
        names = ", ".join(t.value for t in DocumentType)
        raise errors.InvalidInput(f"Unknown document type {value!r} ({names})") from None


def _decimal(value: Decimal | int | str, what: str) -> Decimal:
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except ArithmeticError:
        raise errors.InvalidInput(f"Invalid {what}: {value!r}") from None
    if not number.is_finite():
        raise errors.InvalidInput(f"Invalid {what}: {value!r}")
    if number != number.quantize(Decimal("0.0001")) or abs(number) >= Decimal("1e14"):
        raise errors.InvalidInput(f"Invalid {what}: {value} (at most 4 decimal places and 14 digits)")
    return number


def _identify(number_or_id: str | int) -> sa.ColumnElement[bool]:
    docs = models.documents
    text = str(number_or_id).strip()
    if text.startswith("#"):
        text = text[1:]
    if text.isdigit():
        return docs.c.id == int(text)
    return docs.c.number == text


def _label(header: Mapping[str, Any]) -> str:
    return str(header["number"] or f"#{header['id']}")


def _insert_header(
    conn: Connection,
    *,
    doc_type: DocumentType,
    warehouse_id: int,
    target_warehouse_id: int | None,
    stock_sign: int,
    contractor: str | None,
    note: str | None,
    document_date: date,
    corrects_document_id: int | None = None,
) -> int:
    docs = models.documents
    result = conn.execute(
        docs.insert()
        .values(
            type=doc_type.value,
            status=DocumentStatus.DRAFT.value,
            warehouse_id=warehouse_id,
            target_warehouse_id=target_warehouse_id,
            stock_sign=stock_sign,
            corrects_document_id=corrects_document_id,
            document_date=document_date,
            contractor=contractor,
            note=note,
            created_at=utcnow(),
        )
        .returning(docs.c.id)
    )
    return int(result.scalar_one())


def _lock_document(conn: Connection, number_or_id: str | int) -> Mapping[str, Any]:
    docs = models.documents
    row = conn.execute(sa.select(docs).where(_identify(number_or_id)).with_for_update()).first()
    if row is None:
        raise errors.NotFound(f"Document {number_or_id} does not exist")
    return dict(row._mapping)


def _lock_totals(conn: Connection, keys: Sequence[StockKey]) -> dict[StockKey, Decimal]:
    """Lock the total rows of ``keys`` in (warehouse_id, product_id) order, creating missing ones; their
    quantities."""
    ordered = sorted(set(keys))
    if not ordered:
        return {}
    totals = models.stock_totals
    now = utcnow()
    if conn.dialect.name == "postgresql":
        # Missing rows are inserted in key order too: two postings inserting the same new keys wait on each other
        # in the same order instead of deadlocking.
        conn.execute(
            sa.text(
                "INSERT INTO warehouse_stock_totals (warehouse_id, product_id, quantity, updated_at) "
                "SELECT k.w, k.p, 0, :now FROM unnest(CAST(:w AS bigint[]), CAST(:p AS bigint[])) AS k(w, p) "
                "ORDER BY k.w, k.p ON CONFLICT DO NOTHING"
            ),
            {"w": [w for w, _ in ordered], "p": [p for _, p in ordered], "now": now},
        )
        found: Sequence[Any] = conn.execute(
            sa.text(
                "SELECT t.warehouse_id, t.product_id, t.quantity FROM warehouse_stock_totals t "
                "JOIN unnest(CAST(:w AS bigint[]), CAST(:p AS bigint[])) AS k(w, p) "
                "ON t.warehouse_id = k.w AND t.product_id = k.p "
                "ORDER BY t.warehouse_id, t.product_id FOR UPDATE OF t"
            ),
            {"w": [w for w, _ in ordered], "p": [p for _, p in ordered]},
        ).all()
    else:
        # SQLite: the IMMEDIATE transaction already holds the database's only write lock.
        conn.execute(
            insert(conn, totals).on_conflict_do_nothing(),
            [{"warehouse_id": w, "product_id": p, "quantity": 0, "updated_at": now} for w, p in ordered],
        )
        wanted = set(ordered)
        product_ids = sorted({p for _, p in ordered})
        rows_list: list[Any] = []
        for start in range(0, len(product_ids), 900):
            chunk = product_ids[start : start + 900]
            rows_list.extend(
                conn.execute(
                    sa.select(totals.c.warehouse_id, totals.c.product_id, totals.c.quantity).where(
                        totals.c.product_id.in_(chunk)
                    )
                )
            )
        found = [r for r in rows_list if (r[0], r[1]) in wanted]
    return {(int(w), int(p)): quantize(q) for w, p, q in found}


def _book(conn: Connection, header: Mapping[str, Any]) -> list[StockKey]:
    """Apply the document's lines to the stock totals under locks; the keys whose quantity moved."""
    items = models.document_items
    lines = conn.execute(
        sa.select(items.c.id, items.c.product_id, items.c.quantity, items.c.counted_quantity).where(
            items.c.document_id == header["id"]
        )
    ).all()
    source, target, sign = header["warehouse_id"], header["target_warehouse_id"], int(header["stock_sign"])
    keys = [(source, int(line.product_id)) for line in lines]
    if target is not None:
        keys += [(target, int(line.product_id)) for line in lines]
    current = _lock_totals(conn, keys)
    if header["type"] == DocumentType.INW:
        # A stocktaking books counted - current, taken from the locked totals, and the line keeps that difference.
        differences = [
            {"line_id": line.id, "diff": quantize(line.counted_quantity) - current[(source, int(line.product_id))]}
            for line in lines
        ]
        conn.execute(
            items.update().where(items.c.id == sa.bindparam("line_id")).values(quantity=sa.bindparam("diff")),
            differences,
        )
        quantities = {line.id: d["diff"] for line, d in zip(lines, differences, strict=True)}
    else:
        quantities = {line.id: quantize(line.quantity) for line in lines}
    delta: dict[StockKey, Decimal] = {}
    for line in lines:
        moved = quantities[line.id] * sign
        key = (source, int(line.product_id))
        delta[key] = delta.get(key, Decimal(0)) + moved
        if target is not None:
            tkey = (target, int(line.product_id))
            delta[tkey] = delta.get(tkey, Decimal(0)) - moved
    changed = sorted(key for key, value in delta.items() if value != 0)
    if not changed:
        return []
    _check_negative(conn, current, delta, changed)
    new_values = [{"w": w, "p": p, "q": current[(w, p)] + delta[(w, p)]} for w, p in changed]
    now = utcnow()
    if conn.dialect.name == "postgresql":
        conn.execute(
            sa.text(
                "UPDATE warehouse_stock_totals t SET quantity = v.q, updated_at = :now "
                "FROM unnest(CAST(:w AS bigint[]), CAST(:p AS bigint[]), CAST(:q AS numeric[])) AS v(w, p, q) "
                "WHERE t.warehouse_id = v.w AND t.product_id = v.p"
            ),
            {
                "w": [v["w"] for v in new_values],
                "p": [v["p"] for v in new_values],
                "q": [v["q"] for v in new_values],
                "now": now,
            },
        )
    else:
        totals = models.stock_totals
        conn.execute(
            totals.update()
            .where(totals.c.warehouse_id == sa.bindparam("w"), totals.c.product_id == sa.bindparam("p"))
            .values(quantity=sa.bindparam("q"), updated_at=now),
            new_values,
        )
    return changed


def _check_negative(
    conn: Connection, current: Mapping[StockKey, Decimal], delta: Mapping[StockKey, Decimal], keys: list[StockKey]
) -> None:
    short = [key for key in keys if delta[key] < 0 and current[key] + delta[key] < 0]
    if not short:
        return
    by_id = warehouses_by_id(conn)
    short = [key for key in short if not by_id[key[0]].allow_negative_stock]
    if not short:
        return
    skus = dict(
        conn.execute(
            sa.select(models.products.c.id, models.products.c.sku).where(
                models.products.c.id.in_({p for _, p in short})
            )
        ).all()
    )
    details = "; ".join(
        f"{skus[p]} in {by_id[w].code}: {_plain(current[(w, p)])} in stock, {_plain(-delta[(w, p)])} needed"
        for w, p in short[:10]
    )
    raise InsufficientStock(f"Not enough stock: {details}")


def _plain(value: Decimal) -> str:
    return format_quantity(value)


def _series(doc_type: DocumentType, document_date: date) -> str:
    return f"{doc_type.value}/{document_date.year:04d}/{document_date.month:02d}"


def _next_number(conn: Connection, series: str) -> int:
    """The next number of ``series``; the counter row stays locked until this transaction ends."""
    table = models.document_series
    statement = insert(conn, table).values(series=series, last_number=1)
    statement = statement.on_conflict_do_update(
        index_elements=["series"], set_={"last_number": table.c.last_number + 1}
    ).returning(table.c.last_number)
    return int(conn.execute(statement).scalar_one())


def create_and_post(
    conn: Connection,
    *,
    type: str,
    warehouse_code: str,
    items: Sequence[ItemInput],
    target_warehouse_code: str | None = None,
    contractor: str | None = None,
    note: str | None = None,
    post: bool = True,
) -> Document:
    """``create_document`` and, with ``post``, ``post_document`` in the same transaction (what the CLI does)."""
    document_id = _create_draft(
        conn,
        type=type,
        warehouse_code=warehouse_code,
        items=items,
        target_warehouse_code=target_warehouse_code,
        contractor=contractor,
        note=note,
        document_date=None,
    )
    return post_document(conn, document_id).document if post else get_document(conn, document_id)


def format_quantity(value: Decimal | None) -> str:
    """``10.5000`` → ``10.5``, ``100.0000`` → ``100`` (exact; no float)."""
    if value is None:
        return ""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text
