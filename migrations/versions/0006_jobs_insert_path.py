"""The jobs table's insert path: no index on jobs.uuid (nothing looks jobs up by uuid; on PostgreSQL the random
uuids in a text index under the database's collation cost more than the rest of a bulk insert), and on PostgreSQL
one notification trigger per INSERT statement instead of one per inserted row.

Revision ID: 0006_jobs_insert_path
Revises: 0005_sync_state
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0006_jobs_insert_path"
down_revision: str | Sequence[str] | None = "0005_sync_state"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.drop_index("ix_jobs_uuid", table_name="jobs")
    if op.get_bind().dialect.name == "postgresql":
        # Transition tables need a trigger with a single event, so inserts and releases get a trigger each.
        op.execute(
            """
            CREATE FUNCTION stockq_notify_inserted_jobs() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                PERFORM pg_notify('stockq_jobs', queue)
                FROM (SELECT DISTINCT queue FROM inserted_jobs WHERE reserved_by IS NULL) AS queues;
                RETURN NULL;
            END $$
            """
        )
        op.execute("DROP TRIGGER jobs_notify ON jobs")
        op.execute(
            """
            CREATE TRIGGER jobs_notify_insert AFTER INSERT ON jobs REFERENCING NEW TABLE AS inserted_jobs
            FOR EACH STATEMENT EXECUTE FUNCTION stockq_notify_inserted_jobs()
            """
        )
        op.execute(
            """
            CREATE TRIGGER jobs_notify AFTER UPDATE OF available_at ON jobs
            FOR EACH ROW WHEN (NEW.reserved_by IS NULL) EXECUTE FUNCTION stockq_notify_job()
            """
        )


def downgrade() -> None:
    """Downgrade schema."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER jobs_notify ON jobs")
        op.execute("DROP TRIGGER jobs_notify_insert ON jobs")
        op.execute("DROP FUNCTION stockq_notify_inserted_jobs()")
        op.execute(
            """
            CREATE TRIGGER jobs_notify AFTER INSERT OR UPDATE OF available_at ON jobs
            FOR EACH ROW WHEN (NEW.reserved_by IS NULL) EXECUTE FUNCTION stockq_notify_job()
            """
        )
    op.create_index("ix_jobs_uuid", "jobs", ["uuid"])
