"""Reading the sync logs: one row per run, with the items it changed or failed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from stockq import errors
from stockq.integrations import models


@dataclass(frozen=True, slots=True)
class RunLog:
    id: int
    integration_id: int
    integration: str
    started_at: Any
    finished_at: Any
    status: str
    dry_run: bool
    checked: int
    changed: int
    failed: int
    message: str | None
    items: tuple[dict[str, Any], ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "integration_id": self.integration_id,
            "integration": self.integration,
            "started_at": self.started_at.isoformat(sep=" ") if self.started_at else None,
            "finished_at": self.finished_at.isoformat(sep=" ") if self.finished_at else None,
            "status": self.status,
            "dry_run": self.dry_run,
            "checked": self.checked,
            "changed": self.changed,
            "failed": self.failed,
            "message": self.message,
            "items": list(self.items),
        }


def sync_logs(
    engine: Engine, *, integration_id: int | None = None, failed_only: bool = False, limit: int = 20
) -> list[RunLog]:
    """The latest ``limit`` runs (newest first) with their items; ``failed_only``: runs that failed or had failed
    items, and only those items."""
    if limit < 1:
        raise errors.InvalidInput("--limit must be at least 1")
    runs, integrations, items = models.sync_runs, models.integrations, models.sync_items
    query = (
        sa.select(runs, integrations.c.name.label("integration_name"))
        .join(integrations, integrations.c.id == runs.c.integration_id)
        .order_by(runs.c.started_at.desc(), runs.c.id.desc())
        .limit(limit)
    )
    if integration_id is not None:
        query = query.where(runs.c.integration_id == integration_id)
    if failed_only:
        query = query.where(sa.or_(runs.c.status == "failed", runs.c.failed > 0))
    with engine.connect() as conn:
        run_rows = conn.execute(query).all()
        item_query = sa.select(items).where(items.c.run_id.in_([r.id for r in run_rows])).order_by(items.c.id)
        if failed_only:
            item_query = item_query.where(items.c.result == "failed")
        by_run: dict[int, list[dict[str, Any]]] = {}
        if run_rows:
            for item in conn.execute(item_query):
                by_run.setdefault(int(item.run_id), []).append(
                    {
                        "sku": item.sku,
                        "stock_available_id": item.stock_available_id,
                        "from": item.from_quantity,
                        "to": item.to_quantity,
                        "result": item.result,
                        "error": item.error,
                    }
                )
    return [
        RunLog(
            id=int(r.id),
            integration_id=int(r.integration_id),
            integration=r.integration_name,
            started_at=r.started_at,
            finished_at=r.finished_at,
            status=r.status,
            dry_run=bool(r.dry_run),
            checked=int(r.checked),
            changed=int(r.changed),
            failed=int(r.failed),
            message=r.message,
            items=tuple(by_run.get(int(r.id), [])),
        )
        for r in run_rows
    ]
