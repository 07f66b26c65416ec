"""Publish stock levels to shops: find the links whose quantity changed since the last sync in one query, and write
only those (a PATCH of the quantity on PrestaShop 8.0+, GET-modify-PUT before).

The quantity published for a linked product is the sum of its stock over the integration's warehouses minus the
integration's buffer, rounded down to an integer and never below zero. Each link keeps the shop's quantity as of the
last sync (``last_quantity``); a link without one (new, or relinked) is compared with the shop's own quantity first.
A full run (``full``, or automatically once every RECONCILE_EVERY) compares every link with the shop, which also
corrects quantities changed in the shop itself.
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
    AuthenticationFailed,
    PageStream,
    PermissionDenied,
    PrestashopClient,
    PrestashopError,
    ResourceNotFound,
    ShopUnavailable,
    StockAvailable,
    accepts_patch,
)
from stockq.integrations.shops import Integration

PAGE_SIZE = 2000
# Pages carry only what the comparison needs; the full rows of the changed items are read just before their PUT.
PAGE_FIELDS = ("id", "quantity")
FETCH_CHUNK = 100  # ids per filter[id]=[a|b|…] read (keeps the URL far below servers' 8 KB request-line limit)
# How often a sync compares every link with the shop (catches quantities edited in the shop's back office).
RECONCILE_EVERY = dt.timedelta(hours=24)
# Half the ledger's last decimal: SQLite sums NUMERIC as floats, so the SQL pre-filter compares with this slack
# and the exact rounding is done in Python on the rows it returns.
ROUNDING_SLACK = 0.00005
# PATCH answers of a shop or key that does not take it: 23 method not valid (before 8.0), 25 not allowed for the key.
PATCH_REFUSED_CODES = {23, 25}
# Failures of one write that every other write would meet too: they stop the run instead of failing one item.
RUN_STOPPERS = (ShopUnavailable, AuthenticationFailed, PermissionDenied)
Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class PlanItem:
    """One linked product: what stockq would publish and what the shop has (or had at the last sync)."""

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
    full: bool = False
    # stock_available id → the shop's quantity as read in this run, for links whose last_quantity it corrects.
    observed: dict[int, int] = field(default_factory=dict)

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


@dataclass(frozen=True, slots=True)
class LinkTarget:
    """A link and the quantity to publish for it."""

    stock_available_id: int
    sku: str
    product_id: int
    quantity: int
    last_quantity: int | None


def publishable_quantity(total: Decimal | int | float | None, buffer: int) -> int:
    """Stock minus the buffer, rounded down, never below zero."""
    # SQLite sums NUMERIC as floats: back to the ledger's 4 decimals before rounding down.
    value = Decimal(str(total or 0)).quantize(Decimal("0.0001")) - buffer
    return max(0, math.floor(value))


def link_targets(conn: Connection, integration: Integration, *, changed_only: bool = False) -> list[LinkTarget]:
    """The links with the quantity to publish, in one set-based query over the ledger's stock totals (the cache
    ``stock_levels`` reads) summed over the integration's warehouses. ``changed_only``: only the links whose
    quantity differs from ``last_quantity`` or whose ``last_quantity`` is not known."""
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
    query = (
        sa.select(
            links.c.stock_available_id, products.c.sku, links.c.product_id, summed.c.quantity, links.c.last_quantity
        )
        .join(products, products.c.id == links.c.product_id)
        .outerjoin(summed, summed.c.product_id == links.c.product_id)
        .where(links.c.integration_id == integration.id)
    )
    if changed_only:
        available = sa.func.coalesce(summed.c.quantity, 0) - integration.stock_buffer
        last = links.c.last_quantity
        slack = sa.literal(ROUNDING_SLACK, sa.Float())
        # publishable == last  ⇔  last ≥ 0, available < last + 1 and (last = 0 or available ≥ last)
        in_step = sa.and_(last >= 0, available < last + 1 - slack, sa.or_(last == 0, available >= last - slack))
        query = query.where(sa.or_(last.is_(None), sa.not_(in_step)))
    targets = [
        LinkTarget(
            int(stock_id), sku, int(product_id), publishable_quantity(quantity, integration.stock_buffer),
            None if last_quantity is None else int(last_quantity),
        )
        for stock_id, sku, product_id, quantity, last_quantity in conn.execute(query)
    ]  # fmt: skip
    if changed_only:  # the exact rounding of what the slack let through
        targets = [t for t in targets if t.last_quantity is None or t.quantity != t.last_quantity]
    return targets


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
    full: bool | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
    now: dt.datetime | None = None,
    client_factory: Callable[[Integration], PrestashopClient] | None = None,
    page_size: int = PAGE_SIZE,
) -> list[SyncResult]:
    """Sync every active integration whose interval has passed (all with ``force``; only ``integration_id`` when
    given). ``full``: compare every link with the shop (None: once RECONCILE_EVERY has passed since the last full
    run). A shop that is down fails its run; the others still run."""
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
                    full=full,
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


def reconcile_due(integration: Integration, now: dt.datetime) -> bool:
    """Whether the next run should compare every link with the shop."""
    last = integration.last_reconciled_at
    return last is None or now - last >= RECONCILE_EVERY


def sync_one(
    engine: Engine,
    integration: Integration,
    *,
    dry_run: bool = False,
    full: bool | None = None,
    progress: Progress | None = None,
    client_factory: Callable[[Integration], PrestashopClient] | None = None,
    page_size: int = PAGE_SIZE,
) -> SyncResult:
    """Sync one integration and log the run. A shop that cannot be reached raises a PrestashopError (with the
    failed run's SyncResult as ``.sync_result``) after the run is logged as failed, so a job retries."""
    started = shops.utcnow()
    full = reconcile_due(integration, started) if full is None else full
    result = SyncResult(integration.id, integration.name, dry_run, "running", full=full)
    client = client_factory(integration) if client_factory else integration.client()
    pusher: _Pusher | None = None
    stream: PageStream | None = None
    try:
        links = models.product_links
        with engine.connect() as conn:
            result.checked = conn.execute(
                sa.select(sa.func.count()).select_from(links).where(links.c.integration_id == integration.id)
            ).scalar_one()
            if full and result.checked:
                # A full run pages through every stock row: the pages are on their way while stockq reads its side.
                stream = client.pages("stock_availables", PAGE_FIELDS, page_size=page_size, expected=result.checked)
            targets = link_targets(conn, integration, changed_only=not full)
        known: list[PlanItem] = []
        to_compare: dict[int, LinkTarget] = {}
        for target in targets:
            if full or target.last_quantity is None:
                to_compare[target.stock_available_id] = target
            else:
                known.append(
                    PlanItem(target.sku, target.product_id, target.stock_available_id, target.quantity,
                             target.last_quantity)
                )  # fmt: skip
        result.plan.extend(known)
        if not dry_run:
            pusher = _Pusher(client, result, progress, use_patch=accepts_patch(integration.shop_version))
            pusher.submit(known)  # the writes are on their way while the run is logged
        result.run_id = _start_run(engine, integration.id, started, dry_run)
        try:
            planned = known + _compare_with_shop(
                client, to_compare, result, pusher, progress, page_size=page_size, stream=stream
            )
        finally:
            if pusher is not None:
                pusher.finish()
        if dry_run:
            result.items.extend(ItemResult(p.sku, p.stock_available_id, p.shop, p.stockq, "planned") for p in planned)
            result.changed = len(planned)
        if progress:
            progress(result.checked, result.checked)
        result.status = "partial" if result.failed else "success"
        result.message = f"{result.failed} item(s) failed" if result.failed else None
    except PrestashopError as exc:
        result.status = "failed"
        result.message = exc.message
        result.requests = client.requests_sent
        _finish_run(engine, integration, result, started, dry_run, client.version)
        exc.sync_result = result  # type: ignore[attr-defined]
        raise
    except Exception as exc:
        result.status = "failed"
        result.message = redact.redact(f"{type(exc).__name__}: {exc}")
        _finish_run(engine, integration, result, started, dry_run, client.version)
        raise
    finally:
        if stream is not None:
            stream.close()
        if pusher is not None:
            pusher.close()
        result.requests = client.requests_sent
        if client_factory is None:
            client.close()
    _finish_run(engine, integration, result, started, dry_run, client.version)
    return result


def _compare_with_shop(
    client: PrestashopClient,
    targets: dict[int, LinkTarget],
    result: SyncResult,
    pusher: _Pusher | None,
    progress: Progress | None,
    *,
    page_size: int,
    stream: PageStream | None = None,
) -> list[PlanItem]:
    """Read the shop's quantity of ``targets`` (from ``stream`` when one is started; else by id when they fit in
    fewer reads than paging through every stock row takes) and hand each difference to ``pusher`` as soon as its
    page arrives. Returns the differences."""
    if not targets:
        return []
    changes: list[PlanItem] = []
    seen: set[int] = set()
    done = result.checked - len(targets)
    pages: Iterable[list[dict[str, str]]]
    if stream is not None:
        pages = stream
    elif math.ceil(len(targets) / FETCH_CHUNK) < result.checked // page_size + 1:
        ids = list(targets)
        chunks = [ids[start : start + FETCH_CHUNK] for start in range(0, len(ids), FETCH_CHUNK)]

        def read(chunk: list[int]) -> list[dict[str, str]]:
            wanted = "[" + "|".join(str(stock_id) for stock_id in chunk) + "]"
            return client.list_page("stock_availables", PAGE_FIELDS, offset=0, limit=len(chunk), filters={"id": wanted})

        pages = client.map_concurrently(read, chunks)
    else:
        stream = client.pages("stock_availables", PAGE_FIELDS, page_size=page_size, expected=result.checked)
        pages = stream
    try:
        for page in pages:
            page_changes = _compare_page(page, targets, seen, result)
            changes.extend(page_changes)
            if pusher is not None:
                pusher.submit(page_changes)
            if progress:
                progress(done + len(seen) - len(changes), result.checked)
            if len(seen) == len(targets):
                break  # every wanted row found: the rest of the shop's rows are not ours
    finally:
        if stream is not None:
            stream.close()
    for stock_id, target in targets.items():
        if stock_id not in seen:
            result.plan.append(PlanItem(target.sku, target.product_id, stock_id, target.quantity, None))
            result.failed += 1
            result.items.append(ItemResult(target.sku, stock_id, None, target.quantity, "failed", _vanished(stock_id)))
    return changes


def _compare_page(
    page: list[dict[str, str]], targets: dict[int, LinkTarget], seen: set[int], result: SyncResult
) -> list[PlanItem]:
    changes: list[PlanItem] = []
    for fields in page:
        stock_id = _int(fields.get("id"))
        target = targets.get(stock_id)
        if target is None or stock_id in seen:
            continue
        seen.add(stock_id)
        shop_quantity = _int(fields.get("quantity"))
        if shop_quantity != target.last_quantity:
            result.observed[stock_id] = shop_quantity
        plan = PlanItem(target.sku, target.product_id, stock_id, target.quantity, shop_quantity)
        result.plan.append(plan)
        if target.quantity != shop_quantity:
            changes.append(plan)
    return changes


def _vanished(stock_id: int) -> str:
    return f"stock_available {stock_id} is not in the shop any more (run link-products)"


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


class _Pusher:
    """Writes on up to ``concurrency`` threads, each started as soon as its item is known to differ: a PATCH of the
    quantity where the shop takes it, else GET-modify-PUT (the full rows of the changed items read by id, up to
    FETCH_CHUNK at a time, and each PUT back with every field and the new quantity). One item's rejection is logged
    and the run goes on; a shop that stops answering or rejects the key stops the run (the rest would fail the same
    way)."""

    def __init__(
        self, client: PrestashopClient, result: SyncResult, progress: Progress | None, *, use_patch: bool
    ) -> None:
        self.client = client
        self.result = result
        self.progress = progress
        self.use_patch = use_patch
        self.submitted = 0
        self.pool = ThreadPoolExecutor(max_workers=client.concurrency, thread_name_prefix="stockq-put")
        self.lock = threading.Lock()
        self.puts: dict[Future[StockAvailable], PlanItem] = {}
        self.fetches: dict[Future[None], list[PlanItem]] = {}
        self.vanished: list[PlanItem] = []
        # A failure no other item would escape (shop down, key rejected): it stops the run.
        self.unavailable: PrestashopError | None = None

    def submit(self, plans: list[PlanItem]) -> None:
        if not plans or self.unavailable is not None:
            return
        with self.lock:
            self.submitted += len(plans)
        if self.use_patch:
            for plan in plans:
                self._track_write(self.pool.submit(self._patch, plan), plan)
            return
        for start in range(0, len(plans), FETCH_CHUNK):
            chunk = plans[start : start + FETCH_CHUNK]
            future = self.pool.submit(self._fetch_and_put, chunk)
            future.add_done_callback(self._watch)
            with self.lock:
                self.fetches[future] = chunk

    def _track_write(self, future: Future[StockAvailable], plan: PlanItem) -> None:
        future.add_done_callback(self._watch)
        with self.lock:
            self.puts[future] = plan

    def _patch(self, plan: PlanItem) -> StockAvailable:
        if self.use_patch:
            try:
                return self.client.patch_stock_quantity(plan.stock_available_id, plan.stockq)
            except ResourceNotFound as exc:
                raise ResourceNotFound(_vanished(plan.stock_available_id), status=exc.status) from None
            except PrestashopError as exc:
                if exc.status != 405 or not set(exc.codes) & PATCH_REFUSED_CODES:
                    raise
                self.use_patch = False  # this shop or key takes no PATCH: GET-modify-PUT from now on
        rows = self.client.list_page(
            "stock_availables", STOCK_FIELDS, offset=0, limit=1, filters={"id": f"[{plan.stock_available_id}]"}
        )
        if not rows:
            raise ResourceNotFound(_vanished(plan.stock_available_id))
        return self.client.put_stock_available(StockAvailable.from_fields(rows[0]), plan.stockq)

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
                self._track_write(
                    self.pool.submit(self.client.put_stock_available, StockAvailable.from_fields(fields), plan.stockq),
                    plan,
                )

    def _watch(self, future: Future[Any]) -> None:
        if not future.cancelled() and isinstance(future.exception(), RUN_STOPPERS):
            self.unavailable = self.unavailable or future.exception()  # type: ignore[assignment]

    def finish(self) -> None:
        """Wait for every read and write, record the outcomes; raise the failure if the shop stopped
        answering or took the key away."""
        try:
            while True:
                with self.lock:
                    futures: list[Future[Any]] = [*self.fetches, *self.puts]
                    pending = [f for f in futures if not f.done()]
                    finished = sum(1 for f in self.puts if f.done())
                    outstanding = self.submitted - finished
                if self.progress:
                    self.progress(self.result.checked - outstanding, self.result.checked)
                if not pending:
                    break
                if self.unavailable is not None:
                    for future in pending:
                        future.cancel()
                wait(pending, return_when=FIRST_COMPLETED)
        finally:
            self.close()
        self._record()
        if self.unavailable is not None:
            raise self.unavailable

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

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
            failed(plan, _vanished(plan.stock_available_id))
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
    engine: Engine,
    integration: Integration,
    result: SyncResult,
    started: dt.datetime,
    dry_run: bool,
    shop_version: str | None,
) -> None:
    """Log the run and its changed/failed items. A real (not dry) run also records the shop's quantity of every
    link it wrote or read, the shop's version, and, when it succeeded, the sync time (and the full-run time)."""
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
        known = dict(result.observed)
        known.update(
            (item.stock_available_id, item.to_quantity)
            for item in result.items
            if item.result == "updated" and item.stock_available_id is not None and item.to_quantity is not None
        )
        if known:
            links = models.product_links
            conn.execute(
                sa.update(links)
                .where(
                    links.c.integration_id == integration.id,
                    links.c.stock_available_id == sa.bindparam("b_id"),
                )
                .values(last_quantity=sa.bindparam("b_quantity")),
                [{"b_id": stock_id, "b_quantity": quantity} for stock_id, quantity in known.items()],
            )
        values: dict[str, Any] = {}
        if shop_version and shop_version != integration.shop_version:
            values["shop_version"] = shop_version
        if result.status in ("success", "partial"):
            values["last_synced_at"] = started
            if result.full:
                values["last_reconciled_at"] = started
        if values:
            conn.execute(
                sa.update(models.integrations).where(models.integrations.c.id == integration.id).values(**values)
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
