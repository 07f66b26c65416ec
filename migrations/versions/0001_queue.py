"""Queue core: jobs, failed_jobs, queue_workers, queue_signals.

Revision ID: 0001_queue
Revises:
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001_queue"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "jobs",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("uuid", sa.String(36), nullable=False),
        sa.Column("queue", sa.String(255), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("exceptions", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("reserved_at", sa.BigInteger(), nullable=True),
        sa.Column("reserved_by", sa.String(64), nullable=True),
        sa.Column("lease_expires_at", sa.BigInteger(), nullable=True),
        sa.Column("available_at", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    op.create_index(
        "ix_jobs_pending",
        "jobs",
        ["queue", "available_at", "id"],
        postgresql_where=sa.text("reserved_by IS NULL"),
        sqlite_where=sa.text("reserved_by IS NULL"),
    )
    op.create_index(
        "ix_jobs_leases",
        "jobs",
        ["queue", "lease_expires_at"],
        postgresql_where=sa.text("reserved_by IS NOT NULL"),
        sqlite_where=sa.text("reserved_by IS NOT NULL"),
    )
    op.create_index(
        "ix_jobs_reserved_by",
        "jobs",
        ["reserved_by"],
        postgresql_where=sa.text("reserved_by IS NOT NULL"),
        sqlite_where=sa.text("reserved_by IS NOT NULL"),
    )
    op.create_index("ix_jobs_uuid", "jobs", ["uuid"])

    op.create_table(
        "failed_jobs",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("uuid", sa.String(36), nullable=False),
        sa.Column("connection", sa.String(255), nullable=False),
        sa.Column("queue", sa.String(255), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("exception", sa.Text(), nullable=False),
        sa.Column("failed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_failed_jobs")),
        sa.UniqueConstraint("uuid", name=op.f("uq_failed_jobs_uuid")),
    )
    op.create_index("ix_failed_jobs_queue_failed_at", "failed_jobs", ["queue", "failed_at"])
    op.create_index("ix_failed_jobs_failed_at", "failed_jobs", ["failed_at"])

    op.create_table(
        "queue_workers",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("hostname", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("queues", sa.String(1024), nullable=False),
        sa.Column("started_at", sa.BigInteger(), nullable=False),
        sa.Column("heartbeat_at", sa.BigInteger(), nullable=False),
        sa.Column("current_job", sa.String(36), nullable=True),
        sa.Column("status", sa.String(32), nullable=False, server_default="running"),
        sa.Column("jobs_processed", sa.Integer(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queue_workers")),
    )
    op.create_table(
        "queue_signals",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.String(255), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_queue_signals")),
    )

    if op.get_bind().dialect.name == "postgresql":
        # An idle worker LISTENs on stockq_jobs and starts a new job within milliseconds of its commit. PostgreSQL
        # folds identical notifications of one transaction into one, so a bulk dispatch sends one per queue.
        op.execute(
            """
            CREATE FUNCTION stockq_notify_job() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                PERFORM pg_notify('stockq_jobs', NEW.queue);
                RETURN NULL;
            END $$
            """
        )
        op.execute(
            """
            CREATE TRIGGER jobs_notify AFTER INSERT OR UPDATE OF available_at ON jobs
            FOR EACH ROW WHEN (NEW.reserved_by IS NULL) EXECUTE FUNCTION stockq_notify_job()
            """
        )


def downgrade() -> None:
    """Downgrade schema."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS jobs_notify ON jobs")
        op.execute("DROP FUNCTION IF EXISTS stockq_notify_job()")
    op.drop_table("queue_signals")
    op.drop_table("queue_workers")
    op.drop_table("failed_jobs")
    op.drop_table("jobs")
