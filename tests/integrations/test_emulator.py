"""The emulator against the spec (shared/spec/prestashop-webservice.md §9), with a plain httpx client."""

from __future__ import annotations

import hashlib

import httpx
import pytest
from lxml import etree

from stockq.integrations.prestashop import xml as psxml
from stockq.integrations.prestashop.emulator import REALM, EmulatorHandle
from tests.integrations.conftest import KEY


def client(shop: EmulatorHandle, key: str | None = KEY) -> httpx.Client:
    return httpx.Client(base_url=shop.url + "/api/", auth=(key, "") if key is not None else None, timeout=5)


def codes(response: httpx.Response) -> list[int | None]:
    return [e.code for e in psxml.parse_errors(psxml.parse(response.content))]


def test_emulator_without_credentials_answers_plain_text_401(shop: EmulatorHandle) -> None:
    response = client(shop, key=None).get("products")
    assert response.status_code == 401
    assert response.text == "401 Unauthorized"
    assert response.headers["www-authenticate"] == REALM


@pytest.mark.parametrize(
    ("key", "expected"),
    [("", [17]), ("short", [18]), ("X" * 32, [20, 21])],
)
def test_emulator_rejects_bad_keys_with_xml_codes(shop: EmulatorHandle, key: str, expected: list[int]) -> None:
    response = client(shop, key=key).get("products")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == REALM
    assert codes(response) == expected
    assert response.headers["psws-version"] == "0"  # 8.x: the version only after successful auth


def test_emulator_accepts_ws_key_query_and_basic_wins(shop: EmulatorHandle) -> None:
    assert httpx.get(f"{shop.url}/api/products", params={"ws_key": KEY}).status_code == 200
    both = httpx.get(f"{shop.url}/api/products", params={"ws_key": KEY}, auth=("Y" * 32, ""))
    assert both.status_code == 401 and codes(both) == [20, 21]


def test_emulator_permissions_and_methods(shop: EmulatorHandle) -> None:
    limited = "L" * 32
    shop.state.add_key(limited, permissions={"products": {"GET"}})
    assert client(shop, limited).get("products").status_code == 200
    denied = client(shop, limited).get("stock_availables")
    assert denied.status_code == 401 and codes(denied) == [26] and "www-authenticate" not in denied.headers
    put = client(shop, limited).put("products/1", content="<prestashop/>")
    assert put.status_code == 405 and codes(put) == [25]
    post = client(shop).post("stock_availables", content="<prestashop/>")
    assert post.status_code == 405 and codes(post) == [101]
    unknown = client(shop).get("stocks")
    assert unknown.status_code == 400 and codes(unknown) == [27]
    assert 'Did you mean: "' in unknown.text


def test_emulator_patch_exists_only_from_version_8() -> None:
    from stockq.integrations.prestashop.emulator import start_emulator

    with start_emulator(key=KEY, products=1, version="1.7.8.11") as old:
        response = client(old).patch("products/1", content="<prestashop/>")
        assert response.status_code == 405 and codes(response) == [23]
        assert client(old, "X" * 32).get("products").headers["psws-version"] == "1.7.8.11"


def test_emulator_headers_and_conditional_get(shop: EmulatorHandle) -> None:
    shop.state.populate(2)
    response = client(shop).get("products/1")
    assert response.headers["x-powered-by"] == "PrestaShop Webservice"
    assert response.headers["psws-version"] == "8.1.7"
    assert response.headers["content-type"].startswith("text/xml")
    assert int(response.headers["access-time"]) > 0 and "." in response.headers["execution-time"]
    sha1 = hashlib.sha1(response.content).hexdigest()
    assert response.headers["content-sha1"] == sha1
    cached = client(shop).get("products/1", headers={"Local-Content-Sha1": sha1})
    assert cached.status_code == 304 and cached.content == b""


def test_emulator_product_document_matches_the_spec_layout(shop: EmulatorHandle) -> None:
    product_id = shop.state.add_product("TSHIRT", combinations=[("TSHIRT-S", "5901234123457"), ("TSHIRT-M", "")])
    text = client(shop).get(f"products/{product_id}").text
    api = shop.url + "/api/"
    assert text.startswith(
        '<?xml version="1.0" encoding="UTF-8"?>\n<prestashop xmlns:xlink="http://www.w3.org/1999/xlink">\n<product>\n'
    )
    assert "\t<reference><![CDATA[TSHIRT]]></reference>\n" in text
    assert '\t<quantity notFilterable="true"><![CDATA[0]]></quantity>\n' in text
    assert f'\t<id_default_combination xlink:href="{api}combinations/1" notFilterable="true"><![CDATA[1]]>' in text
    assert "\t<id_manufacturer><![CDATA[0]]></id_manufacturer>\n" in text  # zero id: no xlink
    assert f'<name><language id="1" xlink:href="{api}languages/1"><![CDATA[TSHIRT]]></language></name>' in text
    assert '<stock_availables nodeType="stock_available" api="stock_availables">\n' in text
    assert "\t<id_product_attribute><![CDATA[2]]></id_product_attribute>\n" in text
    assert '<tags nodeType="tag" api="tags"/>\n' in text


def test_emulator_lists_minimal_display_fields_and_empty(shop: EmulatorHandle) -> None:
    shop.state.populate(3)
    minimal = client(shop).get("stock_availables", params={"filter[id_product]": "2"}).text
    assert f'<stock_available id="2" xlink:href="{shop.url}/api/stock_availables/2"/>' in minimal
    fields = client(shop).get("stock_availables", params={"display": "[id,quantity]", "limit": "1"}).text
    assert (
        "<stock_available>\n\t<id><![CDATA[1]]></id>\n\t<quantity><![CDATA[0]]></quantity>\n</stock_available>"
        in fields
    )
    empty = client(shop).get("products", params={"filter[reference]": "NOPE"})
    assert empty.status_code == 200 and "<products>\n</products>" in empty.text
    bad = client(shop).get("products", params={"display": "[id,colour]"})
    assert bad.status_code == 400 and codes(bad) == [35]
    assert client(shop).get("products", params={"display": "id"}).status_code == 400


def ids(response: httpx.Response, resource: str = "products") -> list[int]:
    return [int(row["id"]) for row in psxml.list_rows(psxml.parse(response.content), resource)]


def test_emulator_filters_sort_and_limit(shop: EmulatorHandle) -> None:
    shop.state.populate(12)
    c = client(shop)
    assert ids(c.get("products", params={"filter[reference]": "[SKU-000002|sku-000005]"})) == [2, 5]
    assert ids(c.get("products", params={"filter[id]": "[3,6]"})) == [3, 4, 5, 6]
    assert ids(c.get("products", params={"filter[reference]": "%[00001]%"})) == [1, 10, 11, 12]
    assert ids(c.get("products", params={"filter[id]": ">[10]"})) == [11, 12]
    assert ids(c.get("products", params={"filter[id]": "![1|2|3|4|5|6|7|8|9]"})) == [10, 11, 12]
    assert ids(c.get("products", params={"sort": "[id_DESC]", "limit": "2,3"})) == [10, 9, 8]
    assert ids(c.get("products", params={"sort": "reference_asc", "limit": "x"})) == []
    assert len(ids(c.get("products", params={"filter[date_upd]": ">[2020-01-01]", "date": "1"}))) == 12
    for params, code in [
        ({"filter[colour]": "red"}, 32),
        ({"filter[reference]": ""}, 33),
        ({"filter[quantity]": "1"}, 34),
        ({"sort": "[colour_ASC]"}, 37),
        ({"sort": "[id_UP]"}, 38),
        ({"limit": "1,2,3"}, 39),
        ({"schema": "full"}, 28),
        ({"filter[date_upd]": ">[2020-01-01]"}, 32),
    ]:
        response = c.get("products", params=params)
        assert response.status_code == 400 and codes(response) == [code], params


def test_emulator_missing_id_is_404_with_empty_body_and_wrong_shop_is_131(shop: EmulatorHandle) -> None:
    shop.state.add_shop(2)
    product_id = shop.state.add_product("ONLY2", shops=[2])
    missing = client(shop).get("products/999")
    assert missing.status_code == 404 and missing.content == b""
    other = client(shop).get(f"products/{product_id}")
    assert other.status_code == 404 and codes(other) == [131]
    assert client(shop).get(f"products/{product_id}", params={"id_shop": "2"}).status_code == 200
    assert codes(client(shop).get("products", params={"id_shop": "x"})) == [999]


def stock_put(**fields: object) -> str:
    return psxml.entity_body("stock_available", fields)


FULL = {
    "id_product": 1, "id_product_attribute": 0, "id_shop": 1, "id_shop_group": 0, "quantity": 40,
    "depends_on_stock": 0, "out_of_stock": 2, "location": "",
}  # fmt: skip


def test_emulator_put_reads_the_id_from_the_body_and_returns_the_entity(shop: EmulatorHandle) -> None:
    shop.state.populate(1)
    response = client(shop).put("stock_availables/999", content=stock_put(id=1, **FULL))
    assert response.status_code == 200
    assert psxml.entity_fields(psxml.parse(response.content), "stock_available")["quantity"] == "40"
    assert shop.state.quantity(1) == 40


def test_emulator_put_without_id_shop_moves_the_stock_to_shop_zero(shop: EmulatorHandle) -> None:
    shop.state.populate(1)
    fields = {k: v for k, v in FULL.items() if k != "id_shop"}
    assert client(shop).put("stock_availables", content=stock_put(id=1, **fields)).status_code == 200
    assert shop.state.stock[1]["id_shop"] == "0"
    assert ids(client(shop).get("stock_availables"), "stock_availables") == []  # gone from the shop


@pytest.mark.parametrize(
    ("body", "status", "expected"),
    [
        (stock_put(**FULL), 400, [90]),
        (psxml.entities_body("stock_available", [{"id": 1, **FULL}, {"id": 1, **FULL}]), 400, [89]),
        (stock_put(id=77, **FULL), 404, [92]),
        (stock_put(id=1, **{k: v for k, v in FULL.items() if k != "quantity"}), 400, [41]),
        (stock_put(id=1, **{**FULL, "quantity": "05"}), 400, [85]),
        (stock_put(id=1, **{**FULL, "quantity": 2147483648}), 400, [85]),
        (stock_put(id=1, **{**FULL, "depends_on_stock": "true"}), 400, [85]),
        (stock_put(id=1, **{**FULL, "depends_on_stock": 1}), 500, [133, 46]),
        ("<prestashop><stock_available><id>1</id>", 500, [127]),
        ("", 500, [127]),
    ],
)
def test_emulator_put_validation(shop: EmulatorHandle, body: str, status: int, expected: list[int]) -> None:
    shop.state.populate(1)
    response = client(shop).put("stock_availables", content=body)
    assert response.status_code == status
    assert codes(response) == expected
    assert shop.state.quantity(1) == 0


def test_emulator_product_quantity_is_not_writable(shop: EmulatorHandle) -> None:
    shop.state.populate(1)
    body = psxml.entity_body("product", {"id": 1, "quantity": 5, "price": "1.0"})
    response = client(shop).put("products", content=body)
    assert response.status_code == 400 and codes(response) == [93]


def test_emulator_multi_entity_put_keeps_earlier_entities_and_recomputes_product_row(shop: EmulatorHandle) -> None:
    product_id = shop.state.add_product("TS", combinations=[("TS-S", ""), ("TS-M", "")])
    small, medium = shop.state.stock_id(product_id, 1), shop.state.stock_id(product_id, 2)
    body = psxml.entities_body(
        "stock_available",
        [
            {**FULL, "id": small, "id_product": product_id, "id_product_attribute": 1, "quantity": 3},
            {**FULL, "id": medium, "id_product": product_id, "id_product_attribute": 2, "quantity": "x"},
        ],
    )
    response = client(shop).put("stock_availables", content=body)
    assert response.status_code == 400 and codes(response) == [85]
    assert shop.state.quantity(product_id, 1) == 3  # saved before the failure, no transaction
    assert shop.state.quantity(product_id) == 3  # product row = sum of combination rows


def test_emulator_patch_is_partial(shop: EmulatorHandle) -> None:
    shop.state.populate(1)
    body = psxml.entity_body("stock_available", {"id": 1, "quantity": 9})
    assert client(shop).patch("stock_availables", content=body).status_code == 200
    assert shop.state.stock[1]["id_shop"] == "1" and shop.state.quantity(1) == 9


def test_emulator_schema_blank_omits_read_only_fields(shop: EmulatorHandle) -> None:
    blank = client(shop).get("products", params={"schema": "blank"}).text
    assert "<reference><![CDATA[]]></reference>" in blank and "<quantity" not in blank
    synopsis = client(shop).get("stock_availables", params={"schema": "synopsis"}).text
    assert '<quantity required="true" format="isInt">' in synopsis


def test_emulator_index_lists_rights(shop: EmulatorHandle) -> None:
    root = psxml.parse(client(shop).get("").content)
    stock = root.find("api/stock_availables")
    assert stock is not None and stock.get("put") == "true" and stock.get("post") == "false"


def test_emulator_faults_and_recovery_after_n_failures(shop: EmulatorHandle) -> None:
    shop.state.populate(1)
    c = client(shop)
    shop.state.set_fault("500", 2)
    first = c.get("products")
    assert first.status_code == 500 and codes(first)[0] == 2
    assert "ws_key=" + KEY in first.text  # the echo that clients must redact
    assert c.get("products").status_code == 500
    assert c.get("products").status_code == 200
    shop.state.set_fault("html", 1)
    page = c.get("products")
    assert page.status_code == 503 and page.headers["content-type"].startswith("text/html")
    shop.state.set_fault("malformed", 1)
    with pytest.raises(etree.XMLSyntaxError):
        etree.fromstring(c.get("products").content)
    shop.state.set_fault("hang", 1, hang_seconds=2)
    with pytest.raises(httpx.ReadTimeout):
        client(shop).get("products", timeout=0.2)
    assert shop.state.requests["GET"] == 6


def test_emulator_latency_is_concurrent_and_counted(shop: EmulatorHandle) -> None:
    import concurrent.futures
    import time

    shop.state.populate(1)
    shop.state.faults.latency_ms = 300
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(
            pool.map(lambda _: httpx.get(f"{shop.url}/api/products/1", auth=(KEY, "")).status_code, range(4))
        )
    assert results == [200] * 4
    assert time.perf_counter() - started < 1.1  # one after the other would take 1.2 s
    assert shop.state.max_in_flight == 4


def test_emulator_runs_as_a_command(tmp_path) -> None:
    import socket
    import subprocess
    import sys
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "stockq.integrations.prestashop.emulator", "--port", str(port), "--key", KEY,
         "--products", "5", "--combinations", "1"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        assert "emulator at" in process.stdout.readline()
        response = httpx.get(f"http://127.0.0.1:{port}/api/products", auth=(KEY, ""))
        assert ids(response) == [1, 2, 3, 4, 5, 6]
    finally:
        process.terminate()
        process.wait(5)
        time.sleep(0)


def test_emulator_version_9_drops_the_depends_on_stock_check_and_answers_options() -> None:
    from stockq.integrations.prestashop.emulator import start_emulator

    with start_emulator(key=KEY, products=1, version="9.0.0") as nine:
        body = stock_put(id=1, **{**FULL, "depends_on_stock": 1, "quantity": 3})
        assert client(nine).put("stock_availables", content=body).status_code == 200
        assert nine.state.quantity(1) == 3
        assert httpx.options(f"{nine.url}/api/products").status_code == 200  # no key needed


def test_emulator_post_creates_stock_rows_and_delete_removes_them(shop: EmulatorHandle) -> None:
    body = psxml.entity_body("product", {"reference": "NEW", "price": "5.0"})
    created = client(shop).post("products", content=body)
    assert created.status_code == 201
    new_id = int(psxml.entity_fields(psxml.parse(created.content), "product")["id"])
    assert shop.state.quantity(new_id) == 0
    with_id = client(shop).post("products", content=psxml.entity_body("product", {"id": 5, "price": "1"}))
    assert with_id.status_code == 400 and codes(with_id) == [91]
    deleted = client(shop).delete(f"products/{new_id}")
    assert deleted.status_code == 200 and deleted.content == b""
    assert client(shop).get(f"products/{new_id}").status_code == 404
    assert codes(client(shop).delete("products/999")) == [87]


def test_emulator_head_has_no_body_and_webservice_can_be_disabled(shop: EmulatorHandle) -> None:
    shop.state.populate(1)
    head = client(shop).head("products/1")
    assert head.status_code == 200 and head.content == b""
    shop.state.webservice_enabled = False
    disabled = client(shop).get("products")
    assert disabled.status_code == 503 and codes(disabled) == [22]
