"""A PrestaShop webservice emulator: real HTTP on loopback, the legacy `/api` as the spec describes it.

It serves ``products``, ``combinations`` and ``stock_availables`` the way PrestaShop 1.7/8/9 does (see
``shared/spec/prestashop-webservice.md``, section 9): key authentication through the Basic user or ``ws_key`` and
its exact error bodies and codes, CDATA/xlink documents with associations, ``display``/``filter``/``sort``/``limit``,
``schema``, writes with their validation (PUT nulls absent fields, PATCH is partial on 8+, ids come from the
body, several entities per body, aggregate recompute of a product's stock row), and fault switches (latency,
500s, HTML error pages, hanging answers, malformed XML, "back after N failures"). It counts requests by method.

Run it: ``python -m stockq.integrations.prestashop.emulator --port 8081 --key KEY --products 100``.
From Python: ``handle = start_emulator(key=KEY, products=10); handle.url; handle.state; handle.stop()``.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import re
import secrets
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from stockq.integrations.prestashop import xml as psxml
from stockq.integrations.prestashop.xml import WsError, cdata, escape_attr

REALM = (
    'Basic realm="Welcome to PrestaShop Webservice, please enter the authentication key as the login. '
    'No password required."'
)
METHODS = ("GET", "PUT", "POST", "PATCH", "DELETE", "HEAD")
ALL_RESOURCES = (
    "addresses", "carriers", "categories", "combinations", "currencies", "customers", "images", "languages",
    "manufacturers", "orders", "product_option_values", "products", "shop_groups", "shops", "stock_availables",
    "suppliers", "tags", "tax_rule_groups",
)  # fmt: skip
SERVED = ("products", "combinations", "stock_availables")
SINGULAR = {"products": "product", "combinations": "combination", "stock_availables": "stock_available"}
CLASS_NAME = {"products": "Product", "combinations": "Combination", "stock_availables": "StockAvailable"}
FORBIDDEN_METHODS = {"stock_availables": ("POST", "DELETE")}
INT32 = (-2147483648, 2147483647)
DATE_FIELDS = ("date_add", "date_upd")


class WsFailure(Exception):
    """An answer other than success: status, errors (XML body), extra headers; ``raw`` overrides the body."""

    def __init__(
        self,
        status: int,
        errors: Sequence[WsError] = (),
        *,
        raw: bytes | None = None,
        content_type: str = "text/xml;charset=utf-8",
        headers: dict[str, str] | None = None,
        authenticated: bool = True,
    ) -> None:
        super().__init__(status, errors)
        self.status = status
        self.errors = list(errors)
        self.raw = raw
        self.content_type = content_type
        self.headers = headers or {}
        self.authenticated = authenticated


# --- resource definitions ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Field:
    """A webservice field: xlink target, validation, and whether it is read-only (no setter) or a getter."""

    name: str
    xlink: str | None = None
    required: bool = False
    rule: str = "isString"
    size: int | None = None
    getter: bool = False  # notFilterable="true"
    read_only: bool = False  # setter false: writing it is error 93
    i18n: bool = False
    min_major: int = 0
    max_major: int = 99


PRODUCT_FIELDS = (
    Field("id"),
    Field("id_manufacturer", "manufacturers", rule="isUnsignedId"),
    Field("id_supplier", "suppliers", rule="isUnsignedId"),
    Field("id_category_default", "categories", rule="isUnsignedId"),
    Field("new"),
    Field("cache_default_attribute", rule="isUnsignedId"),
    Field("id_default_image", "images", getter=True),
    Field("id_default_combination", "combinations", getter=True),
    Field("id_tax_rules_group", "tax_rule_groups", rule="isUnsignedId"),
    Field("position_in_category", getter=True),
    Field("manufacturer_name", getter=True, read_only=True),
    Field("quantity", getter=True, read_only=True),
    Field("type", getter=True),
    Field("id_shop_default", "shops", rule="isUnsignedId"),
    Field("reference", rule="isReference", size=64),
    Field("supplier_reference", size=64),
    Field("location", size=255),
    Field("width", rule="isUnsignedFloat"),
    Field("height", rule="isUnsignedFloat"),
    Field("depth", rule="isUnsignedFloat"),
    Field("weight", rule="isUnsignedFloat"),
    Field("ean13", rule="isEan13", size=13),
    Field("isbn", rule="isIsbn", size=32),
    Field("upc", rule="isUpc", size=12),
    Field("mpn", size=40),
    Field("product_type", min_major=8),
    Field("price", required=True, rule="isPrice"),
    Field("active", rule="isBool"),
    Field("date_add"),
    Field("date_upd"),
    Field("link_rewrite", i18n=True, size=128),
    Field("name", i18n=True, size=128),
)
COMBINATION_FIELDS = (
    Field("id"),
    Field("id_product", "products", required=True, rule="isUnsignedId"),
    Field("location", size=64, max_major=7),
    Field("ean13", rule="isEan13", size=13),
    Field("isbn", rule="isIsbn", size=32),
    Field("upc", rule="isUpc", size=12),
    Field("mpn", size=40),
    Field("quantity", rule="isInt", max_major=7),
    Field("reference", size=64),
    Field("supplier_reference", size=64),
    Field("wholesale_price", rule="isPrice"),
    Field("price", rule="isNegativePrice"),
    Field("ecotax", rule="isPrice"),
    Field("weight", rule="isFloat"),
    Field("unit_price_impact", rule="isNegativePrice"),
    Field("minimal_quantity", required=True, rule="isUnsignedInt"),
    Field("low_stock_threshold", rule="isInt"),
    Field("low_stock_alert", rule="isBool"),
    Field("default_on", rule="isBool"),
    Field("available_date"),
)
STOCK_FIELDS = (
    Field("id"),
    Field("id_product", "products", required=True, rule="isUnsignedId"),
    Field("id_product_attribute", "combinations", required=True, rule="isUnsignedId"),
    Field("id_shop", "shops", rule="isUnsignedId"),
    Field("id_shop_group", "shop_groups", rule="isUnsignedId"),
    Field("quantity", required=True, rule="isInt"),
    Field("depends_on_stock", required=True, rule="isBool"),
    Field("out_of_stock", required=True, rule="isInt"),
    Field("location", size=255),
)
FIELDS = {"products": PRODUCT_FIELDS, "combinations": COMBINATION_FIELDS, "stock_availables": STOCK_FIELDS}
ASSOCIATIONS: dict[str, tuple[tuple[str, str, str, tuple[str, ...]], ...]] = {
    # resource: (association name, nodeType, api, item fields)
    "products": (
        ("categories", "category", "categories", ("id",)),
        ("combinations", "combination", "combinations", ("id",)),
        ("stock_availables", "stock_available", "stock_availables", ("id", "id_product_attribute")),
        ("tags", "tag", "tags", ("id",)),
    ),
    "combinations": (("product_option_values", "product_option_value", "product_option_values", ("id",)),),
    "stock_availables": (),
}


def _version_major(version: str) -> int:
    head = version.split(".", 1)[0]
    major = int(head) if head.isdigit() else 8
    return 7 if major == 1 else major


# --- state ---------------------------------------------------------------------------------------------------


@dataclass
class ApiKey:
    """A webservice key: active flag, shops it may use, and methods per resource."""

    key: str
    active: bool = True
    shops: set[int] | None = None  # None: every shop
    permissions: dict[str, set[str]] = field(default_factory=dict)


def full_permissions() -> dict[str, set[str]]:
    return {
        "products": set(METHODS),
        "combinations": set(METHODS),
        "stock_availables": {"GET", "PUT", "PATCH", "HEAD"},
    }


@dataclass
class Faults:
    """Switches for robustness tests. ``mode`` applies to the next ``count`` requests (None: until cleared)."""

    latency_ms: float = 0.0
    mode: str | None = None  # "500" | "html" | "hang" | "malformed" | "reset" | "waf403" | "waf429"
    count: int | None = None
    hang_seconds: float = 5.0
    methods: tuple[str, ...] = METHODS
    put_failures: dict[int, int] = field(default_factory=dict)  # stock_available id → HTTP status for its PUT
    echo_url: bool = True  # 500 bodies repeat the request line, as PHP warnings often do


class EmulatorState:
    """The shop's data, its keys, fault switches and request counters; thread-safe."""

    def __init__(self, *, version: str = "8.1.7", base_url: str = "http://127.0.0.1") -> None:
        self.lock = threading.RLock()
        self.version = version
        self.base_url = base_url
        self.webservice_enabled = True
        self.keys: dict[str, ApiKey] = {}
        self.shops: dict[int, int] = {1: 1}  # shop id → shop group id
        self.default_shop = 1
        self.languages = (1,)
        self.products: dict[int, dict[str, str]] = {}
        self.product_shops: dict[int, set[int]] = {}
        self.product_names: dict[int, str] = {}
        self.combinations: dict[int, dict[str, str]] = {}
        self.stock: dict[int, dict[str, str]] = {}
        self._stock_index: dict[tuple[str, str, str], int] = {}
        self.faults = Faults()
        self.requests: Counter[str] = Counter()
        self.log: list[tuple[str, str]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.stopping = threading.Event()
        self._next = {"products": 1, "combinations": 1, "stock_availables": 1}

    @property
    def major(self) -> int:
        return _version_major(self.version)

    @property
    def api_url(self) -> str:
        return self.base_url.rstrip("/") + "/api/"

    # data helpers used by tests, the CLI and the benchmark
    def add_key(self, key: str, *, permissions: dict[str, set[str]] | None = None, **options: Any) -> ApiKey:
        with self.lock:
            api_key = ApiKey(key, permissions=full_permissions() if permissions is None else permissions, **options)
            self.keys[key] = api_key
            return api_key

    def add_shop(self, shop_id: int, group_id: int = 1) -> None:
        with self.lock:
            self.shops[shop_id] = group_id
            for product_id, shops in self.product_shops.items():
                shops.add(shop_id)
                self._create_stock_rows(product_id, shop_id)

    def add_product(
        self,
        reference: str = "",
        *,
        ean13: str = "",
        name: str | None = None,
        quantity: int = 0,
        combinations: Iterable[tuple[str, str] | tuple[str, str, int]] = (),
        shops: Iterable[int] | None = None,
        active: bool = True,
    ) -> int:
        """A product (with its stock rows in every shop); ``combinations`` are (reference, ean13[, quantity])."""
        with self.lock:
            product_id = self._take("products")
            combos = list(combinations)
            self.products[product_id] = {
                "id": str(product_id), "id_manufacturer": "0", "id_supplier": "0", "id_category_default": "2",
                "new": "", "cache_default_attribute": "0", "id_default_image": "", "id_default_combination": "0",
                "id_tax_rules_group": "1", "position_in_category": "0", "manufacturer_name": "", "quantity": "0",
                "type": "simple", "id_shop_default": "1", "reference": reference, "supplier_reference": "",
                "location": "", "width": "0.000000", "height": "0.000000", "depth": "0.000000",
                "weight": "0.000000", "ean13": ean13, "isbn": "", "upc": "", "mpn": "",
                "product_type": "combinations" if combos else "standard", "price": "10.000000",
                "active": "1" if active else "0", "date_add": "2024-01-01 00:00:00",
                "date_upd": "2024-01-01 00:00:00", "link_rewrite": f"product-{product_id}",
                "name": name or reference or f"Product {product_id}",
            }  # fmt: skip
            self.product_shops[product_id] = set(self.shops if shops is None else shops)
            for shop_id in self.product_shops[product_id]:
                self._create_stock_rows(product_id, shop_id, quantity=quantity)
            for index, combo in enumerate(combos):
                self.add_combination(
                    product_id, combo[0], ean13=combo[1], quantity=combo[2] if len(combo) > 2 else 0, default=index == 0
                )
            return product_id

    def add_combination(
        self, product_id: int, reference: str = "", *, ean13: str = "", quantity: int = 0, default: bool = False
    ) -> int:
        with self.lock:
            combination_id = self._take("combinations")
            self.combinations[combination_id] = {
                "id": str(combination_id), "id_product": str(product_id), "location": "", "ean13": ean13,
                "isbn": "", "upc": "", "mpn": "", "quantity": "0", "reference": reference,
                "supplier_reference": "", "wholesale_price": "0.000000", "price": "0.000000",
                "ecotax": "0.000000", "weight": "0.000000", "unit_price_impact": "0.000000",
                "minimal_quantity": "1", "low_stock_threshold": "", "low_stock_alert": "0",
                "default_on": "1" if default else "", "available_date": "0000-00-00",
            }  # fmt: skip
            product = self.products[product_id]
            product["product_type"] = "combinations"
            if default or product["id_default_combination"] == "0":
                product["id_default_combination"] = str(combination_id)
                product["cache_default_attribute"] = str(combination_id)
            for shop_id in self.product_shops[product_id]:
                self._create_stock_rows(product_id, shop_id, combination_id=combination_id, quantity=quantity)
                self._recompute_product_row(product_id, shop_id)
            return combination_id

    def populate(self, count: int, *, quantity: int = 0, prefix: str = "SKU-") -> list[int]:
        """``count`` simple products with references ``SKU-000001``… and EAN13s ``590000000001``…"""
        return [
            self.add_product(f"{prefix}{i:06d}", ean13=f"{5900000000000 + i}", quantity=quantity)
            for i in range(1, count + 1)
        ]

    def stock_row(self, product_id: int, combination_id: int = 0, shop_id: int | None = None) -> dict[str, str]:
        shop = self.default_shop if shop_id is None else shop_id
        with self.lock:
            for row in self.stock.values():
                if (row["id_product"], row["id_product_attribute"], row["id_shop"]) == (
                    str(product_id),
                    str(combination_id),
                    str(shop),
                ):
                    return row
        raise KeyError((product_id, combination_id, shop))

    def stock_id(self, product_id: int, combination_id: int = 0, shop_id: int | None = None) -> int:
        return int(self.stock_row(product_id, combination_id, shop_id)["id"])

    def quantity(self, product_id: int, combination_id: int = 0, shop_id: int | None = None) -> int:
        return int(self.stock_row(product_id, combination_id, shop_id)["quantity"])

    def set_quantity(self, product_id: int, quantity: int, combination_id: int = 0, shop_id: int | None = None) -> None:
        with self.lock:
            row = self.stock_row(product_id, combination_id, shop_id)
            row["quantity"] = str(quantity)
            if combination_id:
                self._recompute_product_row(product_id, int(row["id_shop"]))

    def set_fault(self, mode: str | None, count: int | None = None, **options: Any) -> None:
        """Answer the next ``count`` requests (every request when None) with fault ``mode``; None clears it."""
        with self.lock:
            self.faults.mode = mode
            self.faults.count = count
            for name, value in options.items():
                setattr(self.faults, name, value)

    def reset_counters(self) -> None:
        with self.lock:
            self.requests.clear()
            self.log.clear()
            self.max_in_flight = self.in_flight

    def _take(self, resource: str) -> int:
        value = self._next[resource]
        self._next[resource] += 1
        return value

    def _create_stock_rows(self, product_id: int, shop_id: int, *, combination_id: int = 0, quantity: int = 0) -> None:
        attribute = str(combination_id)
        index_key = (str(product_id), attribute, str(shop_id))
        if index_key in self._stock_index:
            return
        stock_id = self._take("stock_availables")
        self._stock_index[index_key] = stock_id
        self.stock[stock_id] = {
            "id": str(stock_id), "id_product": str(product_id), "id_product_attribute": attribute,
            "id_shop": str(shop_id), "id_shop_group": "0", "quantity": str(quantity), "depends_on_stock": "0",
            "out_of_stock": "2", "location": "",
        }  # fmt: skip

    def _recompute_product_row(self, product_id: int, shop_id: int) -> None:
        """StockAvailable::postSave: the product row (attribute 0) is the sum of its combination rows."""
        total = 0
        product_row = None
        for row in self.stock.values():
            if row["id_product"] != str(product_id) or row["id_shop"] != str(shop_id):
                continue
            if row["id_product_attribute"] == "0":
                product_row = row
            else:
                total += int(row["quantity"] or 0)
        if product_row is not None:
            product_row["quantity"] = str(total)

    # views of resources
    def table(self, resource: str) -> dict[int, dict[str, str]]:
        return {"products": self.products, "combinations": self.combinations, "stock_availables": self.stock}[resource]

    def visible(self, resource: str, row: dict[str, str], shops: set[int]) -> bool:
        if resource == "products":
            return bool(self.product_shops.get(int(row["id"]), set()) & shops)
        if resource == "combinations":
            return bool(self.product_shops.get(int(row["id_product"]), set()) & shops)
        shop = int(row["id_shop"] or 0)
        if shop in shops:
            return True
        groups = {self.shops[s] for s in shops if s in self.shops}
        return shop == 0 and int(row["id_shop_group"] or 0) in groups


# --- query parameters ----------------------------------------------------------------------------------------

_RANGE_SIDE = re.compile(r"^[\d.:\- ]+$")


def _numeric(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def _compare(left: str, right: str) -> int:
    a, b = _numeric(left), _numeric(right)
    if a is not None and b is not None:
        return (a > b) - (a < b)
    la, lb = left.lower(), right.lower()
    return (la > lb) - (la < lb)


def _like(pattern: str) -> re.Pattern[str]:
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.compile(f"^{regex}$", re.IGNORECASE | re.DOTALL)


def build_filter(name: str, raw: str, major: int) -> Callable[[str], bool]:
    """PrestaShop's SQLUtils semantics for one ``filter[name]=raw``."""
    if raw == "":
        raise WsFailure(400, [WsError(33, f'The filter "{name}" is malformed.')])
    match = re.fullmatch(r"(%?)\[(.*)\](%?)", raw, re.DOTALL)
    if match and (match.group(1) or match.group(3)):
        return _like(match.group(1) + match.group(2) + match.group(3)).match  # type: ignore[return-value]
    for prefix in (">", "<"):
        if raw.startswith(prefix + "[") and raw.endswith("]"):
            bound = raw[2:-1]
            sign = 1 if prefix == ">" else -1
            return lambda v: _compare(v, bound) * sign > 0
    if raw.startswith("![") and raw.endswith("]"):
        excluded = [part.lower() for part in raw[2:-1].split("|")]
        return lambda v: v.lower() not in excluded
    if match:
        inner = match.group(2)
        if "|" in inner and not inner.startswith("|"):
            options = [part.lower() for part in inner.split("|")]
            return lambda v: v.lower() in options
        if "," in inner:
            low, _, high = inner.partition(",")
            if _RANGE_SIDE.match(low) and _RANGE_SIDE.match(high):
                return lambda v: _compare(v, low) >= 0 and _compare(v, high) <= 0
        wanted = inner.lower()
        return lambda v: v.lower() == wanted
    if major < 8 and _numeric(raw) is not None:
        return _like(raw).match  # type: ignore[return-value]
    wanted = raw.lower()
    return lambda v: v.lower() == wanted


@dataclass(frozen=True, slots=True)
class Display:
    """What a GET shows: minimal (ids), full, or a subset of fields (with association subsets)."""

    mode: str  # "minimal" | "full" | "fields"
    fields: tuple[str, ...] = ()
    associations: dict[str, tuple[str, ...] | None] = field(default_factory=dict)


def _split_top(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in text:
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
            if depth < 0:
                raise ValueError("unbalanced")
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    if depth != 0:
        raise ValueError("unbalanced")
    parts.append(current)
    return [p.strip() for p in parts]


def parse_display(raw: str | None, resource: str, major: int, *, single: bool) -> Display:
    if raw is None:
        return Display("full") if single else Display("minimal")
    if raw == "full":
        return Display("full")
    if raw == "minimal":
        return Display("minimal")
    if not (raw.startswith("[") and raw.endswith("]")):
        raise WsFailure(400, [WsError(36, 'The "display" syntax is wrong. You can set "full" or "[field_1,field_2]"')])
    try:
        items = _split_top(raw[1:-1])
    except ValueError:
        raise WsFailure(400, [WsError(36, 'The "display" syntax is wrong')]) from None
    known = [f.name for f in FIELDS[resource] if f.min_major <= major <= f.max_major]
    association_names = {a[0]: a for a in ASSOCIATIONS[resource]}
    fields: list[str] = []
    associations: dict[str, tuple[str, ...] | None] = {}
    for item in items:
        name, _, rest = item.partition("[")
        if name in association_names:
            sub = tuple(s.strip() for s in rest.rstrip("]").split(",")) if rest else None
            associations[name] = sub
        elif name in known and not rest:
            fields.append(name)
        else:
            available = ",".join(known + list(association_names))
            raise WsFailure(
                400, [WsError(35, f'Unable to display this field "{name}". However, these are available: {available}')]
            )
    return Display("fields", tuple(f for f in known if f in fields), associations)


def parse_sort(raw: str | None, resource: str, *, with_dates: bool = False) -> list[tuple[str, bool]]:
    if raw is None:
        return [("id", False)]
    text = raw[1:-1] if raw.startswith("[") and raw.endswith("]") else raw
    known = {f.name for f in FIELDS[resource] if not f.getter and (with_dates or f.name not in DATE_FIELDS)}
    order: list[tuple[str, bool]] = []
    for part in text.split(","):
        name, _, direction = part.strip().rpartition("_")
        if direction.upper() not in ("ASC", "DESC"):
            raise WsFailure(400, [WsError(38, f'The "sort" value has to be formed as this example: "field_ASC" or '
                                              f'"[field_1_DESC,field_2_ASC,field_3_ASC,...]" ("{direction}" is not '
                                              'correct)')])  # fmt: skip
        if name not in known:
            raise WsFailure(400, [WsError(37, f'Unable to filter by this field "{name}". However, these are '
                                              f'available: {", ".join(sorted(known))}')])  # fmt: skip
        order.append((name, direction.upper() == "DESC"))
    return order


def parse_limit(raw: str | None) -> tuple[int, int | None]:
    if raw is None:
        return 0, None
    parts = raw.split(",")
    if len(parts) > 2:
        raise WsFailure(400, [WsError(39, 'The "limit" value has to be formed as this example: "5,25" or "10"')])

    def as_int(text: str) -> int:
        found = re.match(r"\s*(\d+)", text)
        return int(found.group(1)) if found else 0

    if len(parts) == 1:
        return 0, as_int(parts[0])
    return as_int(parts[0]), as_int(parts[1])


# --- validation ----------------------------------------------------------------------------------------------


def _valid(rule: str, value: str, major: int) -> bool:
    if rule == "isUnsignedId" or rule == "isUnsignedInt":
        return value.isdigit() and int(value) <= 4294967295
    if rule == "isInt":
        if not re.fullmatch(r"-?(0|[1-9]\d*)", value) or value == "-0":
            return False
        return major < 8 or INT32[0] <= int(value) <= INT32[1]
    if rule == "isBool":
        return value in ("0", "1")
    if rule == "isReference":
        return not re.search(r"[<>;={}]", value)
    if rule == "isEan13":
        return bool(re.fullmatch(r"[0-9]{0,14}" if major >= 9 else r"[0-9]{0,13}", value))
    if rule == "isUpc":
        return bool(re.fullmatch(r"[0-9]{0,12}", value))
    if rule == "isIsbn":
        return bool(re.fullmatch(r"[0-9-]{0,32}", value))
    if rule in ("isPrice", "isUnsignedFloat"):
        return bool(re.fullmatch(r"\d{1,10}(\.\d{1,9})?", value))
    if rule in ("isNegativePrice", "isFloat"):
        return bool(re.fullmatch(r"-?\d{1,10}(\.\d{1,9})?", value))
    return True


# --- rendering -----------------------------------------------------------------------------------------------


class Renderer:
    def __init__(self, state: EmulatorState) -> None:
        self.state = state
        self.api = state.api_url
        self.major = state.major

    def fields(self, resource: str) -> list[Field]:
        return [f for f in FIELDS[resource] if f.min_major <= self.major <= f.max_major]

    def field_line(self, spec: Field, row: dict[str, str], resource: str) -> str:
        value = row.get(spec.name, "")
        attrs = ""
        if spec.i18n:
            languages = "".join(
                f'<language id="{lang}" xlink:href="{self.api}languages/{lang}">{cdata(value)}</language>'
                for lang in self.state.languages
            )
            return f"\t<{spec.name}>{languages}</{spec.name}>\n"
        if spec.xlink and value not in ("", "0"):
            attrs += f' xlink:href="{self.api}{spec.xlink}/{escape_attr(value)}"'
        if spec.getter:
            attrs += ' notFilterable="true"'
        return f"\t<{spec.name}{attrs}>{cdata(value)}</{spec.name}>\n"

    def associations(
        self, resource: str, row: dict[str, str], only: dict[str, tuple[str, ...] | None] | None, shops: set[int]
    ) -> str:
        definitions = ASSOCIATIONS[resource]
        if not definitions or (only is not None and not only):
            return ""
        parts = ["<associations>\n"]
        for name, node_type, api, item_fields in definitions:
            if only is not None and name not in only:
                continue
            wanted = (only or {}).get(name) or item_fields
            items = self.association_items(resource, row, name, shops)
            if not items:
                parts.append(f'<{name} nodeType="{node_type}" api="{api}"/>\n')
                continue
            parts.append(f'<{name} nodeType="{node_type}" api="{api}">\n')
            for item in items:
                parts.append(f'\t<{node_type} xlink:href="{self.api}{api}/{item["id"]}">\n')
                for item_field in wanted:
                    if item_field in item:
                        parts.append(f"\t<{item_field}>{cdata(item[item_field])}</{item_field}>\n")
                parts.append(f"\t</{node_type}>\n")
            parts.append(f"</{name}>\n")
        parts.append("</associations>\n")
        return "".join(parts)

    def association_items(self, resource: str, row: dict[str, str], name: str, shops: set[int]) -> list[dict[str, str]]:
        if resource != "products":
            return []
        product_id = row["id"]
        if name == "categories":
            return [{"id": row.get("id_category_default", "2")}]
        if name == "combinations":
            return [{"id": c["id"]} for c in self.state.combinations.values() if c["id_product"] == product_id]
        if name == "stock_availables":
            return [
                {"id": s["id"], "id_product_attribute": s["id_product_attribute"]}
                for s in self.state.stock.values()
                if s["id_product"] == product_id and int(s["id_shop"] or 0) in shops
            ]
        return []

    def shown_fields(self, resource: str, display: Display | None) -> list[Field]:
        return [
            spec
            for spec in self.fields(resource)
            if display is None or display.mode == "full" or spec.name in display.fields
        ]

    def entity(
        self,
        resource: str,
        row: dict[str, str],
        shops: set[int],
        display: Display | None = None,
        specs: list[Field] | None = None,
    ) -> str:
        singular = SINGULAR[resource]
        parts = [f"<{singular}>\n"]
        for spec in specs if specs is not None else self.shown_fields(resource, display):
            parts.append(self.field_line(spec, row, resource))
        only = None if display is None or display.mode == "full" else display.associations
        parts.append(self.associations(resource, row, only, shops))
        parts.append(f"</{singular}>\n")
        return "".join(parts)

    def listing(self, resource: str, rows: list[dict[str, str]], display: Display, shops: set[int]) -> str:
        singular = SINGULAR[resource]
        if not rows:
            return psxml.document(f"<{resource}>\n</{resource}>\n")
        parts = [f"<{resource}>\n"]
        if display.mode == "minimal":
            for row in rows:
                parts.append(f'<{singular} id="{row["id"]}" xlink:href="{self.api}{resource}/{row["id"]}"/>\n')
        else:
            specs = self.shown_fields(resource, display)
            for row in rows:
                parts.append(self.entity(resource, row, shops, display, specs))
        parts.append(f"</{resource}>\n")
        return psxml.document("".join(parts))

    def schema(self, resource: str, kind: str) -> str:
        singular = SINGULAR[resource]
        parts = [f"<{singular}>\n"]
        for spec in self.fields(resource):
            if kind == "blank":
                if spec.read_only:
                    continue
                if spec.i18n:
                    parts.append(f'\t<{spec.name}><language id="1">{cdata("")}</language></{spec.name}>\n')
                else:
                    parts.append(f"\t<{spec.name}>{cdata('')}</{spec.name}>\n")
            else:
                if spec.name == "id":
                    continue
                attrs = ""
                if spec.required:
                    attrs += ' required="true"'
                if spec.size:
                    attrs += f' maxSize="{spec.size}"'
                if spec.rule != "isString":
                    attrs += f' format="{spec.rule}"'
                if spec.read_only:
                    attrs += ' read_only="true"'
                parts.append(f"\t<{spec.name}{attrs}></{spec.name}>\n")
        parts.append(f"</{singular}>\n")
        return psxml.document("".join(parts))


# --- the request handler -------------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    body: bytes = b""
    content_type: str = "text/xml;charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    authenticated: bool = True
    success: bool = False


class Webservice:
    """The dispatcher: one call per request, independent of the HTTP server (so it is testable directly)."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Answer:
        try:
            return self._dispatch(method, target, headers, body)
        except WsFailure as failure:
            if failure.raw is not None:
                payload = failure.raw
            elif failure.errors:
                payload = psxml.error_document(failure.errors).encode()
            else:
                payload = b""
            return Answer(
                failure.status,
                payload,
                failure.content_type if payload else "",
                failure.headers,
                authenticated=failure.authenticated,
            )

    def _dispatch(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Answer:
        state = self.state
        split = urlsplit(target)
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        if "ps_method" in query:
            method = query["ps_method"].upper()
        path = split.path
        if not path.startswith("/api"):
            raise WsFailure(404, raw=b"<html><body><h1>404 Not Found</h1></body></html>", content_type="text/html")
        parts = [p for p in path[len("/api") :].split("/") if p]
        if method == "OPTIONS" and state.major >= 9:  # 9.0 answers CORS preflights without a key
            return Answer(200, b"", "", headers={"Allow": ", ".join(METHODS)})
        if not state.webservice_enabled:
            raise WsFailure(
                503,
                [
                    WsError(
                        22, "The PrestaShop webservice is disabled. Please activate it in the PrestaShop Back Office"
                    )
                ],
                authenticated=False,
            )
        api_key = self._authenticate(headers, query)
        shops = self._context_shops(query)
        if api_key.shops is not None and not shops <= api_key.shops:
            raise WsFailure(403, [WsError(132, "No permission for this key on this shop")])
        if not parts:
            return self._api_index(api_key)
        resource = parts[0]
        if resource not in ALL_RESOURCES:
            suggestion = min(ALL_RESOURCES, key=lambda r: _distance(r, resource))
            raise WsFailure(
                400,
                [
                    WsError(
                        27,
                        f'Resource of type "{resource}" does not exists. Did you mean: "{suggestion}"? '
                        'The full list is: "' + '", "'.join(ALL_RESOURCES) + '"',
                    )
                ],
            )
        if resource not in api_key.permissions or not api_key.permissions[resource]:
            raise WsFailure(
                401, [WsError(26, f'Resource of type "{resource}" is not allowed with this authentication key')]
            )
        if method not in METHODS or (method == "PATCH" and state.major < 8):
            raise WsFailure(405, [WsError(23, f"Method {method} is not valid")])
        if method in FORBIDDEN_METHODS.get(resource, ()):
            raise WsFailure(405, [WsError(101, f"Method {method} is not allowed for the resource {resource}")])
        if method not in api_key.permissions[resource]:
            raise WsFailure(
                405,
                [
                    WsError(
                        25, f"Method {method} is not allowed for the resource {resource} with this authentication key"
                    )
                ],
            )
        if resource not in SERVED:
            return Answer(200, psxml.document(f"<{resource}>\n</{resource}>\n").encode(), success=True)
        object_id = parts[1] if len(parts) > 1 else None
        if method in ("GET", "HEAD"):
            answer = self._get(resource, object_id, query, shops)
            if answer.success and state.major >= 8 and headers.get("local-content-sha1"):
                if headers["local-content-sha1"] == hashlib.sha1(answer.body).hexdigest():
                    return Answer(304, b"", "", success=False)
            if method == "HEAD":
                answer.body = b""
            return answer
        if method == "DELETE":
            return self._delete(resource, object_id, query)
        return self._write(method, resource, body, shops)

    def _authenticate(self, headers: dict[str, str], query: dict[str, str]) -> ApiKey:
        key: str | None = None
        authorization = headers.get("authorization", "")
        if authorization.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode("utf-8", "replace")
            except (binascii.Error, ValueError):
                decoded = ""
            key = decoded.partition(":")[0]
        elif "ws_key" in query:
            key = query["ws_key"]
        if key is None:
            raise WsFailure(
                401,
                raw=b"401 Unauthorized",
                content_type="text/html;charset=utf-8",
                headers={"WWW-Authenticate": REALM},
                authenticated=False,
            )
        www = {"WWW-Authenticate": REALM}
        if key == "":
            raise WsFailure(401, [WsError(17, "Authentication key is empty")], headers=www, authenticated=False)
        if len(key) != 32:
            raise WsFailure(401, [WsError(18, "Invalid authentication key format")], headers=www, authenticated=False)
        with self.state.lock:
            api_key = self.state.keys.get(key)
        if api_key is None or not api_key.active:
            raise WsFailure(
                401,
                [
                    WsError(20, "Authentification key is not active"),
                    WsError(21, "No permission for this authentication key"),
                ],
                headers=www,
                authenticated=False,
            )
        if not any(api_key.permissions.values()):
            raise WsFailure(
                401, [WsError(21, "No permission for this authentication key")], headers=www, authenticated=False
            )
        return api_key

    def _context_shops(self, query: dict[str, str]) -> set[int]:
        state = self.state
        raw = query.get("id_shop")
        if raw is not None:
            if raw == "all":
                return set(state.shops)
            if not raw.isdigit() or int(raw) not in state.shops:
                raise WsFailure(404, [WsError(999, "This shop id does not exist")])
            return {int(raw)}
        group = query.get("id_group_shop") or (query.get("id_shop_group") if state.major >= 8 else None)
        if group is not None:
            members = {s for s, g in state.shops.items() if str(g) == group}
            if not members:
                raise WsFailure(500, [WsError(999, "This shop group doesn't have shops")])
            return members
        return {state.default_shop}

    def _api_index(self, api_key: ApiKey) -> Answer:
        api = self.state.api_url
        parts = ['<api shopName="stockq emulator">\n']
        for resource in sorted(api_key.permissions):
            allowed = api_key.permissions[resource]
            flags = " ".join(
                f'{m.lower()}="{"true" if m in allowed and m not in FORBIDDEN_METHODS.get(resource, ()) else "false"}"'
                for m in METHODS
            )
            parts.append(f'<{resource} xlink:href="{api}{resource}" {flags}>\n')
            parts.append(f'<description xlink:href="{api}{resource}" {flags}>The {resource}</description>\n')
            parts.append(f'<schema xlink:href="{api}{resource}?schema=blank" type="blank"/>\n')
            parts.append(f"</{resource}>\n")
        parts.append("</api>\n")
        return Answer(200, psxml.document("".join(parts)).encode(), success=True)

    def _get(self, resource: str, object_id: str | None, query: dict[str, str], shops: set[int]) -> Answer:
        state = self.state
        renderer = Renderer(state)
        if "schema" in query:
            if query["schema"] not in ("blank", "synopsis"):
                raise WsFailure(400, [WsError(28, "Please select a schema of type 'synopsis' to get the whole schema "
                                                  "informations (which fields are required, which kind of content...) "
                                                  "or 'blank' to get an empty schema to fill before using POST "
                                                  "request")])  # fmt: skip
            return Answer(200, renderer.schema(resource, query["schema"]).encode(), success=True)
        with state.lock:
            table = state.table(resource)
            if object_id is not None:
                row = table.get(int(object_id)) if object_id.isdigit() else None
                if row is None:
                    raise WsFailure(404)
                if not state.visible(resource, row, shops):
                    raise WsFailure(
                        404, [WsError(131, f"This {CLASS_NAME[resource]} ({object_id}) does not exists on this shop")]
                    )
                if "display" in query and state.major >= 8:
                    display = parse_display(query["display"], resource, state.major, single=True)
                    body = renderer.listing(resource, [dict(row)], display, shops)
                else:
                    body = psxml.document(renderer.entity(resource, dict(row), shops))
                return Answer(200, body.encode(), success=True)
            display = parse_display(query.get("display"), resource, state.major, single=False)
            rows = [r for r in table.values() if state.visible(resource, r, shops)]
        with_dates = query.get("date") == "1"  # date_add/date_upd filter and sort only with date=1
        fields = {f.name: f for f in FIELDS[resource] if with_dates or f.name not in DATE_FIELDS}
        for key, raw in query.items():
            found = re.fullmatch(r"filter\[(.+)\]", key)
            if not found:
                continue
            name = found.group(1)
            spec = fields.get(name)
            if spec is None:
                suggestion = min(fields, key=lambda f: _distance(f, name))
                raise WsFailure(
                    400,
                    [
                        WsError(
                            32,
                            f'This filter does not exist. Did you mean: "{suggestion}"? The full list is: '
                            '"' + '", "'.join(fields) + '"',
                        )
                    ],
                )
            if spec.getter:
                raise WsFailure(400, [WsError(34, f'The field "{name}" is not filterable.')])
            predicate = build_filter(name, raw, state.major)
            rows = [r for r in rows if predicate(r.get(name, ""))]
        order = parse_sort(query.get("sort"), resource, with_dates=with_dates)
        if order != [("id", False)]:  # tables are kept in id order already
            for name, descending in reversed(order):
                numeric = name == "id" or name.startswith("id_") or name == "quantity"
                rows.sort(key=_sort_key(name, numeric), reverse=descending)
        offset, count = parse_limit(query.get("limit"))
        rows = rows[offset:] if count is None else rows[offset : offset + count]
        with state.lock:
            body = renderer.listing(resource, [dict(r) for r in rows], display, shops)
        return Answer(200, body.encode(), success=True)

    def _delete(self, resource: str, object_id: str | None, query: dict[str, str]) -> Answer:
        state = self.state
        ids: list[str] = []
        if object_id is not None:
            ids = [object_id]
        elif "id" in query:
            ids = [i for i in query["id"].strip("[]").replace(",", "|").split("|") if i]
        with state.lock:
            table = state.table(resource)
            missing = [i for i in ids if not i.isdigit() or int(i) not in table]
            if missing or not ids:
                raise WsFailure(404, [WsError(87, f"Id(s) not exists: {', '.join(missing)}")])
            for i in ids:
                row = table.pop(int(i))
                if resource == "products":
                    for cid in [c for c, v in state.combinations.items() if v["id_product"] == row["id"]]:
                        del state.combinations[cid]
                    for sid in [s for s, v in state.stock.items() if v["id_product"] == row["id"]]:
                        del state.stock[sid]
                elif resource == "combinations":
                    for sid in [s for s, v in state.stock.items() if v["id_product_attribute"] == row["id"]]:
                        del state.stock[sid]
        return Answer(200, b"", "", success=True)

    def _write(self, method: str, resource: str, body: bytes, shops: set[int]) -> Answer:
        state = self.state
        if body.startswith(b"xml="):
            body = body[4:]
        try:
            root = psxml.parse(body)
        except psxml.XmlError as exc:
            text = body.decode("utf-8", "replace")
            message = f"XML error : {exc}\nXML length : {len(body)}\nOriginal XML : {text}"
            if not body.strip():
                message = f"XML error : String could not be parsed as XML\nXML length : 0\nOriginal XML : {text}"
            raise WsFailure(500, [WsError(127, message)]) from None
        entities = [e for e in root if isinstance(e.tag, str)]
        specs = {f.name: f for f in FIELDS[resource] if f.min_major <= state.major <= f.max_major}
        ids = [psxml.text_of(e.find("id")).strip() for e in entities]
        if method in ("PUT", "PATCH"):
            if any(e.find("id") is None for e in entities):
                raise WsFailure(400, [WsError(90, "id is required when modifying a resource")])
            if len(set(ids)) != len(ids):
                raise WsFailure(400, [WsError(89, "id is duplicate in request")])
        elif any(e.find("id") is not None for e in entities):
            raise WsFailure(400, [WsError(91, "id is forbidden when adding a new resource")])
        saved: list[dict[str, str]] = []
        with state.lock:
            table = state.table(resource)
            for entity, object_id in zip(entities, ids, strict=True):
                if method == "POST":
                    row = {name: "" for name in specs}
                    current = None
                else:
                    current = table.get(int(object_id)) if object_id.isdigit() else None
                    if current is None:
                        raise WsFailure(404, [WsError(92, "Invalid ID")])
                    row = dict(current)
                self._assign(method, resource, entity, row, specs)
                self._validate(resource, row, specs)
                if resource == "stock_availables" and row["depends_on_stock"] == "1" and state.major < 9:
                    raise WsFailure(
                        500,
                        [
                            WsError(133, "You cannot update the available stock when it depends on stock."),
                            WsError(46, "Unable to save resource"),
                        ],
                    )
                if resource == "stock_availables" and object_id.isdigit():
                    failure = state.faults.put_failures.get(int(object_id))
                    if failure is not None:
                        raise WsFailure(failure, [WsError(46, "Unable to save resource")])
                saved.append(self._save(method, resource, row, current, shops))
        renderer = Renderer(state)
        with state.lock:
            body_text = psxml.document("".join(renderer.entity(resource, r, shops) for r in saved))
        return Answer(201 if method == "POST" else 200, body_text.encode(), success=True)

    def _assign(self, method: str, resource: str, entity: Any, row: dict[str, str], specs: dict[str, Field]) -> None:
        present = {child.tag: child for child in entity if isinstance(child.tag, str)}
        for name, spec in specs.items():
            if name == "id":
                continue
            if name in present:
                if spec.read_only:
                    raise WsFailure(
                        400, [WsError(93, f'parameter "{name}" not writable. Please remove this attribute of this XML')]
                    )
                element = present[name]
                if spec.i18n:
                    language = element.find("language")
                    row[name] = psxml.text_of(language if language is not None else element)
                else:
                    row[name] = element.text or ""
            elif method == "PATCH":
                continue
            elif spec.getter or spec.read_only:
                continue
            elif spec.required:
                raise WsFailure(400, [WsError(41, f'parameter "{name}" required')])
            else:
                row[name] = "0" if spec.rule == "isUnsignedId" else ""

    def _validate(self, resource: str, row: dict[str, str], specs: dict[str, Field]) -> None:
        class_name = CLASS_NAME[resource]
        for name, spec in specs.items():
            if name == "id" or spec.getter:
                continue
            value = row.get(name, "")
            if spec.required and value == "":
                raise WsFailure(400, [WsError(85, f'Validation error: "Property {class_name}->{name} is empty."')])
            if value == "":
                continue
            if spec.size is not None and len(value) > spec.size:
                raise WsFailure(
                    400,
                    [
                        WsError(
                            85,
                            f"The length of property {class_name}->{name} is currently {len(value)} chars. "
                            f"It must be between 0 and {spec.size} chars.",
                        )
                    ],
                )
            if not _valid(spec.rule, value, self.state.major):
                raise WsFailure(400, [WsError(85, f'Validation error: "Property {class_name}->{name} is not valid"')])

    def _save(
        self, method: str, resource: str, row: dict[str, str], current: dict[str, str] | None, shops: set[int]
    ) -> dict[str, str]:
        state = self.state
        table = state.table(resource)
        if current is None:
            if resource == "products":
                new_id = state.add_product(row.get("reference", ""), ean13=row.get("ean13", ""), shops=shops)
                table[new_id].update({k: v for k, v in row.items() if k != "id" and v != ""})
            else:
                new_id = state.add_combination(
                    int(row["id_product"]), row.get("reference", ""), ean13=row.get("ean13", "")
                )
                table[new_id].update({k: v for k, v in row.items() if k != "id" and v != ""})
            return dict(table[new_id])
        current.update(row)
        if resource == "stock_availables" and current["id_product_attribute"] != "0":
            state._recompute_product_row(int(current["id_product"]), int(current["id_shop"] or 0))
        return dict(current)


def _sort_key(name: str, numeric: bool) -> Callable[[dict[str, str]], Any]:
    if numeric:
        return lambda row: int(row.get(name) or 0)
    return lambda row: row.get(name, "").lower()


def _distance(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


# --- HTTP server ---------------------------------------------------------------------------------------------

HTML_PAGES = {
    "html": (503, "<html><head><title>503 Service Unavailable</title></head><body><h1>Service Unavailable</h1>"
                  "<p>The server is temporarily unable to service your request.</p></body></html>"),
    "waf403": (403, "<html><head><title>403 Forbidden</title></head><body><h1>Access denied</h1>"
                    "<p>Request blocked by the web application firewall.</p></body></html>"),
    "waf429": (429, "<html><head><title>429 Too Many Requests</title></head><body><h1>Too Many Requests</h1>"
                    "</body></html>"),
}  # fmt: skip


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Apache"
    sys_version = ""
    state: EmulatorState
    service: Webservice

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _serve(self) -> None:
        state = self.state
        started = time.perf_counter()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with state.lock:
            state.requests[self.command] += 1
            state.log.append((self.command, self.path))
            state.in_flight += 1
            state.max_in_flight = max(state.max_in_flight, state.in_flight)
            fault = self._take_fault()
            latency = state.faults.latency_ms
        try:
            if latency:
                state.stopping.wait(latency / 1000)
            if fault is not None and self._fault(fault, started):
                return
            headers = {k.lower(): v for k, v in self.headers.items()}
            answer = self.service.handle(self.command, self.path, headers, body)
            self._send(answer, started, head=self.command == "HEAD")
        finally:
            with state.lock:
                state.in_flight -= 1

    def _take_fault(self) -> str | None:
        faults = self.state.faults
        if faults.mode is None or self.command not in faults.methods:
            return None
        mode = faults.mode
        if faults.count is not None:
            faults.count -= 1
            if faults.count <= 0:
                faults.mode, faults.count = None, None
        return mode

    def _fault(self, mode: str, started: float) -> bool:
        """Answer with fault ``mode``; True when the request is fully handled."""
        state = self.state
        if mode == "hang":
            state.stopping.wait(state.faults.hang_seconds)
            mode = "500"
        if mode == "reset":
            self.close_connection = True
            self.connection.shutdown(2)
            return True
        if mode in HTML_PAGES:
            status, page = HTML_PAGES[mode]
            self._send(Answer(status, page.encode(), "text/html; charset=UTF-8", authenticated=False), started)
            return True
        if mode == "malformed":
            self._send(
                Answer(200, b'<?xml version="1.0"?>\n<prestashop><products><product id="1"', success=True), started
            )
            return True
        # Shops behind proxies that turn the Basic user into ws_key echo it back in PHP warnings: clients must
        # redact what they repeat.
        echo = f" while serving {self.command} {self._url_with_key()}" if state.faults.echo_url else ""
        errors = [
            WsError(2, f"[PHP Warning #2] mysqli::query(): MySQL server has gone away{echo} "
                       "(/var/www/html/classes/db/DbMySQLi.php, line 206)"),
            WsError(46, "Unable to save resource") if self.command in ("PUT", "POST", "PATCH") else
            WsError(None, "Internal error"),
        ]  # fmt: skip
        self._send(Answer(500, psxml.error_document(errors).encode()), started)
        return True

    def _url_with_key(self) -> str:
        authorization = self.headers.get("Authorization", "")
        key = ""
        if authorization.lower().startswith("basic "):
            try:
                key = base64.b64decode(authorization[6:].strip()).decode("utf-8", "replace").partition(":")[0]
            except (binascii.Error, ValueError):
                key = ""
        if not key or "ws_key=" in self.path:
            return self.path
        return self.path + ("&" if "?" in self.path else "?") + "ws_key=" + key

    def _send(self, answer: Answer, started: float, *, head: bool = False) -> None:
        state = self.state
        try:
            self.send_response(answer.status)
            self.send_header("Access-Time", str(int(time.time())))
            self.send_header("X-Powered-By", "PrestaShop Webservice")
            authenticated_version = state.version if answer.authenticated or state.major < 8 else "0"
            self.send_header("PSWS-Version", authenticated_version)
            if answer.content_type and (answer.body or head):
                self.send_header("Content-Type", answer.content_type)
            self.send_header("Execution-Time", f"{time.perf_counter() - started:.3f}")
            if answer.success and answer.body:
                self.send_header("Content-Sha1", hashlib.sha1(answer.body).hexdigest())
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            if answer.body and not head:
                self.wfile.write(answer.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


@dataclass
class EmulatorHandle:
    """A running emulator: ``url`` is the shop's base URL (the API is at ``url + "/api/"``)."""

    url: str
    state: EmulatorState
    server: ThreadingHTTPServer
    thread: threading.Thread
    key: str

    def stop(self) -> None:
        self.state.stopping.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def __enter__(self) -> EmulatorHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def create_server(state: EmulatorState, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    handler = type("Handler", (_Handler,), {"state": state, "service": Webservice(state)})
    server = _Server((host, port), handler)
    state.base_url = f"http://{host}:{server.server_address[1]}"
    return server


def start_emulator(
    *,
    key: str | None = None,
    products: int = 0,
    quantity: int = 0,
    latency_ms: float = 0.0,
    version: str = "8.1.7",
    host: str = "127.0.0.1",
    port: int = 0,
) -> EmulatorHandle:
    """Start an emulator in a background thread on loopback; ``key`` (32 characters; random when None) has full
    rights on products, combinations and stock_availables."""
    state = EmulatorState(version=version)
    key = key if key is not None else secrets.token_hex(16).upper()
    state.add_key(key)
    state.faults.latency_ms = latency_ms
    if products:
        state.populate(products, quantity=quantity)
    server = create_server(state, host, port)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, name="prestashop-emulator", daemon=True
    )
    thread.start()
    return EmulatorHandle(url=state.base_url, state=state, server=server, thread=thread, key=key)


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: serve an emulated shop until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m stockq.integrations.prestashop.emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--key", required=True, help="the webservice key (32 characters)")
    parser.add_argument("--products", type=int, default=0, help="simple products SKU-000001… to create")
    parser.add_argument("--quantity", type=int, default=0, help="their starting stock")
    parser.add_argument("--combinations", type=int, default=0, help="products with 3 combinations each")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--version", default="8.1.7", help="PrestaShop version profile (1.7.x, 8.x, 9.x)")
    parser.add_argument("--fault", choices=["500", "html", "hang", "malformed", "reset", "waf403", "waf429"])
    parser.add_argument("--fault-count", type=int, default=None, help="answer only the next N requests with --fault")
    args = parser.parse_args(argv)
    if len(args.key) != 32:
        parser.error("--key must have 32 characters, as PrestaShop keys do")
    state = EmulatorState(version=args.version)
    state.add_key(args.key)
    state.faults.latency_ms = args.latency_ms
    state.populate(args.products, quantity=args.quantity)
    for i in range(1, args.combinations + 1):
        state.add_product(
            f"TSHIRT-{i:04d}",
            combinations=[(f"TSHIRT-{i:04d}-{size}", "") for size in ("S", "M", "L")],
        )
    if args.fault:
        state.set_fault(args.fault, args.fault_count)
    server = create_server(state, args.host, args.port)
    print(f"PrestaShop {args.version} webservice emulator at {state.api_url} ({len(state.products)} products)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
