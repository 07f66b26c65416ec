"""An httpx client for PrestaShop's legacy webservice: key auth, safe XML, paging, retries, bounded concurrency.

Errors (PrestashopError and subclasses, all StockqError) carry one line naming the shop and the cause, with the
key redacted. The key travels only as the HTTP Basic user, never in a URL.
"""

from __future__ import annotations

import collections
import functools
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from lxml import etree

from stockq import errors, redact
from stockq.integrations.prestashop import xml as psxml

T = TypeVar("T")

STOCK_FIELDS = (
    "id",
    "id_product",
    "id_product_attribute",
    "id_shop",
    "id_shop_group",
    "quantity",
    "depends_on_stock",
    "out_of_stock",
    "location",
)
AUTH_CODES = {17, 18, 20, 21}
PERMISSION_CODES = {25, 26, 132}
DEFAULT_PAGE_SIZE = 1000


class PrestashopError(errors.StockqError):
    """The shop could not do what was asked."""

    retryable = False

    def __init__(self, message: str, *, status: int | None = None, codes: Sequence[int] = ()) -> None:
        super().__init__(redact.redact(message))
        self.status = status
        self.codes = tuple(codes)


class ShopUnavailable(PrestashopError):
    """The shop did not answer usably (timeout, connection error, 5xx, HTML page): worth retrying later."""

    retryable = True


class AuthenticationFailed(PrestashopError):
    """The shop rejected the API key."""


class PermissionDenied(PrestashopError):
    """The key may not do this."""


class ResourceNotFound(PrestashopError):
    """The shop has no such object."""


class RequestRejected(PrestashopError):
    """The shop refused the request (validation or a PrestaShop error code)."""


@dataclass(frozen=True, slots=True)
class StockAvailable:
    """One stock_available row with every field a full PUT must carry back."""

    id: int
    id_product: int
    id_product_attribute: int
    id_shop: int
    id_shop_group: int
    quantity: int
    depends_on_stock: str
    out_of_stock: str
    location: str

    @classmethod
    def from_fields(cls, fields: Mapping[str, str]) -> StockAvailable:
        def integer(name: str) -> int:
            value = (fields.get(name) or "0").strip()
            return int(value) if re.fullmatch(r"-?\d+", value) else 0

        return cls(
            id=integer("id"),
            id_product=integer("id_product"),
            id_product_attribute=integer("id_product_attribute"),
            id_shop=integer("id_shop"),
            id_shop_group=integer("id_shop_group"),
            quantity=integer("quantity"),
            depends_on_stock=(fields.get("depends_on_stock") or "0").strip(),
            out_of_stock=(fields.get("out_of_stock") or "2").strip(),
            location=fields.get("location") or "",
        )

    def put_fields(self, quantity: int) -> dict[str, object]:
        """Every field, in the definition's order: a PUT nulls what it does not carry (id_shop 0 breaks stock)."""
        return {
            "id": self.id,
            "id_product": self.id_product,
            "id_product_attribute": self.id_product_attribute,
            "id_shop": self.id_shop,
            "id_shop_group": self.id_shop_group,
            "quantity": quantity,
            "depends_on_stock": self.depends_on_stock,
            "out_of_stock": self.out_of_stock,
            "location": self.location,
        }


@dataclass(frozen=True, slots=True)
class ShopInfo:
    """What `integrations test` reports."""

    version: str
    can_read_products: bool
    can_read_combinations: bool
    can_read_stock: bool
    can_write_stock: bool


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 3
    backoff: tuple[float, ...] = (0.5, 2.0)

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        if not self.backoff:
            return 0.0
        return self.backoff[min(attempt - 1, len(self.backoff) - 1)]


# The policy of clients built without one (integration clients); tests shorten it.
DEFAULT_RETRY = RetryPolicy()


class PrestashopClient:
    """A client for one shop. Thread-safe: at most ``concurrency`` requests are in flight at once (a semaphore and
    an httpx pool of the same size, so connections are reused)."""

    def __init__(
        self,
        url: str,
        key: str,
        *,
        shop_name: str | None = None,
        shop_id: int | None = None,
        timeout: float = 30.0,
        concurrency: int = 4,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        redact.register_secret(key)
        self.base_url = url.rstrip("/")
        self.api_url = self.base_url + "/api/"
        self.shop_name = shop_name or self.base_url
        self.shop_id = shop_id
        self.concurrency = max(1, concurrency)
        self.retry = retry or DEFAULT_RETRY
        self._semaphore = threading.BoundedSemaphore(self.concurrency)
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        if transport is None:
            # httpcore writes a PUT's headers and body separately: with Nagle on, the body waits for the server's
            # delayed ACK (40 ms on Linux) on every write.
            transport = httpx.HTTPTransport(
                verify=_tls_context() if self.base_url.lower().startswith("https:") else False,
                limits=limits,
                socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
            )
        self._http = httpx.Client(
            base_url=self.api_url,
            auth=httpx.BasicAuth(key, ""),
            timeout=httpx.Timeout(timeout),
            limits=limits,
            transport=transport,
            headers={"User-Agent": "stockq", "Accept": "text/xml"},
            follow_redirects=False,
        )
        self._timeout = timeout
        self.requests_sent = 0
        self._count_lock = threading.Lock()
        # PSWS-Version of the last successful answer (failed authentications answer "0" on 8.0+).
        self.version: str | None = None

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> PrestashopClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- transport ---------------------------------------------------------------------------------------------

    def _describe(self, method: str, path: str) -> str:
        return f"PrestaShop shop {self.shop_name!r} ({self.base_url}): {method} {path.split('?')[0] or '/'}"

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        content: str | None = None,
    ) -> httpx.Response:
        """Send one request with retries for timeouts, connection errors and 5xx; return a 2xx response."""
        query = dict(params or {})
        if self.shop_id is not None and "id_shop" not in query:
            query["id_shop"] = str(self.shop_id)
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._send(method, path, query, content)
            except PrestashopError as exc:
                if not exc.retryable or attempt >= self.retry.attempts:
                    if exc.retryable and self.retry.attempts > 1:
                        raise type(exc)(
                            f"{exc.message} (after {attempt} attempts)", status=exc.status, codes=exc.codes
                        ) from None
                    raise
                time.sleep(self.retry.delay(attempt))
                continue
            return response

    def _send(self, method: str, path: str, query: dict[str, str], content: str | None) -> httpx.Response:
        where = self._describe(method, path)
        with self._semaphore:
            with self._count_lock:
                self.requests_sent += 1
            try:
                response = self._http.request(
                    method, path, params=query, content=content.encode() if content is not None else None
                )
            except httpx.TimeoutException:
                raise ShopUnavailable(f"{where}: no answer within {self._timeout:g} s (timeout)") from None
            except httpx.TransportError as exc:
                raise ShopUnavailable(f"{where}: cannot connect ({_first_line(exc) or type(exc).__name__})") from None
        if 200 <= response.status_code < 300:
            version = response.headers.get("psws-version", "").strip()
            if version and version != "0":
                self.version = version
            return response
        raise self._error(where, response)

    def _error(self, where: str, response: httpx.Response) -> PrestashopError:
        status = response.status_code
        content_type = response.headers.get("content-type", "")
        ws_errors: list[psxml.WsError] = []
        body = response.content
        if body.lstrip().startswith(b"<?xml") or body.lstrip().startswith(b"<prestashop"):
            try:
                ws_errors = psxml.parse_errors(psxml.parse(body))
            except psxml.XmlError:
                ws_errors = []
        codes = [e.code for e in ws_errors if e.code is not None]
        detail = "; ".join(f"code {e.code}: {e.message}" if e.code is not None else e.message for e in ws_errors)
        detail = _first_line(detail)
        if status == 401 and (not ws_errors or set(codes) & AUTH_CODES):
            return AuthenticationFailed(
                f"{where}: the API key was rejected (HTTP 401{'; ' + detail if detail else ''})",
                status=status,
                codes=codes,
            )
        if set(codes) & PERMISSION_CODES or (status == 403 and ws_errors):
            return PermissionDenied(
                f"{where}: the key lacks permission (HTTP {status}; {detail})", status=status, codes=codes
            )
        if not ws_errors and ("html" in content_type or (body.lstrip()[:1] == b"<" and b"<html" in body[:200].lower())):
            title = re.search(rb"<title>(.*?)</title>", body, re.IGNORECASE | re.DOTALL)
            page = title.group(1).decode("utf-8", "replace").strip() if title else "no title"
            cls = ShopUnavailable if status >= 500 or status in (403, 408, 429) else RequestRejected
            return cls(f"{where}: HTTP {status} with an HTML page ({page}) instead of XML", status=status)
        if status == 404:
            return ResourceNotFound(
                f"{where}: not found (HTTP 404{'; ' + detail if detail else ''})", status=status, codes=codes
            )
        if status >= 500 or status == 429:
            if 133 in codes:
                return RequestRejected(f"{where}: HTTP {status}; {detail}", status=status, codes=codes)
            text = detail or _first_line(body.decode("utf-8", "replace")) or "empty body"
            return ShopUnavailable(f"{where}: server error HTTP {status} ({text})", status=status, codes=codes)
        text = detail or _first_line(body.decode("utf-8", "replace")) or "empty body"
        return RequestRejected(f"{where}: HTTP {status} ({text})", status=status, codes=codes)

    def _parse(self, method: str, path: str, response: httpx.Response) -> etree._Element:
        try:
            return psxml.parse(response.content)
        except psxml.XmlError as exc:
            raise ShopUnavailable(f"{self._describe(method, path)}: the answer is not valid XML ({exc})") from None

    def get(self, path: str, params: Mapping[str, str] | None = None) -> etree._Element:
        """GET ``path`` (relative to /api/) and parse the XML answer."""
        return self._parse("GET", path, self.request("GET", path, params=params))

    # --- resources ---------------------------------------------------------------------------------------------

    def info(self) -> ShopInfo:
        """The shop's version (PSWS-Version) and what the key may do, from the /api/ index."""
        response = self.request("GET", "")
        root = self._parse("GET", "", response)
        api = root.find("api")

        def allowed(resource: str, method: str) -> bool:
            node = api.find(resource) if api is not None else None
            return node is not None and node.get(method) == "true"

        return ShopInfo(
            version=response.headers.get("psws-version", "unknown"),
            can_read_products=allowed("products", "get"),
            can_read_combinations=allowed("combinations", "get"),
            can_read_stock=allowed("stock_availables", "get"),
            can_write_stock=allowed("stock_availables", "put"),
        )

    def list_page(
        self,
        resource: str,
        fields: Sequence[str],
        *,
        offset: int,
        limit: int,
        filters: Mapping[str, str] | None = None,
    ) -> list[dict[str, str]]:
        """One page of ``resource`` with only ``fields``, in ascending id order (stable paging)."""
        params = {"display": "[" + ",".join(fields) + "]", "sort": "[id_ASC]", "limit": f"{offset},{limit}"}
        for name, value in (filters or {}).items():
            params[f"filter[{name}]"] = value
        root = self.get(resource, params)
        try:
            return psxml.list_rows(root, resource)
        except psxml.XmlError as exc:
            raise ShopUnavailable(f"{self._describe('GET', resource)}: unexpected answer ({exc})") from None

    def iter_all(
        self,
        resource: str,
        fields: Sequence[str],
        *,
        page_size: int = DEFAULT_PAGE_SIZE,
        filters: Mapping[str, str] | None = None,
        expected: int | None = None,
    ) -> Iterator[list[dict[str, str]]]:
        """Every row, page by page (PrestaShop gives no total: read until a page is short). With ``expected`` rows
        the first pages are fetched in parallel."""
        with self.pages(resource, fields, page_size=page_size, filters=filters, expected=expected) as stream:
            yield from stream

    def pages(
        self,
        resource: str,
        fields: Sequence[str],
        *,
        page_size: int = DEFAULT_PAGE_SIZE,
        filters: Mapping[str, str] | None = None,
        expected: int | None = None,
    ) -> PageStream:
        """Start reading ``resource`` now (the pages ``expected`` rows need, in parallel) and return the pages in
        order as they arrive; the caller can do other work meanwhile."""
        return PageStream(self, resource, fields, page_size=page_size, filters=filters, expected=expected)

    def map_concurrently(self, function: Callable[[Any], T], items: Sequence[Any]) -> list[T]:
        """``function`` over ``items`` on up to ``concurrency`` threads; results in order; the first error raised."""
        if len(items) <= 1 or self.concurrency == 1:
            return [function(item) for item in items]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(items))) as pool:
            return list(pool.map(function, items))

    def put_stock_available(self, row: StockAvailable, quantity: int) -> StockAvailable:
        """Set one stock_available's quantity with a full PUT (every field sent, id in the body)."""
        body = psxml.entity_body("stock_available", row.put_fields(quantity))
        response = self.request("PUT", f"stock_availables/{row.id}", content=body)
        root = self._parse("PUT", f"stock_availables/{row.id}", response)
        try:
            return StockAvailable.from_fields(psxml.entity_fields(root, "stock_available"))
        except psxml.XmlError as exc:
            raise ShopUnavailable(f"{self._describe('PUT', 'stock_availables')}: unexpected answer ({exc})") from None

    def patch_stock_quantity(self, stock_available_id: int, quantity: int) -> StockAvailable:
        """Set one stock_available's quantity with a PATCH of the quantity alone (PrestaShop 8.0+): the shop keeps
        every other field, so nothing read earlier can be written back stale."""
        path = f"stock_availables/{stock_available_id}"
        body = psxml.entity_body("stock_available", {"id": stock_available_id, "quantity": quantity})
        root = self._parse("PATCH", path, self.request("PATCH", path, content=body))
        try:
            return StockAvailable.from_fields(psxml.entity_fields(root, "stock_available"))
        except psxml.XmlError as exc:
            raise ShopUnavailable(f"{self._describe('PATCH', 'stock_availables')}: unexpected answer ({exc})") from None


def accepts_patch(version: str | None) -> bool:
    """Whether a shop of this PSWS-Version takes PATCH (8.0+); an unknown version is taken as not."""
    head = (version or "").split(".", 1)[0]
    return head.isdigit() and int(head) >= 8


class PageStream:
    """Pages of one resource in order, read ahead in parallel: as many pages in flight as ``expected`` rows need
    (at most the client's concurrency), topped up as pages are consumed, until a short page ends the resource.
    A consumer that has what it needs stops early and the pages still in flight are dropped."""

    def __init__(
        self,
        client: PrestashopClient,
        resource: str,
        fields: Sequence[str],
        *,
        page_size: int,
        filters: Mapping[str, str] | None,
        expected: int | None,
    ) -> None:
        self.client, self.resource, self.fields = client, resource, list(fields)
        self.page_size, self.filters = page_size, filters
        # The pages ``expected`` rows fill, plus the short one that proves the end.
        self._needed = (expected // page_size + 1) if expected else 1
        self.window = max(1, min(client.concurrency, self._needed))
        self._pool = ThreadPoolExecutor(max_workers=self.window) if self.window > 1 else None
        self._in_flight: collections.deque[Future[list[dict[str, str]]]] = collections.deque()
        self._next_offset = 0
        self._submitted = 0
        for _ in range(self.window if self._pool is not None else 0):
            self._submit()

    def _page(self, offset: int) -> list[dict[str, str]]:
        return self.client.list_page(
            self.resource, self.fields, offset=offset, limit=self.page_size, filters=self.filters
        )

    def _submit(self) -> None:
        assert self._pool is not None
        self._in_flight.append(self._pool.submit(self._page, self._next_offset))
        self._next_offset += self.page_size
        self._submitted += 1

    def __iter__(self) -> Iterator[list[dict[str, str]]]:
        if self._pool is None:
            while True:
                page = self._page(self._next_offset)
                self._next_offset += self.page_size
                yield page
                if len(page) < self.page_size:
                    return
        while self._in_flight:
            page = self._in_flight.popleft().result()
            if len(page) < self.page_size:
                yield page
                return
            # Within the expected pages keep the window full; past them (more rows than expected) one at a time.
            if self._submitted < self._needed or not self._in_flight:
                self._submit()
            yield page

    def close(self) -> None:
        for future in self._in_flight:
            future.cancel()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> PageStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One verifying TLS context per process: building one loads the CA bundle (tens of ms), once per sync otherwise.
    Plain-http shops need none."""
    return httpx.create_ssl_context()


def _first_line(value: object) -> str:
    text = str(value).strip()
    return text.splitlines()[0].strip() if text else ""
