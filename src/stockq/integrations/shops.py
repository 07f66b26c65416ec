"""Integration records: add, list, show, enable/disable, test the connection. The API key is masked everywhere."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from stockq import errors, redact
from stockq.integrations import models
from stockq.integrations.prestashop.client import PrestashopClient, RetryPolicy, ShopInfo

TYPES = ("prestashop",)
KEY_MASK = redact.MASK


def utcnow() -> dt.datetime:
    """Naive UTC, as every DateTime column stores it."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


@dataclass(frozen=True, slots=True)
class Integration:
    """One shop that sells stock from some warehouses."""

    id: int
    name: str
    type: str
    url: str
    api_key: str = field(repr=False)
    shop_id: int | None
    warehouse_codes: tuple[str, ...]
    stock_buffer: int
    sync_interval_minutes: int
    concurrency: int
    timeout_seconds: float
    active: bool
    last_synced_at: dt.datetime | None
    linked_at: dt.datetime | None
    sync_pending_since: int | None
    shop_version: str | None = None
    last_reconciled_at: dt.datetime | None = None

    @classmethod
    def from_row(cls, row: Any) -> Integration:
        redact.register_secret(row.api_key)
        return cls(
            id=int(row.id),
            name=row.name,
            type=row.type,
            url=row.url,
            api_key=row.api_key,
            shop_id=row.shop_id,
            warehouse_codes=split_codes(row.warehouse_codes),
            stock_buffer=int(row.stock_buffer),
            sync_interval_minutes=int(row.sync_interval_minutes),
            concurrency=int(row.concurrency),
            timeout_seconds=float(row.timeout_seconds),
            active=bool(row.active),
            last_synced_at=row.last_synced_at,
            linked_at=row.linked_at,
            sync_pending_since=row.sync_pending_since,
            shop_version=row.shop_version,
            last_reconciled_at=row.last_reconciled_at,
        )

    @property
    def masked_key(self) -> str:
        return KEY_MASK

    def is_due(self, now: dt.datetime) -> bool:
        """Whether the sync interval has passed since the last sync."""
        if self.last_synced_at is None:
            return True
        return now - self.last_synced_at >= dt.timedelta(minutes=self.sync_interval_minutes)

    def public(self) -> dict[str, Any]:
        """Every field, the key masked: what list/show print and --json emits."""
        return {
            "id": self.id,
            "name": self.name,
            "type": self.type,
            "url": self.url,
            "api_key": KEY_MASK,
            "shop_id": self.shop_id,
            "warehouses": list(self.warehouse_codes),
            "stock_buffer": self.stock_buffer,
            "sync_interval_minutes": self.sync_interval_minutes,
            "concurrency": self.concurrency,
            "timeout_seconds": self.timeout_seconds,
            "active": self.active,
            "last_synced_at": self.last_synced_at.isoformat(sep=" ") if self.last_synced_at else None,
            "linked_at": self.linked_at.isoformat(sep=" ") if self.linked_at else None,
        }

    def client(self, *, retry: RetryPolicy | None = None) -> PrestashopClient:
        """A webservice client for this shop (close it, or use it in a with block)."""
        return PrestashopClient(
            self.url,
            self.api_key,
            shop_name=self.name,
            shop_id=self.shop_id,
            timeout=self.timeout_seconds,
            concurrency=self.concurrency,
            retry=retry,
        )


def split_codes(text: str | None) -> tuple[str, ...]:
    return tuple(code.strip() for code in (text or "").split(",") if code.strip())


def _validate_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise errors.InvalidInput(f"The shop URL must be an http(s) URL, not {redact.redact(url)!r}")
    if parts.username or parts.password or parts.query:
        raise errors.InvalidInput("The shop URL must not carry credentials or a query: give the key with --key")
    path = parts.path.rstrip("/")
    if path.endswith("/api"):
        path = path[: -len("/api")]
    return f"{parts.scheme}://{parts.netloc}{path}"


def add_prestashop(
    engine: Engine,
    name: str,
    *,
    url: str,
    key: str,
    shop_id: int | None = None,
    warehouses: tuple[str, ...] = (),
    interval_minutes: int = 60,
    stock_buffer: int = 0,
    concurrency: int = 4,
    timeout_seconds: float = 30.0,
) -> Integration:
    """Store a new PrestaShop integration (active); the key is kept for the client and never shown."""
    redact.register_secret(key)
    name = name.strip()
    if not name:
        raise errors.InvalidInput("The integration needs a name")
    if not re.fullmatch(r"[A-Za-z0-9]{32}", key):
        raise errors.InvalidInput("A PrestaShop webservice key has 32 letters or digits")
    if interval_minutes < 1:
        raise errors.InvalidInput("--interval must be at least 1 minute")
    if stock_buffer < 0:
        raise errors.InvalidInput("--buffer cannot be negative")
    if not 1 <= concurrency <= 64:
        raise errors.InvalidInput("--concurrency must be between 1 and 64")
    if timeout_seconds <= 0:
        raise errors.InvalidInput("--timeout must be positive")
    if shop_id is not None and shop_id < 1:
        raise errors.InvalidInput("--shop must be a positive shop id")
    codes = tuple(dict.fromkeys(c.strip() for c in warehouses if c.strip()))
    clean_url = _validate_url(url)
    now = utcnow()
    with engine.begin() as conn:
        _check_warehouses(conn, codes)
        taken = conn.execute(sa.select(models.integrations.c.id).where(models.integrations.c.name == name)).first()
        if taken is not None:
            raise errors.InvalidInput(f"An integration named {name!r} already exists (id {taken.id})")
        new_id = conn.execute(
            sa.insert(models.integrations)
            .values(
                name=name,
                type="prestashop",
                url=clean_url,
                api_key=key,
                shop_id=shop_id,
                warehouse_codes=",".join(codes),
                stock_buffer=stock_buffer,
                sync_interval_minutes=interval_minutes,
                concurrency=concurrency,
                timeout_seconds=timeout_seconds,
                active=True,
                created_at=now,
                updated_at=now,
            )
            .returning(models.integrations.c.id)
        ).scalar_one()
    return get(engine, int(new_id))


def _check_warehouses(conn: Connection, codes: tuple[str, ...]) -> None:
    if not codes:
        return
    inspector = sa.inspect(conn)
    if not inspector.has_table("warehouses"):
        return
    warehouses = sa.table("warehouses", sa.column("code"))
    known = set(conn.execute(sa.select(warehouses.c.code).where(warehouses.c.code.in_(codes))).scalars())
    missing = [c for c in codes if c not in known]
    if missing:
        raise errors.InvalidInput(f"Unknown warehouse code(s): {', '.join(missing)}")


def get(engine: Engine | Connection, integration_id: int) -> Integration:
    """The integration with ``integration_id``; NotFound otherwise."""
    query = sa.select(models.integrations).where(models.integrations.c.id == integration_id)
    if isinstance(engine, Connection):
        row = engine.execute(query).first()
    else:
        with engine.connect() as conn:
            row = conn.execute(query).first()
    if row is None:
        raise errors.NotFound(f"No integration with id {integration_id}")
    return Integration.from_row(row)


def list_all(engine: Engine, *, active_only: bool = False) -> list[Integration]:
    """Every integration by id."""
    query = sa.select(models.integrations).order_by(models.integrations.c.id)
    if active_only:
        query = query.where(models.integrations.c.active.is_(True))
    with engine.connect() as conn:
        return [Integration.from_row(row) for row in conn.execute(query)]


def set_active(engine: Engine, integration_id: int, active: bool) -> Integration:
    """Enable or disable an integration (a disabled one is never synced)."""
    with engine.begin() as conn:
        updated = conn.execute(
            sa.update(models.integrations)
            .where(models.integrations.c.id == integration_id)
            .values(active=active, updated_at=utcnow())
        ).rowcount
    if not updated:
        raise errors.NotFound(f"No integration with id {integration_id}")
    return get(engine, integration_id)


def update(
    engine: Engine,
    integration_id: int,
    *,
    url: str | None = None,
    key: str | None = None,
    shop_id: int | None = None,
    warehouses: tuple[str, ...] | None = None,
    interval_minutes: int | None = None,
    stock_buffer: int | None = None,
    concurrency: int | None = None,
    timeout_seconds: float | None = None,
) -> Integration:
    """Change some settings of an integration (None: keep); validated as `add` validates them."""
    current = get(engine, integration_id)
    if key is not None:
        redact.register_secret(key)
        if not re.fullmatch(r"[A-Za-z0-9]{32}", key):
            raise errors.InvalidInput("A PrestaShop webservice key has 32 letters or digits")
    values: dict[str, Any] = {}
    if url is not None:
        values["url"] = _validate_url(url)
    if key is not None:
        values["api_key"] = key
    if shop_id is not None:
        if shop_id < 0:
            raise errors.InvalidInput("--shop must be a shop id (0 for the default shop)")
        values["shop_id"] = shop_id or None
    if interval_minutes is not None:
        if interval_minutes < 1:
            raise errors.InvalidInput("--interval must be at least 1 minute")
        values["sync_interval_minutes"] = interval_minutes
    if stock_buffer is not None:
        if stock_buffer < 0:
            raise errors.InvalidInput("--buffer cannot be negative")
        values["stock_buffer"] = stock_buffer
    if concurrency is not None:
        if not 1 <= concurrency <= 64:
            raise errors.InvalidInput("--concurrency must be between 1 and 64")
        values["concurrency"] = concurrency
    if timeout_seconds is not None:
        if timeout_seconds <= 0:
            raise errors.InvalidInput("--timeout must be positive")
        values["timeout_seconds"] = timeout_seconds
    with engine.begin() as conn:
        if warehouses is not None:
            codes = tuple(dict.fromkeys(c.strip() for c in warehouses if c.strip()))
            _check_warehouses(conn, codes)
            values["warehouse_codes"] = ",".join(codes)
        if values:
            values["updated_at"] = utcnow()
            conn.execute(sa.update(models.integrations).where(models.integrations.c.id == current.id).values(**values))
    return get(engine, integration_id)


def test_connection(engine: Engine, integration_id: int) -> ShopInfo:
    """Reach the shop: its version and whether the key may read products/combinations and write stock."""
    integration = get(engine, integration_id)
    with integration.client(retry=RetryPolicy(attempts=1)) as client:
        return client.info()
