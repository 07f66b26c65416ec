"""The webservice client against the emulator on loopback: auth, paging, PUT bodies, errors, retries, limits."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from stockq.integrations.prestashop import xml as psxml
from stockq.integrations.prestashop.client import (
    STOCK_FIELDS,
    AuthenticationFailed,
    PermissionDenied,
    PrestashopClient,
    RequestRejected,
    ResourceNotFound,
    RetryPolicy,
    ShopUnavailable,
    StockAvailable,
)
from stockq.integrations.prestashop.emulator import EmulatorHandle
from tests.integrations.conftest import KEY

FAST = RetryPolicy(attempts=3, backoff=(0.01,))


def make_client(shop: EmulatorHandle, key: str = KEY, **options: object) -> PrestashopClient:
    options.setdefault("retry", FAST)
    options.setdefault("timeout", 0.5)
    return PrestashopClient(shop.url, key, shop_name="Test shop", **options)  # type: ignore[arg-type]


def test_client_sends_the_key_as_basic_user_never_in_the_url(shop: EmulatorHandle) -> None:
    shop.state.populate(3)
    with make_client(shop) as client:
        rows = [row for page in client.iter_all("products", ["id", "reference"], page_size=2) for row in page]
    assert [r["reference"] for r in rows] == ["SKU-000001", "SKU-000002", "SKU-000003"]
    assert all(KEY not in path for _, path in shop.state.log)
    # pages of 2: [1,2], [3] (short page ends the paging), sorted by id, only the fields asked for
    assert [path for _, path in shop.state.log] == [
        "/api/products?display=%5Bid%2Creference%5D&sort=%5Bid_ASC%5D&limit=0%2C2",
        "/api/products?display=%5Bid%2Creference%5D&sort=%5Bid_ASC%5D&limit=2%2C2",
    ]


def test_client_parallel_first_pages_when_the_size_is_known(shop: EmulatorHandle) -> None:
    shop.state.populate(10)
    with make_client(shop, concurrency=4) as client:
        pages = list(client.iter_all("stock_availables", STOCK_FIELDS, page_size=3, expected=10))
    assert [len(p) for p in pages] == [3, 3, 3, 1]
    assert shop.state.requests["GET"] == 4


def test_client_put_carries_every_field_so_the_shop_keeps_the_row(shop: EmulatorHandle) -> None:
    shop.state.add_shop(2)
    shop.state.populate(1)
    row_id = shop.state.stock_id(1, 0, 2)
    shop.state.stock[row_id].update(out_of_stock="1", location="A-1")
    with make_client(shop, shop_id=2) as client:
        (page,) = list(client.iter_all("stock_availables", STOCK_FIELDS))
        (row,) = [StockAvailable.from_fields(f) for f in page]
        saved = client.put_stock_available(row, 17)
    assert saved.quantity == 17
    assert shop.state.stock[row_id] == {
        "id": str(row_id), "id_product": "1", "id_product_attribute": "0", "id_shop": "2", "id_shop_group": "0",
        "quantity": "17", "depends_on_stock": "0", "out_of_stock": "1", "location": "A-1",
    }  # fmt: skip
    assert shop.state.quantity(1, 0, 1) == 0  # the other shop's row is untouched


def test_client_wrong_key_is_one_line_naming_shop_and_cause(shop: EmulatorHandle) -> None:
    with make_client(shop, key="W" * 32) as client, pytest.raises(AuthenticationFailed) as caught:
        client.get("products")
    message = caught.value.message
    assert "Test shop" in message and shop.url in message and "API key was rejected" in message
    assert "code 20: Authentification key is not active" in message
    assert "\n" not in message and "W" * 32 not in message
    assert shop.state.requests["GET"] == 1  # not retried


def test_client_missing_permission_and_404(shop: EmulatorHandle) -> None:
    limited = "L" * 32
    shop.state.add_key(limited, permissions={"products": {"GET"}})
    with make_client(shop, key=limited) as client:
        with pytest.raises(PermissionDenied, match="code 26"):
            client.get("stock_availables")
        with pytest.raises(ResourceNotFound, match="404"):
            client.get("products/999")


def test_client_maps_500_html_malformed_and_timeout(shop: EmulatorHandle) -> None:
    shop.state.populate(1)
    with make_client(shop, retry=RetryPolicy(attempts=1)) as client:
        shop.state.set_fault("500")
        with pytest.raises(ShopUnavailable, match=r"HTTP 500 \(code 2: \[PHP Warning #2\]") as caught:
            client.get("products")
        assert KEY not in caught.value.message and "ws_key=********" in caught.value.message
        shop.state.set_fault("html")
        with pytest.raises(ShopUnavailable, match=r"HTTP 503 with an HTML page \(503 Service Unavailable\)"):
            client.get("products")
        shop.state.set_fault("malformed")
        with pytest.raises(ShopUnavailable, match="not valid XML"):
            client.get("products")
        shop.state.set_fault("hang", hang_seconds=2)
        started = time.perf_counter()
        with pytest.raises(ShopUnavailable, match=r"no answer within 0.5 s \(timeout\)"):
            client.get("products")
        assert time.perf_counter() - started < 1.5
        shop.state.set_fault(None)


def test_client_retries_with_backoff_and_recovers(shop: EmulatorHandle) -> None:
    shop.state.populate(1)
    shop.state.set_fault("500", 2)
    with make_client(shop, retry=RetryPolicy(attempts=3, backoff=(0.05, 0.1))) as client:
        started = time.perf_counter()
        assert client.list_page("products", ["id"], offset=0, limit=10) == [{"id": "1"}]
        assert time.perf_counter() - started >= 0.15
    assert shop.state.requests["GET"] == 3


def test_client_gives_up_after_its_attempts(shop: EmulatorHandle) -> None:
    shop.state.set_fault("html")
    with make_client(shop) as client, pytest.raises(ShopUnavailable, match="after 3 attempts"):
        client.get("products")
    assert shop.state.requests["GET"] == 3


def test_client_rejection_is_not_retried(shop: EmulatorHandle) -> None:
    shop.state.populate(1)
    shop.state.stock[1]["depends_on_stock"] = "1"
    with make_client(shop) as client:
        row = StockAvailable.from_fields(shop.state.stock[1])
        with pytest.raises(RequestRejected, match="code 133"):
            client.put_stock_available(row, 5)
    assert shop.state.requests["PUT"] == 1


def test_client_connection_refused_is_shop_unavailable() -> None:
    client = PrestashopClient("http://127.0.0.1:9", KEY, shop_name="Gone", retry=RetryPolicy(1), timeout=0.5)
    with client, pytest.raises(ShopUnavailable, match=r"Gone.*cannot connect"):
        client.get("products")


def test_client_bounds_requests_in_flight_and_reuses_connections(shop: EmulatorHandle) -> None:
    shop.state.populate(1)
    shop.state.faults.latency_ms = 30
    connections: set[int] = set()
    lock = threading.Lock()

    with make_client(shop, concurrency=3) as client:

        def one(_: int) -> None:
            client.get("products/1")

        client.map_concurrently(one, list(range(12)))
        pool = client._http._transport._pool  # type: ignore[attr-defined]
        with lock:
            connections.update(id(c) for c in pool.connections)
    assert shop.state.max_in_flight == 3
    assert shop.state.requests["GET"] == 12
    assert len(connections) <= 3


def test_client_info_reports_version_and_rights(shop: EmulatorHandle) -> None:
    read_only = "R" * 32
    shop.state.add_key(read_only, permissions={"products": {"GET"}, "stock_availables": {"GET"}})
    with make_client(shop, key=read_only) as client:
        info = client.info()
    assert info.version == "8.1.7"
    assert (info.can_read_products, info.can_read_combinations, info.can_read_stock, info.can_write_stock) == (
        True, False, True, False,
    )  # fmt: skip


def test_xml_parser_does_not_expand_entities() -> None:
    hostile = (
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        b"<prestashop><products><product><id>&e;</id></product></products></prestashop>"
    )
    rows = psxml.list_rows(psxml.parse(hostile), "products")
    assert rows == [{"id": "&e;"}]  # left as an unresolved reference: no file read


def test_httpx_mock_transport_sees_the_full_put_body() -> None:
    seen: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.content)
        return httpx.Response(200, content=request.content)

    client = PrestashopClient("http://shop.test", KEY, transport=httpx.MockTransport(handler), retry=FAST)
    row = StockAvailable(6, 2, 7, 1, 0, 12, "0", "2", "")
    client.put_stock_available(row, 40)
    fields = psxml.entity_fields(psxml.parse(seen[0]), "stock_available")
    assert fields == {
        "id": "6", "id_product": "2", "id_product_attribute": "7", "id_shop": "1", "id_shop_group": "0",
        "quantity": "40", "depends_on_stock": "0", "out_of_stock": "2", "location": "",
    }  # fmt: skip


def test_client_reads_ahead_past_the_expected_rows_and_stops_at_a_short_page(shop: EmulatorHandle) -> None:
    shop.state.populate(20)
    with make_client(shop, concurrency=4) as client:
        rows = [row for page in client.iter_all("products", ["id"], page_size=3, expected=7) for row in page]
    assert [int(r["id"]) for r in rows] == list(range(1, 21))
    assert shop.state.requests["GET"] == 7  # 6 full pages and the short one: nothing read twice or skipped
