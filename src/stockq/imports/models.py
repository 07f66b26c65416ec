"""Tables of the imports domain (migration 0003_imports).

- ``import_profiles``: one feed (local file or http/https URL, CSV or XML) with its parsing options and mapping
  (JSON text), match key, optional stock warehouse, schedule and the conditional-GET validators of its last fetch.
  ``job_queued_at`` marks a queued or running ExecuteIntegrationTask, so run-imports never queues a second one.
- ``import_runs``: one row per run, with its status and counts.
- ``import_rejections``: the records a run rejected (record or line number, reason), capped per run.
- ``import_prices``: the last imported price per (profile, SKU); products carry no price column.
"""

from __future__ import annotations

import sqlalchemy as sa

from stockq import db

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

import_profiles = sa.Table(
    "import_profiles",
    db.metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(255), nullable=False, unique=True),
    sa.Column("source", sa.String(2048), nullable=False),
    sa.Column("format", sa.String(8), nullable=False),
    sa.Column("preset", sa.String(32), nullable=True),
    sa.Column("options", sa.Text(), nullable=False, server_default="{}"),
    sa.Column("mapping", sa.Text(), nullable=False, server_default="{}"),
    sa.Column("match_key", sa.String(8), nullable=False, server_default="sku"),
    sa.Column("stock_warehouse", sa.String(32), nullable=True),
    sa.Column("interval_minutes", sa.Integer(), nullable=False, server_default="60"),
    sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()),
    sa.Column("next_run_at", sa.DateTime(), nullable=True),
    sa.Column("last_run_at", sa.DateTime(), nullable=True),
    sa.Column("job_queued_at", sa.DateTime(), nullable=True),
    sa.Column("etag", sa.String(255), nullable=True),
    sa.Column("last_modified", sa.String(64), nullable=True),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("updated_at", sa.DateTime(), nullable=False),
    sa.Index("ix_import_profiles_active_next_run_at", "active", "next_run_at"),
)

import_runs = sa.Table(
    "import_runs",
    db.metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("profile_id", BigId, sa.ForeignKey("import_profiles.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("started_at", sa.DateTime(), nullable=False),
    sa.Column("finished_at", sa.DateTime(), nullable=True),
    sa.Column("records_read", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("created", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("updated", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("unchanged", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("rejected", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("stock_document", sa.String(48), nullable=True),
    sa.Column("message", sa.Text(), nullable=True),
)

import_rejections = sa.Table(
    "import_rejections",
    db.metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("run_id", BigId, sa.ForeignKey("import_runs.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("record_no", sa.Integer(), nullable=False),
    sa.Column("reason", sa.Text(), nullable=False),
)

import_prices = sa.Table(
    "import_prices",
    db.metadata,
    # No foreign keys, deliberately: per-row FK checks tripled the cost of a million-row import on PostgreSQL.
    # remove_profile deletes a profile's prices itself; a price of a SKU that no longer exists is simply unused.
    sa.Column("profile_id", BigId, primary_key=True, autoincrement=False),
    sa.Column("sku", sa.String(64), primary_key=True),
    sa.Column("price", sa.Numeric(18, 4), nullable=False),
    sa.Column("updated_at", sa.DateTime(), nullable=False),
)
