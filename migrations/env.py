"""Alembic environment: the URL comes from stockq's Settings, never from an ini file."""

from __future__ import annotations

from alembic import context

import stockq.models  # noqa: F401  (registers every table on the metadata)
from stockq import db
from stockq.settings import Settings

target_metadata = db.metadata


def run_migrations_offline() -> None:
    context.configure(
        url=db.normalize_url(Settings.from_env().database_url),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = db.create(Settings.from_env().database_url)
    with engine.begin() as conn:
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
