"""Link local products to a shop's products and combinations: by reference (= SKU) first, then by EAN13.

Each link stores the stock_available id the shop keeps that item's quantity in. A product with combinations is
linked through its combinations only: its own stock row is the sum PrestaShop recomputes from them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from stockq.integrations import models, shops
from stockq.integrations.prestashop.client import PrestashopClient

PAGE_SIZE = 1000


@dataclass(frozen=True, slots=True)
class ShopItem:
    """A sellable item of the shop: a product without combinations, or one combination."""

    product_id: int
    combination_id: int
    reference: str
    ean13: str
    stock_available_id: int | None = None

    @property
    def label(self) -> str:
        where = f"product {self.product_id}" + (f" combination {self.combination_id}" if self.combination_id else "")
        return f"{where} (reference {self.reference or '-'}, EAN {self.ean13 or '-'})"


@dataclass(frozen=True, slots=True)
class Ambiguity:
    """Several candidates for one key: nothing is linked for it."""

    key: str
    shop_items: tuple[ShopItem, ...]
    skus: tuple[str, ...]

    @property
    def reason(self) -> str:
        return (
            f"{self.key}: shop items {', '.join(i.label for i in self.shop_items)} "
            f"and local SKU(s) {', '.join(self.skus)}"
        )


@dataclass
class LinkReport:
    """What a linking run found and changed."""

    integration_id: int
    shop_items: int = 0
    by_reference: int = 0
    by_ean: int = 0
    created: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    unmatched: list[ShopItem] = field(default_factory=list)
    ambiguous: list[Ambiguity] = field(default_factory=list)
    without_stock_row: list[ShopItem] = field(default_factory=list)

    @property
    def linked(self) -> int:
        return self.by_reference + self.by_ean

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.removed)

    def as_dict(self) -> dict[str, object]:
        return {
            "integration_id": self.integration_id,
            "shop_items": self.shop_items,
            "linked": self.linked,
            "by_reference": self.by_reference,
            "by_ean": self.by_ean,
            "created": self.created,
            "updated": self.updated,
            "removed": self.removed,
            "unchanged": self.unchanged,
            "unmatched": [i.label for i in self.unmatched],
            "ambiguous": [a.reason for a in self.ambiguous],
            "without_stock_row": [i.label for i in self.without_stock_row],
        }


def read_shop_items(client: PrestashopClient, *, page_size: int = PAGE_SIZE) -> list[ShopItem]:
    """Products, combinations and stock rows of the shop, read in pages with only the fields needed."""
    products = [
        row for page in client.iter_all("products", ["id", "reference", "ean13"], page_size=page_size) for row in page
    ]
    combinations = [
        row
        for page in client.iter_all("combinations", ["id", "id_product", "reference", "ean13"], page_size=page_size)
        for row in page
    ]
    stock_rows = [
        row
        for page in client.iter_all(
            "stock_availables", ["id", "id_product", "id_product_attribute", "id_shop"], page_size=page_size
        )
        for row in page
    ]
    stock_by_item: dict[tuple[int, int], int] = {}
    for row in stock_rows:
        item_key = (int(row["id_product"]), int(row["id_product_attribute"]))
        # A shop's own row wins over a shared (id_shop 0) row of its group.
        if item_key not in stock_by_item or row.get("id_shop", "0") not in ("", "0"):
            stock_by_item[item_key] = int(row["id"])
    with_combinations = {int(c["id_product"]) for c in combinations}
    items: list[ShopItem] = []
    for product in products:
        product_id = int(product["id"])
        if product_id in with_combinations:
            continue
        items.append(
            ShopItem(
                product_id,
                0,
                product.get("reference", "").strip(),
                product.get("ean13", "").strip(),
                stock_by_item.get((product_id, 0)),
            )
        )
    for combination in combinations:
        product_id, combination_id = int(combination["id_product"]), int(combination["id"])
        items.append(
            ShopItem(
                product_id,
                combination_id,
                combination.get("reference", "").strip(),
                combination.get("ean13", "").strip(),
                stock_by_item.get((product_id, combination_id)),
            )
        )
    return items


@dataclass(frozen=True, slots=True)
class _Match:
    product_id: int
    sku: str
    matched_by: str
    item: ShopItem


def match_items(
    items: Iterable[ShopItem], local: Iterable[tuple[int, str, str | None]], report: LinkReport
) -> dict[int, _Match]:
    """Match shop items to local products (id, sku, ean): reference = SKU first, then EAN13; a key with several
    candidates on either side is ambiguous and links nothing."""
    by_sku: dict[str, tuple[int, str]] = {}
    by_ean: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for product_id, sku, ean in local:
        by_sku[sku.strip()] = (product_id, sku)
        if ean and ean.strip():
            by_ean[ean.strip()].append((product_id, sku))
    sku_of = {pid: sku for pid, sku in by_sku.values()}

    reference_claims: dict[int, list[ShopItem]] = defaultdict(list)
    rest: list[ShopItem] = []
    for item in items:
        report.shop_items += 1
        if item.reference and item.reference in by_sku:
            reference_claims[by_sku[item.reference][0]].append(item)
        else:
            rest.append(item)

    matches: dict[int, _Match] = {}
    for product_id, claimants in reference_claims.items():
        if len(claimants) > 1:
            report.ambiguous.append(
                Ambiguity(f"reference {claimants[0].reference}", tuple(claimants), (sku_of[product_id],))
            )
        else:
            matches[product_id] = _Match(product_id, sku_of[product_id], "reference", claimants[0])

    ean_claims: dict[int, list[ShopItem]] = defaultdict(list)
    for item in rest:
        candidates = by_ean.get(item.ean13, []) if item.ean13 else []
        if not candidates:
            report.unmatched.append(item)
        elif len(candidates) > 1:
            report.ambiguous.append(Ambiguity(f"EAN {item.ean13}", (item,), tuple(sorted(s for _, s in candidates))))
        else:
            ean_claims[candidates[0][0]].append(item)
    for product_id, claimants in ean_claims.items():
        if len(claimants) > 1 or product_id in reference_claims:
            others = tuple(reference_claims.get(product_id, []))
            report.ambiguous.append(
                Ambiguity(f"EAN {claimants[0].ean13}", tuple(claimants) + others, (sku_of[product_id],))
            )
            matches.pop(product_id, None)
        else:
            matches[product_id] = _Match(product_id, sku_of[product_id], "ean13", claimants[0])

    for product_id, match in list(matches.items()):
        if match.item.stock_available_id is None:
            report.without_stock_row.append(match.item)
            del matches[product_id]
    return matches


def link_products(
    engine: Engine,
    integration_id: int,
    *,
    client: PrestashopClient | None = None,
    page_size: int = PAGE_SIZE,
) -> LinkReport:
    """Read the shop's catalogue, match it to local products and store the links; a second run changes nothing."""
    integration = shops.get(engine, integration_id)
    own_client = client is None
    client = client or integration.client()
    try:
        items = read_shop_items(client, page_size=page_size)
    finally:
        if own_client:
            client.close()
    products = sa.table("products", sa.column("id"), sa.column("sku"), sa.column("ean"))
    report = LinkReport(integration_id)
    with engine.connect() as conn:
        local = [
            (int(r.id), r.sku, r.ean) for r in conn.execute(sa.select(products.c.id, products.c.sku, products.c.ean))
        ]
    matches = match_items(items, local, report)
    report.by_reference = sum(1 for m in matches.values() if m.matched_by == "reference")
    report.by_ean = len(matches) - report.by_reference
    _store(engine, integration_id, matches, report, shop_version=client.version or integration.shop_version)
    return report


def _store(
    engine: Engine, integration_id: int, matches: dict[int, _Match], report: LinkReport, *, shop_version: str | None
) -> None:
    links = models.product_links
    now = shops.utcnow()
    with engine.begin() as conn:
        existing = {
            int(row.product_id): row
            for row in conn.execute(sa.select(links).where(links.c.integration_id == integration_id))
        }
        wanted = {
            product_id: {
                "sku": m.sku,
                "matched_by": m.matched_by,
                "shop_product_id": m.item.product_id,
                "shop_combination_id": m.item.combination_id,
                "stock_available_id": m.item.stock_available_id,
            }
            for product_id, m in matches.items()
        }
        stale = [pid for pid in existing if pid not in wanted]
        changed = [
            pid
            for pid, values in wanted.items()
            if pid in existing and any(getattr(existing[pid], k) != v for k, v in values.items())
        ]
        new = [pid for pid in wanted if pid not in existing]
        report.removed, report.updated, report.created = len(stale), len(changed), len(new)
        report.unchanged = len(wanted) - len(changed) - len(new)
        # Changed links are deleted and inserted again: a stock_available id may move between products.
        doomed = stale + changed
        for chunk in _chunks(doomed, 500):
            conn.execute(
                sa.delete(links).where(links.c.integration_id == integration_id, links.c.product_id.in_(chunk))
            )
        rows = [
            {
                "integration_id": integration_id,
                "product_id": pid,
                "linked_at": now,
                "last_quantity": None,
                **wanted[pid],
            }
            for pid in changed + new
        ]
        if rows:
            conn.execute(sa.insert(links), rows)
        conn.execute(
            sa.update(models.integrations)
            .where(models.integrations.c.id == integration_id)
            .values(linked_at=now, shop_version=shop_version)
        )


def _chunks(values: list[int], size: int) -> Iterable[list[int]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]
