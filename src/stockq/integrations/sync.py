"""Publish stock levels to shops: read the shop's quantities in pages, PUT only the differences.

The quantity published for a linked product is the sum of its stock over the integration's warehouses minus the
integration's buffer, rounded down to an integer and never below zero.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from stockq import errors, redact
from stockq.integrations import models, shops
from stockq.integrations.prestashop.client import (
    STOCK_FIELDS,
    PageStream,
    PrestashopClient,
    PrestashopError,
    ShopUnavailable,
    StockAvailable,
)
from stockq.integrations.shops import Integration

PAGE_SIZE = 2000
# Pages carry only what the comparison needs; the full rows of the changed items are read just before their PUT.
PAGE_FIELDS = ("id", "quantity")
FETCH_CHUNK = 100  # ids per filter[id]=[a|b|…] read (keeps the URL far below servers' 8 KB request-line limit)
Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class PlanItem:
    """One linked product: what stockq would publish and what the shop has."""

    sku: str
    product_id: int
    stock_available_id: int
    stockq: int
    shop: int | None

    @property
    def change(self) -> int | None:
        return None if self.shop is None else self.stockq - self.shop


@dataclass
class ItemResult:
    sku: str
    stock_available_id: int | None
    from_quantity: int | None
    to_quantity: int | None
    result: str  # updated | failed | planned
    error: str | None = None


@dataclass
class SyncResult:
    """One integration's run (or why it did not run)."""

    integration_id: int
    integration_name: str
    dry_run: bool
    status: str  # success | partial | failed | skipped
    run_id: int | None = None
    checked: int = 0
    changed: int = 0
    failed: int = 0
    message: str | None = None
    plan: list[PlanItem] = field(default_factory=list)
    items: list[ItemResult] = field(default_factory=list)
    requests: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "integration_id": self.integration_id,
            "integration": self.integration_name,
            "run_id": self.run_id,
            "status": self.status,
            "dry_run": self.dry_run,
            "checked": self.checked,
            "changed": self.changed,
            "failed": self.failed,
            "message": self.message,
            "plan": [
                {"sku": p.sku, "stockq": p.stockq, "shop": p.shop, "change": p.change}
                for p in self.plan
                if p.change != 0
            ],
        }


def publishable_quantity(total: Decimal | int | float | None, buffer: int) -> int:
    """Stock minus the buffer, rounded down, never below zero."""
    # SQLite sums NUMERIC as floats: back to the ledger's 4 decimals before rounding down.
    value = Decimal(str(total or 0)).quantize(Decimal("0.0001")) - buffer
    return max(0, math.floor(value))


def link_targets(conn: Connection, integration: Integration) -> list[tuple[int, str, int, int]]:
    """(stock_available id, sku, product id, quantity to publish) of every link, in one set-based query over the
    ledger's stock totals (the cache ``stock_levels`` reads) summed over the integration's warehouses."""
    links = models.product_links
    products = sa.table("products", sa.column("id"), sa.column("sku"))
    totals = sa.table(
        "warehouse_stock_totals", sa.column("warehouse_id"), sa.column("product_id"), sa.column("quantity")
    )
    warehouses = sa.table("warehouses", sa.column("id"), sa.column("code"))
    summed = (
        sa.select(totals.c.product_id, sa.func.sum(totals.c.quantity).label("quantity"))
        .join(warehouses, warehouses.c.id == totals.c.warehouse_id)
        .where(warehouses.c.code.in_(list(integration.warehouse_codes)))
        .group_by(totals.c.product_id)
        .subquery()
    )
    rows = conn.execute(
        sa.select(links.c.stock_available_id, products.c.sku, links.c.product_id, summed.c.quantity)
        .join(products, products.c.id == links.c.product_id)
        .outerjoin(summed, summed.c.product_id == links.c.product_id)
        .where(links.c.integration_id == integration.id)
    ).all()
    return [
        (int(stock_id), sku, int(product_id), publishable_quantity(quantity, integration.stock_buffer))
        for stock_id, sku, product_id, quantity in rows
    ]


def select_integrations(
    engine: Engine, *, integration_id: int | None, force: bool, now: dt.datetime
) -> tuple[list[Integration], list[SyncResult]]:
    """The integrations to sync now, and the ones skipped (inactive, or interval not passed) with the reason."""
    if integration_id is not None:
        candidates = [shops.get(engine, integration_id)]
    else:
        candidates = shops.list_all(engine)
    due: list[Integration] = []
    skipped: list[SyncResult] = []
    for integration in candidates:
        if not integration.active:
            if integration_id is not None:
                skipped.append(_skip(integration, "the integration is disabled"))
            continue
        if not integration.warehouse_codes:
            # Publishing zero for every product is never what an integration without warehouses means.
            skipped.append(
                _skip(integration, "no warehouses to publish stock from (add the integration with --warehouses)")
            )
            continue
        if not force and not integration.is_due(now):
            assert integration.last_synced_at is not None
            next_at = integration.last_synced_at + dt.timedelta(minutes=integration.sync_interval_minutes)
            skipped.append(_skip(integration, f"not due before {next_at:%Y-%m-%d %H:%M:%S} UTC (--force ignores it)"))
            continue
        due.append(integration)
    return due, skipped


def _skip(integration: Integration, reason: str) -> SyncResult:
    return SyncResult(integration.id, integration.name, False, "skipped", message=reason)


def sync_inventory(
    engine: Engine,
    *,
    integration_id: int | None = None,
    force: bool = False,
    dry_run: bool = False,
    progress: Progress | None = None,
    now: dt.datetime | None = None,
    client_factory: Callable[[Integration], PrestashopClient] | None = None,
    page_size: int = PAGE_SIZE,
) -> list[SyncResult]:
    """Sync every active integration whose interval has passed (all with ``force``; only ``integration_id`` when
    given). A shop that is down fails its run; the others still run."""
    now = now or shops.utcnow()
    due, skipped = select_integrations(engine, integration_id=integration_id, force=force, now=now)
    results = list(skipped)
    for integration in due:
        try:
            results.append(
                sync_one(
                    engine,
                    integration,
                    dry_run=dry_run,
                    progress=progress,
                    client_factory=client_factory,
                    page_size=page_size,
                )
            )
        except PrestashopError as exc:
            failed = getattr(exc, "sync_result", None)
            results.append(
                failed or SyncResult(integration.id, integration.name, dry_run, "failed", message=exc.message)
            )
    return results


def sync_one(
    engine: Engine,
    integration: Integration,
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
    client_factory: Callable[[Integration], PrestashopClient] | None = None,
    page_size: int = PAGE_SIZE,
) -> SyncResult:
    """Sync one integration and log the run. A shop that cannot be reached raises a PrestashopError (with the
    failed run's SyncResult as ``.sync_result``) after the run is logged as failed, so a job retries."""
    started = shops.utcnow()
    result = SyncResult(integration.id, integration.name, dry_run, "running")
    client = client_factory(integration) if client_factory else integration.client()
    stream = None
    try:
        link_table = models.product_links
        with engine.connect() as conn:
            expected = conn.execute(
                sa.select(sa.func.count()).select_from(link_table).where(link_table.c.integration_id == integration.id)
            ).scalar_one()
        # The shop's pages are on their way while stockq logs the run and reads its own side.
        stream = client.pages("stock_availables", PAGE_FIELDS, page_size=page_size, expected=expected or None)
        result.run_id = _start_run(engine, integration.id, started, dry_run)
        with engine.connect() as conn:
            targets = {
                stock_id: (sku, product_id, quantity)
                for stock_id, sku, product_id, quantity in link_targets(conn, integration)
            }
        total_steps = len(targets)
        pusher = None if dry_run else _Pusher(client, result, progress, total_steps)
        try:
            planned = _compare_pages(stream, targets, result, pusher, progress)
        finally:
            if pusher is not None:
                pusher.finish()
        if dry_run:
            result.items.extend(ItemResult(p.sku, p.stock_available_id, p.shop, p.stockq, "planned") for p in planned)
            result.changed = len(planned)
            if progress:
                progress(total_steps, total_steps)
        result.status = "partial" if result.failed else "success"
        result.message = f"{result.failed} item(s) failed" if result.failed else None
    except PrestashopError as exc:
        result.status = "failed"
        result.message = exc.message
        result.requests = client.requests_sent
        _finish_run(engine, integration, result, started, dry_run)
        exc.sync_result = result  # type: ignore[attr-defined]
        raise
    except Exception as exc:
        result.status = "failed"
        result.message = redact.redact(f"{type(exc).__name__}: {exc}")
        _finish_run(engine, integration, result, started, dry_run)
        raise
    finally:
        if stream is not None:
            stream.close()
        result.requests = client.requests_sent
        if client_factory is None:
            client.close()
    _finish_run(engine, integration, result, started, dry_run)
    return result


def _compare_pages(
    stream: PageStream,
    targets: dict[int, tuple[str, int, int]],
    result: SyncResult,
    pusher: _Pusher | None,
    progress: Progress | None,
) -> list[PlanItem]:
    """Read the shop's stock rows page by page and hand every difference to ``pusher`` as soon as its page
    arrives (PUTs overlap the remaining reads). Returns the differences."""
    changes: list[PlanItem] = []
    seen: set[int] = set()
    unchanged = 0
    for page in stream:
        page_changes: list[PlanItem] = []
        for fields in page:
            stock_id = _int(fields.get("id"))
            target = targets.get(stock_id)
            if target is None or stock_id in seen:
                continue
            seen.add(stock_id)
            sku, product_id, quantity = target
            shop_quantity = _int(fields.get("quantity"))
            plan = PlanItem(sku, product_id, stock_id, quantity, shop_quantity)
            result.plan.append(plan)
            result.checked += 1
            if quantity == shop_quantity:
                unchanged += 1
                continue
            changes.append(plan)
            page_changes.append(plan)
        if pusher is not None:
            pusher.unchanged = unchanged
            pusher.submit_page(page_changes)
        if progress:
            progress(unchanged, len(targets))
        if len(seen) == len(targets):
            break  # every linked row found: the rest of the shop's rows are not ours
    for stock_id, (sku, product_id, quantity) in targets.items():
        if stock_id not in seen:
            result.plan.append(PlanItem(sku, product_id, stock_id, quantity, None))
            result.checked += 1
            result.failed += 1
            result.items.append(
                ItemResult(
                    sku, stock_id, None, quantity, "failed",
                    f"stock_available {stock_id} is not in the shop any more (run link-products)",
                )
            )  # fmt: skip
    return changes


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


class _Pusher:
    """GET-modify-PUT on up to ``concurrency`` threads, started as soon as a page shows differences: the full rows
    of the changed items are read (by id, up to FETCH_CHUNK at a time) and each is PUT back with every field and
    the new quantity. One item's rejection is logged and the run goes on; a shop that stops answering stops the
    run (the rest would fail the same way)."""

    def __init__(self, client: PrestashopClient, result: SyncResult, progress: Progress | None, total: int) -> None:
        self.client = client
        self.result = result
        self.progress = progress
        self.total = total
        self.unchanged = 0
        self.pool = ThreadPoolExecutor(max_workers=client.concurrency, thread_name_prefix="stockq-put")
        self.lock = threading.Lock()
        self.puts: dict[Future[StockAvailable], PlanItem] = {}
        self.fetches: dict[Future[None], list[PlanItem]] = {}
        self.vanished: list[PlanItem] = []
        self.unavailable: ShopUnavailable | None = None

    def submit_page(self, plans: list[PlanItem]) -> None:
        for start in range(0, len(plans), FETCH_CHUNK):
            chunk = plans[start : start + FETCH_CHUNK]
            if self.unavailable is not None:
                return
            future = self.pool.submit(self._fetch_and_put, chunk)
            future.add_done_callback(self._watch)
            with self.lock:
                self.fetches[future] = chunk

    def _fetch_and_put(self, plans: list[PlanItem]) -> None:
        ids = "|".join(str(plan.stock_available_id) for plan in plans)
        rows = self.client.list_page(
            "stock_availables", STOCK_FIELDS, offset=0, limit=len(plans), filters={"id": f"[{ids}]"}
        )
        by_id = {_int(row.get("id")): row for row in rows}
        for plan in plans:
            fields = by_id.get(plan.stock_available_id)
            if fields is None:
                with self.lock:
                    self.vanished.append(plan)
            elif self.unavailable is None:
                future = self.pool.submit(
                    self.client.put_stock_available, StockAvailable.from_fields(fields), plan.stockq
                )
                future.add_done_callback(self._watch)
                with self.lock:
                    self.puts[future] = plan

    def _watch(self, future: Future[Any]) -> None:
        if not future.cancelled() and isinstance(future.exception(), ShopUnavailable):
            self.unavailable = self.unavailable or future.exception()  # type: ignore[assignment]

    def finish(self) -> None:
        """Wait for every read and PUT, record the outcomes; raise ShopUnavailable if the shop stopped answering."""
        try:
            while True:
                with self.lock:
                    futures: list[Future[Any]] = [*self.fetches, *self.puts]
                    pending = [f for f in futures if not f.done()]
                    finished = sum(1 for f in self.puts if f.done())
                if self.progress:
                    self.progress(self.unchanged + finished, self.total)
                if not pending:
                    break
                if self.unavailable is not None:
                    for future in pending:
                        future.cancel()
                wait(pending, return_when=FIRST_COMPLETED)
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)
        self._record()
        if self.unavailable is not None:
            raise self.unavailable

    def _record(self) -> None:
        result = self.result

        def failed(plan: PlanItem, error: str) -> None:
            result.failed += 1
            result.items.append(ItemResult(plan.sku, plan.stock_available_id, plan.shop, plan.stockq, "failed", error))

        for fetch, plans in self.fetches.items():
            exc = None if fetch.cancelled() else fetch.exception()
            if isinstance(exc, PrestashopError):
                for plan in plans:
                    failed(plan, exc.message)
            elif exc is not None:
                raise exc
        for plan in self.vanished:
            failed(plan, f"stock_available {plan.stock_available_id} is not in the shop any more (run link-products)")
        for future, plan in self.puts.items():
            if future.cancelled():
                continue
            exc = future.exception()
            if exc is None:
                result.changed += 1
                result.items.append(ItemResult(plan.sku, plan.stock_available_id, plan.shop, plan.stockq, "updated"))
            elif isinstance(exc, PrestashopError):
                failed(plan, exc.message)
            else:
                raise exc


def _start_run(engine: Engine, integration_id: int, started: dt.datetime, dry_run: bool) -> int:
    with engine.begin() as conn:
        return int(
            conn.execute(
                sa.insert(models.sync_runs)
                .values(integration_id=integration_id, started_at=started, status="running", dry_run=dry_run)
                .returning(models.sync_runs.c.id)
            ).scalar_one()
        )


def _finish_run(
    engine: Engine, integration: Integration, result: SyncResult, started: dt.datetime, dry_run: bool
) -> None:
    """Log the run and its changed/failed items; a real (not dry) successful run also records the links'
    quantities and the integration's last sync time."""
    if result.run_id is None:  # failed before the run was logged
        return
    finished = shops.utcnow()
    with engine.begin() as conn:
        conn.execute(
            sa.update(models.sync_runs)
            .where(models.sync_runs.c.id == result.run_id)
            .values(
                finished_at=finished,
                status=result.status,
                checked=result.checked,
                changed=result.changed,
                failed=result.failed,
                message=redact.redact(result.message) if result.message else None,
            )
        )
        item_rows = [
            {
                "run_id": result.run_id,
                "sku": item.sku,
                "stock_available_id": item.stock_available_id,
                "from_quantity": item.from_quantity,
                "to_quantity": item.to_quantity,
                "result": item.result,
                "error": redact.redact(item.error) if item.error else None,
            }
            for item in result.items
        ]
        if item_rows:
            conn.execute(sa.insert(models.sync_items), item_rows)
        if dry_run:
            return
        updated = [
            {"b_id": item.stock_available_id, "b_quantity": item.to_quantity}
            for item in result.items
            if item.result == "updated"
        ]
        if updated:
            links = models.product_links
            conn.execute(
                sa.update(links)
                .where(
                    links.c.integration_id == integration.id,
                    links.c.stock_available_id == sa.bindparam("b_id"),
                )
                .values(last_quantity=sa.bindparam("b_quantity")),
                updated,
            )
        if result.status in ("success", "partial"):
            conn.execute(
                sa.update(models.integrations)
                .where(models.integrations.c.id == integration.id)
                .values(last_synced_at=started)
            )


def require_ok(results: Iterable[SyncResult]) -> None:
    """Raise one StockqError naming every integration whose run failed or left items failed."""
    bad = [r for r in results if r.status in ("failed", "partial")]
    if bad:
        raise errors.StockqError(
            "; ".join(
                f"{r.integration_name}: {r.message or r.status}"
                if r.status == "failed"
                else f"{r.integration_name}: {r.failed} item(s) failed (see `stockq integrations sync-logs --failed`)"
                for r in bad
            )
        )
