"""Imports: import profiles, runs, rejected records and imported prices.

Revision ID: 0003_imports
Revises: 0002_warehouse
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_imports"
down_revision: str | Sequence[str] | None = "0002_warehouse"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "import_profiles",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(255), nullable=False),
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
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_profiles")),
        sa.UniqueConstraint("name", name=op.f("uq_import_profiles_name")),
    )
    op.create_index("ix_import_profiles_active_next_run_at", "import_profiles", ["active", "next_run_at"])
    op.create_table(
        "import_runs",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("profile_id", BigId, nullable=False),
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
        sa.ForeignKeyConstraint(
            ["profile_id"],
            ["import_profiles.id"],
            name=op.f("fk_import_runs_profile_id_import_profiles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_runs")),
    )
    op.create_index(op.f("ix_import_runs_profile_id"), "import_runs", ["profile_id"])
    op.create_table(
        "import_rejections",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("run_id", BigId, nullable=False),
        sa.Column("record_no", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["import_runs.id"], name=op.f("fk_import_rejections_run_id_import_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_rejections")),
    )
    op.create_index(op.f("ix_import_rejections_run_id"), "import_rejections", ["run_id"])
    op.create_table(
        "import_prices",
        sa.Column("profile_id", BigId, autoincrement=False, nullable=False),
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("price", sa.Numeric(18, 4), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("profile_id", "sku", name=op.f("pk_import_prices")),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("import_prices")
    op.drop_index(op.f("ix_import_rejections_run_id"), table_name="import_rejections")
    op.drop_table("import_rejections")
    op.drop_index(op.f("ix_import_runs_profile_id"), table_name="import_runs")
    op.drop_table("import_runs")
    op.drop_index("ix_import_profiles_active_next_run_at", table_name="import_profiles")
    op.drop_table("import_profiles")
