"""Integrations (PrestaShop shops), product links, sync runs and their items.

Revision ID: 0004_integrations
Revises: 0003_imports
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_integrations"
down_revision: str | Sequence[str] | None = "0003_imports"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "integrations",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("url", sa.String(1024), nullable=False),
        sa.Column("api_key", sa.String(255), nullable=False),
        sa.Column("shop_id", sa.Integer(), nullable=True),
        sa.Column("warehouse_codes", sa.String(1024), nullable=False, server_default=""),
        sa.Column("stock_buffer", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("sync_interval_minutes", sa.Integer(), nullable=False, server_default="60"),
        sa.Column("concurrency", sa.Integer(), nullable=False, server_default="4"),
        sa.Column("timeout_seconds", sa.Float(), nullable=False, server_default="30"),
        sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("last_synced_at", sa.DateTime(), nullable=True),
        sa.Column("linked_at", sa.DateTime(), nullable=True),
        sa.Column("sync_pending_since", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_integrations")),
        sa.UniqueConstraint("name", name=op.f("uq_integrations_name")),
    )
    op.create_table(
        "integration_product_links",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("integration_id", BigId, nullable=False),
        sa.Column("product_id", BigId, nullable=False),
        sa.Column("sku", sa.String(255), nullable=False),
        sa.Column("matched_by", sa.String(16), nullable=False),
        sa.Column("shop_product_id", sa.Integer(), nullable=False),
        sa.Column("shop_combination_id", sa.Integer(), nullable=False),
        sa.Column("stock_available_id", sa.Integer(), nullable=False),
        sa.Column("last_quantity", sa.Integer(), nullable=True),
        sa.Column("linked_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["integration_id"],
            ["integrations.id"],
            name=op.f("fk_integration_product_links_integration_id_integrations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.id"],
            name=op.f("fk_integration_product_links_product_id_products"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_integration_product_links")),
        sa.UniqueConstraint(
            "integration_id", "product_id", name=op.f("uq_integration_product_links_integration_id_product_id")
        ),
        sa.UniqueConstraint(
            "integration_id",
            "stock_available_id",
            name=op.f("uq_integration_product_links_integration_id_stock_available_id"),
        ),
    )
    op.create_index("ix_integration_product_links_product_id", "integration_product_links", ["product_id"])

    op.create_table(
        "integration_sync_runs",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("integration_id", BigId, nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("checked", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("changed", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("failed", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("message", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["integration_id"],
            ["integrations.id"],
            name=op.f("fk_integration_sync_runs_integration_id_integrations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_integration_sync_runs")),
    )
    op.create_index(
        "ix_integration_sync_runs_integration_id_started_at", "integration_sync_runs", ["integration_id", "started_at"]
    )
    op.create_table(
        "integration_sync_items",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("run_id", BigId, nullable=False),
        sa.Column("sku", sa.String(255), nullable=False),
        sa.Column("stock_available_id", sa.Integer(), nullable=True),
        sa.Column("from_quantity", sa.Integer(), nullable=True),
        sa.Column("to_quantity", sa.Integer(), nullable=True),
        sa.Column("result", sa.String(16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["integration_sync_runs.id"],
            name=op.f("fk_integration_sync_items_run_id_integration_sync_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_integration_sync_items")),
    )
    op.create_index("ix_integration_sync_items_run_id", "integration_sync_items", ["run_id"])


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("integration_sync_items")
    op.drop_table("integration_sync_runs")
    op.drop_table("integration_product_links")
    op.drop_table("integrations")
