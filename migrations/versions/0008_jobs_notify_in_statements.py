"""stockq's inserts into jobs notify in their own statements; the jobs table's insert trigger is dropped.

Since 0007 a single dispatch notified in its INSERT and set a transaction-local setting for the statement
trigger's WHEN to skip on. Skipped, the trigger still cost a durable single insert ~19 µs of server time (the
transition table is captured whatever the WHEN says, and the setting is saved and restored): about a tenth of
the dispatch. Every path that inserts jobs now sends ``pg_notify('stockq_jobs', queue)`` itself: the single
dispatch, small batches and retries in their INSERT, COPY batches in one statement after the COPY. Rows inserted into jobs by other means (plain SQL, another program) are not
announced: idle workers find them at their next poll (``--sleep``, 3 s by default), as Laravel's always do.
Releases keep their row trigger (0006).

Revision ID: 0008_jobs_notify_in_statements
Revises: 0007_jobs_inline_notify
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0008_jobs_notify_in_statements"
down_revision: str | Sequence[str] | None = "0007_jobs_inline_notify"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER jobs_notify_insert ON jobs")
        op.execute("DROP FUNCTION stockq_notify_inserted_jobs()")


def downgrade() -> None:
    """Downgrade schema."""
    if op.get_bind().dialect.name == "postgresql":
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
        op.execute(
            """
            CREATE TRIGGER jobs_notify_insert AFTER INSERT ON jobs REFERENCING NEW TABLE AS inserted_jobs
            FOR EACH STATEMENT WHEN (current_setting('stockq.insert_notified', true) IS DISTINCT FROM 'on')
            EXECUTE FUNCTION stockq_notify_inserted_jobs()
            """
        )
