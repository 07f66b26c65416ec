from __future__ import annotations

import sqlalchemy as sa
from alembic import command

from stockq import db, schema


def test_migrations_reach_head_and_match_models(db_url: str) -> None:
    engine = db.get_engine(db_url)
    state = schema.status(engine)
    assert state.up_to_date
    with engine.begin() as conn:
        command.check(schema.alembic_config(conn))  # raises when models and migrations drift


def test_migrations_downgrade_and_upgrade_again(db_url: str) -> None:
    engine = db.get_engine(db_url)
    with engine.begin() as conn:
        command.downgrade(schema.alembic_config(conn), "base")
    assert "jobs" not in sa.inspect(engine).get_table_names()
    assert schema.upgrade(engine).up_to_date
    assert "jobs" in sa.inspect(engine).get_table_names()
