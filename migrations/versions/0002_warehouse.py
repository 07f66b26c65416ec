"""Warehouse ledger: products, warehouses, document series, documents and items, stock totals.

Revision ID: 0002_warehouse
Revises: 0001_queue
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_warehouse"
down_revision: str | Sequence[str] | None = "0001_queue"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Quantity = sa.Numeric(18, 4)


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "products",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("ean", sa.String(32), nullable=True),
        sa.Column("name", sa.String(255), nullable=False, server_default=""),
        sa.Column("unit", sa.String(16), nullable=False, server_default="szt"),
        sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_products")),
        sa.UniqueConstraint("sku", name=op.f("uq_products_sku")),
    )
    op.create_index("ix_products_ean", "products", ["ean"])

    op.create_table(
        "warehouses",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("allow_negative_stock", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_warehouses")),
        sa.UniqueConstraint("code", name=op.f("uq_warehouses_code")),
    )

    op.create_table(
        "warehouse_document_series",
        sa.Column("series", sa.String(32), nullable=False),
        sa.Column("last_number", sa.Integer(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("series", name=op.f("pk_warehouse_document_series")),
    )

    op.create_table(
        "warehouse_documents",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("type", sa.String(8), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="draft"),
        sa.Column("series", sa.String(32), nullable=True),
        sa.Column("sequence", sa.Integer(), nullable=True),
        sa.Column("number", sa.String(48), nullable=True),
        sa.Column("warehouse_id", BigId, nullable=False),
        sa.Column("target_warehouse_id", BigId, nullable=True),
        sa.Column("stock_sign", sa.SmallInteger(), nullable=False),
        sa.Column("corrects_document_id", BigId, nullable=True),
        sa.Column("document_date", sa.Date(), nullable=False),
        sa.Column("contractor", sa.String(255), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("posted_at", sa.DateTime(), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_warehouse_documents")),
        sa.ForeignKeyConstraint(
            ["warehouse_id"], ["warehouses.id"], name=op.f("fk_warehouse_documents_warehouse_id_warehouses")
        ),
        sa.ForeignKeyConstraint(
            ["target_warehouse_id"],
            ["warehouses.id"],
            name=op.f("fk_warehouse_documents_target_warehouse_id_warehouses"),
        ),
        sa.ForeignKeyConstraint(
            ["corrects_document_id"],
            ["warehouse_documents.id"],
            name=op.f("fk_warehouse_documents_corrects_document_id_warehouse_documents"),
        ),
        sa.UniqueConstraint("number", name=op.f("uq_warehouse_documents_number")),
        sa.UniqueConstraint("series", "sequence", name=op.f("uq_warehouse_documents_series_sequence")),
    )
    op.create_index("ix_warehouse_documents_status_type", "warehouse_documents", ["status", "type"])
    op.create_index("ix_warehouse_documents_corrects_document_id", "warehouse_documents", ["corrects_document_id"])

    op.create_table(
        "warehouse_document_items",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("document_id", BigId, nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("product_id", BigId, nullable=False),
        sa.Column("quantity", Quantity, nullable=False),
        sa.Column("counted_quantity", Quantity, nullable=True),
        sa.Column("unit_price", Quantity, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_warehouse_document_items")),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["warehouse_documents.id"],
            name=op.f("fk_warehouse_document_items_document_id_warehouse_documents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["product_id"], ["products.id"], name=op.f("fk_warehouse_document_items_product_id_products")
        ),
    )
    op.create_index("ix_warehouse_document_items_document_id", "warehouse_document_items", ["document_id"])
    op.create_index("ix_warehouse_document_items_product_id", "warehouse_document_items", ["product_id"])

    op.create_table(
        "warehouse_stock_totals",
        sa.Column("warehouse_id", BigId, nullable=False),
        sa.Column("product_id", BigId, nullable=False),
        sa.Column("quantity", Quantity, nullable=False, server_default="0"),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("warehouse_id", "product_id", name=op.f("pk_warehouse_stock_totals")),
        sa.ForeignKeyConstraint(
            ["warehouse_id"], ["warehouses.id"], name=op.f("fk_warehouse_stock_totals_warehouse_id_warehouses")
        ),
        sa.ForeignKeyConstraint(
            ["product_id"], ["products.id"], name=op.f("fk_warehouse_stock_totals_product_id_products")
        ),
    )
    op.create_index("ix_warehouse_stock_totals_product_id", "warehouse_stock_totals", ["product_id"])


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("warehouse_stock_totals")
    op.drop_table("warehouse_document_items")
    op.drop_table("warehouse_documents")
    op.drop_table("warehouse_document_series")
    op.drop_table("warehouses")
    op.drop_table("products")
