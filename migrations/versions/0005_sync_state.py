"""Sync state per integration: the shop's webservice version (decides PATCH or GET-modify-PUT for stock writes) and
when every link was last compared with the shop.

Revision ID: 0005_sync_state
Revises: 0004_integrations
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_sync_state"
down_revision: str | Sequence[str] | None = "0004_integrations"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("integrations") as batch:
        batch.add_column(sa.Column("shop_version", sa.String(32), nullable=True))
        batch.add_column(sa.Column("last_reconciled_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("integrations") as batch:
        batch.drop_column("last_reconciled_at")
        batch.drop_column("shop_version")
