"""What every command needs: the settings, and an engine whose schema has been checked."""

from __future__ import annotations

from dataclasses import dataclass, field

import typer
from sqlalchemy.engine import Engine

from stockq import db, schema
from stockq.settings import Settings


@dataclass
class AppState:
    settings: Settings
    _engine: Engine | None = field(default=None, repr=False)

    def engine(self, *, check_schema: bool = True) -> Engine:
        if self._engine is None:
            self._engine = db.get_engine(self.settings.database_url)
        if check_schema:
            schema.ensure_current(self._engine)
        return self._engine


def state(ctx: typer.Context) -> AppState:
    root = ctx.find_root()
    if not isinstance(root.obj, AppState):
        root.obj = AppState(settings=Settings.from_env())
    return root.obj
