"""Jobs of the `integrations` queue: product linking and inventory sync, and the listener that queues a sync when
posted warehouse documents change stock (coalesced: at most one pending sync job per integration)."""

from __future__ import annotations

import time
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

import stockq
from stockq import db, errors
from stockq.integrations import linking, models, shops, sync
from stockq.queue import api
from stockq.settings import Settings
from stockq.warehouse import hooks

# A pending marker older than this is taken as lost (its job cleared from the queue) and a new job is queued. A
# sync is idempotent, so a backlog longer than this costs at most one extra job, never a missed sync.
PENDING_STALE_SECONDS = 600


class LinkIntegrationProducts(stockq.Job):
    """Match the shop's products and combinations to local products and store the links."""

    name = "LinkIntegrationProducts"
    queue = "integrations"
    tries = 3
    timeout = 300
    backoff: ClassVar[list[int]] = [10, 60]

    integration_id: int

    def handle(self) -> None:
        engine = db.get_engine(Settings.from_env().database_url)
        linking.link_products(engine, int(self.integration_id))


class SyncInventory(stockq.Job):
    """Publish one integration's stock levels to its shop (a shop that is down fails it; it retries later)."""

    name = "SyncInventory"
    queue = "integrations"
    tries = 5
    timeout = 300
    backoff: ClassVar[list[int]] = [30, 120, 600]

    integration_id: int
    force: bool
    full: bool | None  # True: compare every link with the shop; None: when the daily full run is due

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("force", True)
        kwargs.setdefault("full", None)
        super().__init__(**kwargs)

    def handle(self) -> None:
        engine = db.get_engine(Settings.from_env().database_url)
        integration_id = int(self.integration_id)
        # Cleared before reading stock: a document posted from now on queues a new job, none is missed.
        with engine.begin() as conn:
            conn.execute(
                sa.update(models.integrations)
                .where(models.integrations.c.id == integration_id)
                .values(sync_pending_since=None)
            )
        full = None if self.full is None else bool(self.full)
        results = sync.sync_inventory(engine, integration_id=integration_id, force=bool(self.force), full=full)
        failed = [r for r in results if r.status == "failed"]
        if failed:
            raise errors.StockqError(f"{failed[0].integration_name}: {failed[0].message or 'the sync failed'}")


def queue_syncs_for_changes(conn: Connection, changed: list[tuple[int, int]]) -> list[int]:
    """Inside a posting's transaction: queue one SyncInventory per active integration that sells a changed
    product from a changed warehouse, unless one is already pending. Returns the integrations queued."""
    if not changed:
        return []
    warehouses = sa.table("warehouses", sa.column("id"), sa.column("code"))
    warehouse_ids = sorted({w for w, _ in changed})
    codes = set(conn.execute(sa.select(warehouses.c.code).where(warehouses.c.id.in_(warehouse_ids))).scalars())
    integrations = models.integrations
    candidates = [
        row.id
        for row in conn.execute(
            sa.select(integrations.c.id, integrations.c.warehouse_codes).where(integrations.c.active.is_(True))
        )
        if codes & set(shops.split_codes(row.warehouse_codes))
    ]
    if not candidates:
        return []
    product_ids = sorted({p for _, p in changed})
    links = models.product_links
    linked = sorted(
        set(
            conn.execute(
                sa.select(links.c.integration_id)
                .where(links.c.integration_id.in_(candidates), links.c.product_id.in_(product_ids))
                .distinct()
            ).scalars()
        )
    )
    if not linked:
        return []
    now = int(time.time())
    # The conditional UPDATE is the coalescing: of two concurrent postings only one sees the marker empty.
    claimed = sorted(
        int(i)
        for i in conn.execute(
            sa.update(integrations)
            .where(
                integrations.c.id.in_(linked),
                sa.or_(
                    integrations.c.sync_pending_since.is_(None),
                    integrations.c.sync_pending_since < now - PENDING_STALE_SECONDS,
                ),
            )
            .values(sync_pending_since=now)
            .returning(integrations.c.id)
        ).scalars()
    )
    for integration_id in claimed:
        api.dispatch(SyncInventory(integration_id=integration_id, force=True), conn=conn)
    return claimed


def _on_stock_changed(conn: Connection, changed: list[tuple[int, int]]) -> None:
    queue_syncs_for_changes(conn, changed)


hooks.on_stock_changed(_on_stock_changed)
