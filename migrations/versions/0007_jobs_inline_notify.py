"""Single dispatches on PostgreSQL notify in their own INSERT statement; the jobs table's insert trigger skips a
statement that did.

The statement-level trigger (0006) costs a durable single-row INSERT ~45 µs of server time (the transition table,
the PL/pgSQL call and its query), about 15% of the whole commit. The single-dispatch INSERT now calls
``pg_notify('stockq_jobs', queue)`` itself and sets the transaction-local setting ``stockq.insert_notified`` to
``on``; the trigger's WHEN clause, evaluated once per statement after its rows are inserted, then skips the
function. Every other insert (bulk dispatch, COPY, inserts made with SQL or by other clients) leaves the setting
unset and is notified by the trigger as before; releases keep their row trigger.

Revision ID: 0007_jobs_inline_notify
Revises: 0006_jobs_insert_path
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007_jobs_inline_notify"
down_revision: str | Sequence[str] | None = "0006_jobs_insert_path"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _create_insert_trigger(when: str) -> None:
    op.execute(
        f"""
        CREATE TRIGGER jobs_notify_insert AFTER INSERT ON jobs REFERENCING NEW TABLE AS inserted_jobs
        FOR EACH STATEMENT {when} EXECUTE FUNCTION stockq_notify_inserted_jobs()
        """
    )


def upgrade() -> None:
    """Upgrade schema."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER jobs_notify_insert ON jobs")
        # Unset (NULL) in a session that never set it, '' after a transaction that set it locally has ended.
        _create_insert_trigger("WHEN (current_setting('stockq.insert_notified', true) IS DISTINCT FROM 'on')")


def downgrade() -> None:
    """Downgrade schema."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER jobs_notify_insert ON jobs")
        _create_insert_trigger("")
