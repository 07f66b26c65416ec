"""Tables of the integrations domain (migrations 0004_integrations, 0005_sync_state)."""

from __future__ import annotations

import sqlalchemy as sa

from stockq import db

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

integrations = sa.Table(
    "integrations",
    db.metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(255), nullable=False, unique=True),
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
    # PSWS-Version of the shop's last answer: 8.0+ takes a PATCH of the quantity alone, older needs GET-modify-PUT.
    sa.Column("shop_version", sa.String(32), nullable=True),
    # The last run that compared every link with the shop's own quantity (other runs trust last_quantity).
    sa.Column("last_reconciled_at", sa.DateTime(), nullable=True),
    # Set (epoch seconds) when a coalesced SyncInventory job is queued; cleared when that job starts.
    sa.Column("sync_pending_since", sa.BigInteger(), nullable=True),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("updated_at", sa.DateTime(), nullable=False),
)

product_links = sa.Table(
    "integration_product_links",
    db.metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("integration_id", BigId, sa.ForeignKey("integrations.id", ondelete="CASCADE"), nullable=False),
    sa.Column("product_id", BigId, sa.ForeignKey("products.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("sku", sa.String(255), nullable=False),
    sa.Column("matched_by", sa.String(16), nullable=False),
    sa.Column("shop_product_id", sa.Integer(), nullable=False),
    sa.Column("shop_combination_id", sa.Integer(), nullable=False),
    sa.Column("stock_available_id", sa.Integer(), nullable=False),
    # The shop's quantity as of the last sync (written or read back); None: not known, the next sync reads it.
    sa.Column("last_quantity", sa.Integer(), nullable=True),
    sa.Column("linked_at", sa.DateTime(), nullable=False),
    sa.UniqueConstraint("integration_id", "product_id"),
    sa.UniqueConstraint("integration_id", "stock_available_id"),
)

sync_runs = sa.Table(
    "integration_sync_runs",
    db.metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("integration_id", BigId, sa.ForeignKey("integrations.id", ondelete="CASCADE"), nullable=False),
    sa.Column("started_at", sa.DateTime(), nullable=False),
    sa.Column("finished_at", sa.DateTime(), nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("dry_run", sa.Boolean(), nullable=False),
    sa.Column("checked", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("changed", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("failed", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("message", sa.Text(), nullable=True),
    sa.Index("ix_integration_sync_runs_integration_id_started_at", "integration_id", "started_at"),
)

sync_items = sa.Table(
    "integration_sync_items",
    db.metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column(
        "run_id", BigId, sa.ForeignKey("integration_sync_runs.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    sa.Column("sku", sa.String(255), nullable=False),
    sa.Column("stock_available_id", sa.Integer(), nullable=True),
    sa.Column("from_quantity", sa.Integer(), nullable=True),
    sa.Column("to_quantity", sa.Integer(), nullable=True),
    sa.Column("result", sa.String(16), nullable=False),
    sa.Column("error", sa.Text(), nullable=True),
)
