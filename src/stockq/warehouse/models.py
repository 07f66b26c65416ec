"""The warehouse ledger's tables (Core ``Table`` objects on ``stockq.db.metadata``; migration 0002_warehouse).

- ``products``: one row per SKU (unique), with EAN, name, unit and an active flag.
- ``warehouses``: one row per code (unique); ``allow_negative_stock`` lets issues go below zero.
- ``warehouse_document_series``: one counter row per numbering series (``PZ/2026/11``); posting locks it.
- ``warehouse_documents``: header; ``number`` is NULL while the document is a draft (numbers are assigned at
  posting, so abandoned drafts leave no gaps). ``stock_sign`` is the sign of the effect on ``warehouse_id``
  (+1 receipts and stocktaking, -1 issues and MM); the target warehouse of an MM gets the opposite sign.
  A correction (KOR) copies the sign of the document it corrects and holds negated quantities.
- ``warehouse_document_items``: lines; ``quantity`` is what moves (for INW the difference booked at posting,
  ``counted_quantity`` what was counted).
- ``warehouse_stock_totals``: the cache per (warehouse, product) that posting keeps current and
  ``stock.recalculate`` rebuilds from the ledger (items of every document that was posted: posted_at is set).
"""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa

from stockq.db import metadata

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _quantity() -> sa.Numeric[Decimal]:
    return sa.Numeric(18, 4)


products = sa.Table(
    "products",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("sku", sa.String(64), nullable=False, unique=True),
    sa.Column("ean", sa.String(32), nullable=True, index=True),
    sa.Column("name", sa.String(255), nullable=False, server_default=""),
    sa.Column("unit", sa.String(16), nullable=False, server_default="szt"),
    sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("updated_at", sa.DateTime(), nullable=False),
)

warehouses = sa.Table(
    "warehouses",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("code", sa.String(32), nullable=False, unique=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("allow_negative_stock", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("created_at", sa.DateTime(), nullable=False),
)

document_series = sa.Table(
    "warehouse_document_series",
    metadata,
    sa.Column("series", sa.String(32), primary_key=True),
    sa.Column("last_number", sa.Integer(), nullable=False, server_default="0"),
)

documents = sa.Table(
    "warehouse_documents",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("type", sa.String(8), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, server_default="draft"),
    sa.Column("series", sa.String(32), nullable=True),
    sa.Column("sequence", sa.Integer(), nullable=True),
    sa.Column("number", sa.String(48), nullable=True, unique=True),
    sa.Column("warehouse_id", BigId, sa.ForeignKey("warehouses.id"), nullable=False),
    sa.Column("target_warehouse_id", BigId, sa.ForeignKey("warehouses.id"), nullable=True),
    sa.Column("stock_sign", sa.SmallInteger(), nullable=False),
    sa.Column("corrects_document_id", BigId, sa.ForeignKey("warehouse_documents.id"), nullable=True, index=True),
    sa.Column("document_date", sa.Date(), nullable=False),
    sa.Column("contractor", sa.String(255), nullable=True),
    sa.Column("note", sa.Text(), nullable=True),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("posted_at", sa.DateTime(), nullable=True),
    sa.Column("cancelled_at", sa.DateTime(), nullable=True),
    sa.UniqueConstraint("series", "sequence"),
    sa.Index("ix_warehouse_documents_status_type", "status", "type"),
)

document_items = sa.Table(
    "warehouse_document_items",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column(
        "document_id", BigId, sa.ForeignKey("warehouse_documents.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    sa.Column("line_no", sa.Integer(), nullable=False),
    sa.Column("product_id", BigId, sa.ForeignKey("products.id"), nullable=False, index=True),
    sa.Column("quantity", _quantity(), nullable=False),
    sa.Column("counted_quantity", _quantity(), nullable=True),
    sa.Column("unit_price", _quantity(), nullable=True),
)

stock_totals = sa.Table(
    "warehouse_stock_totals",
    metadata,
    sa.Column("warehouse_id", BigId, sa.ForeignKey("warehouses.id"), primary_key=True),
    sa.Column("product_id", BigId, sa.ForeignKey("products.id"), primary_key=True, index=True),
    sa.Column("quantity", _quantity(), nullable=False, server_default="0"),
    sa.Column("updated_at", sa.DateTime(), nullable=False),
)
