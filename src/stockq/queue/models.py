"""The queue's tables: jobs, failed_jobs, live workers and queue signals.

Times are epoch seconds (as Laravel keeps them), taken from the database's clock so that workers on several hosts
agree. A reserved job carries its lease: the worker that holds it (`reserved_by`) and when the lease runs out
(`lease_expires_at`); the holder renews the lease while the job runs.
"""

from __future__ import annotations

import sqlalchemy as sa

from stockq.db import metadata

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

jobs = sa.Table(
    "jobs",
    metadata,
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
    # Dequeue reads the first claimable rows of one queue in (available_at, id) order: O(log n) whatever the
    # number of pending or delayed rows. Reserved rows leave this partial index while they are held.
    sa.Index(
        "ix_jobs_pending",
        "queue",
        "available_at",
        "id",
        postgresql_where=sa.text("reserved_by IS NULL"),
        sqlite_where=sa.text("reserved_by IS NULL"),
    ),
    sa.Index(
        "ix_jobs_leases",
        "queue",
        "lease_expires_at",
        postgresql_where=sa.text("reserved_by IS NOT NULL"),
        sqlite_where=sa.text("reserved_by IS NOT NULL"),
    ),
    sa.Index(
        "ix_jobs_reserved_by",
        "reserved_by",
        postgresql_where=sa.text("reserved_by IS NOT NULL"),
        sqlite_where=sa.text("reserved_by IS NOT NULL"),
    ),
)

failed_jobs = sa.Table(
    "failed_jobs",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("uuid", sa.String(36), nullable=False, unique=True),
    sa.Column("connection", sa.String(255), nullable=False),
    sa.Column("queue", sa.String(255), nullable=False),
    sa.Column("payload", sa.Text(), nullable=False),
    sa.Column("exception", sa.Text(), nullable=False),
    sa.Column("failed_at", sa.DateTime(), nullable=False),
    sa.Index("ix_failed_jobs_queue_failed_at", "queue", "failed_at"),
    sa.Index("ix_failed_jobs_failed_at", "failed_at"),
)

queue_workers = sa.Table(
    "queue_workers",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("hostname", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer(), nullable=False),
    sa.Column("queues", sa.String(1024), nullable=False),
    sa.Column("started_at", sa.BigInteger(), nullable=False),
    sa.Column("heartbeat_at", sa.BigInteger(), nullable=False),
    sa.Column("current_job", sa.String(36), nullable=True),
    sa.Column("status", sa.String(32), nullable=False, server_default="running"),
    sa.Column("jobs_processed", sa.Integer(), nullable=False, server_default="0"),
)

queue_signals = sa.Table(
    "queue_signals",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(255), nullable=False),
    sa.Column("updated_at", sa.BigInteger(), nullable=False),
)
