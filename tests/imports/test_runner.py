"""Import runs against both databases: what is applied, what is rejected, and that failures apply nothing."""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from stockq.imports import models, profiles, runner
from stockq.warehouse import documents, products, stock
from stockq.warehouse import models as wm
from tests.imports.helpers import DATA, Route, http_server

CSV_MAP = {"sku": "sku", "ean": "ean", "name": "nazwa", "quantity": "ilosc", "price": "cena_brutto"}
FAST = {"connect_timeout": 0.5, "read_timeout": 0.5}


def _add(engine: sa.Engine, root: Path, name: str, **kwargs: Any) -> profiles.Profile:
    with engine.begin() as conn:
        return profiles.add_profile(conn, name, import_root=root, **kwargs)


def _run(engine: sa.Engine, root: Path, name: str) -> runner.RunResult:
    return runner.run_import(engine, name, import_root=root)


def _stock(engine: sa.Engine) -> dict[str, Decimal]:
    with engine.begin() as conn:
        return {lv.sku: lv.quantity for lv in stock.stock_levels(conn, ["MAG"])}


def _names(engine: sa.Engine) -> dict[str, str]:
    with engine.begin() as conn:
        return {p.sku: p.name for p in products.list_products(conn)}


def _documents(engine: sa.Engine) -> list[Any]:
    with engine.begin() as conn:
        return list(conn.execute(sa.select(wm.documents.c.type, wm.documents.c.number, wm.documents.c.status)))


def _seed(engine: sa.Engine, sku: str, name: str, quantity: str) -> None:
    with engine.begin() as conn:
        products.upsert_products(conn, [{"sku": sku, "name": name}])
        documents.post_inventory(conn, "MAG", {sku: Decimal(quantity)})


def test_polish_csv_applies_products_prices_and_stock_through_one_inw(store: sa.Engine, tmp_path: Path) -> None:
    shutil.copy(DATA / "pl_cp1250.csv", tmp_path / "pl.csv")
    _seed(store, "SKU-1002", "Stara nazwa", "5")
    _seed(store, "OTHER", "Not in the feed", "7")
    inventories_before = len(_documents(store))
    _add(store, tmp_path, "pl", source="pl.csv", format="csv", mapping=CSV_MAP, stock_warehouse="MAG")

    result = _run(store, tmp_path, "pl")

    assert (result.status, result.read, result.created, result.updated, result.unchanged, result.rejected) == (
        "succeeded",
        8,
        3,
        1,
        0,
        4,
    )
    assert result.rejections == [
        (5, "line 5: 4 fields, expected 5".replace("4 fields", "3 fields")),
        (6, "line 6: EAN '12AB' is not 8 to 14 digits"),
        (7, "line 7: negative quantity -3"),
        (9, "line 9: price: 'abc' is not a number"),
    ]
    names = _names(store)
    assert names["SKU-1001"] == 'Lampa biurkowa LED "Lux", 9W'
    assert names["SKU-1002"] == "Żarówka E27 ąśź"
    assert names["SKU-1003"] == '=HYPERLINK("http://evil.example/")'  # stored as text, never evaluated
    assert "SKU-1008" not in names
    assert _stock(store) == {
        "SKU-1001": Decimal("14.0000"),
        "SKU-1002": Decimal("0.0000"),
        "SKU-1003": Decimal("2.5000"),
        "SKU-1007": Decimal("1234.5000"),
        "OTHER": Decimal("7.0000"),  # absent from the feed: untouched
    }
    docs = _documents(store)
    assert len(docs) == inventories_before + 1
    assert docs[-1].type == "INW" and docs[-1].number == result.stock_document
    with store.begin() as conn:
        assert stock.recalculate(conn, dry_run=True) == []  # the ledger agrees with the totals
        prices = dict(conn.execute(sa.select(models.import_prices.c.sku, models.import_prices.c.price)).all())
        stored = conn.execute(sa.select(models.import_runs)).one()._mapping
        rejected_rows = conn.execute(sa.select(models.import_rejections.c.record_no)).scalars().all()
    assert {k: Decimal(str(v)) for k, v in prices.items()} == {
        "SKU-1001": Decimal("129.99"),
        "SKU-1002": Decimal("1049"),
        "SKU-1003": Decimal("1"),
        "SKU-1007": Decimal("10000"),
    }
    assert (stored["status"], stored["records_read"], stored["created"], stored["rejected"]) == ("succeeded", 8, 3, 4)
    assert stored["finished_at"] is not None and stored["stock_document"] == result.stock_document
    assert sorted(rejected_rows) == [5, 6, 7, 9]

    again = _run(store, tmp_path, "pl")
    assert (again.created, again.updated, again.unchanged, again.stock_document) == (0, 0, 4, None)
    assert len(_documents(store)) == inventories_before + 1


def test_utf8_bom_csv_with_header_aliases(store: sa.Engine, tmp_path: Path) -> None:
    shutil.copy(DATA / "bom_utf8.csv", tmp_path / "bom.csv")
    _add(store, tmp_path, "bom", source="bom.csv", format="csv", stock_warehouse="MAG")
    result = _run(store, tmp_path, "bom")
    assert (result.status, result.created, result.rejected) == ("succeeded", 2, 0)
    assert _names(store) == {"BOM-1": "Zażółć gęślą jaźń", "BOM-2": "Multi\nline"}
    assert _stock(store) == {"BOM-1": Decimal("3.0000"), "BOM-2": Decimal("4.0000")}


def test_truncated_feed_applies_nothing(store: sa.Engine, tmp_path: Path) -> None:
    shutil.copy(DATA / "truncated.xml", tmp_path / "t.xml")
    _seed(store, "SKU-1001", "Original", "5")
    documents_before = _documents(store)
    _add(store, tmp_path, "t", source="t.xml", format="xml", preset="ceneo", stock_warehouse="MAG")

    result = _run(store, tmp_path, "t")

    assert result.status == "failed"
    assert result.message is not None and "not well-formed" in result.message
    assert (result.created, result.updated) == (0, 0)
    assert _names(store) == {"SKU-1001": "Original"}  # neither renamed nor SKU-NEW created
    assert _stock(store) == {"SKU-1001": Decimal("5.0000")}  # not zeroed
    assert _documents(store) == documents_before
    with store.begin() as conn:
        run = conn.execute(sa.select(models.import_runs)).one()._mapping
    assert run["status"] == "failed" and "not well-formed" in run["message"] and run["finished_at"] is not None


def test_xxe_and_billion_laughs_runs_fail_and_leak_nothing(store: sa.Engine, tmp_path: Path) -> None:
    for name in ("xxe", "billion_laughs"):
        shutil.copy(DATA / f"{name}.xml", tmp_path / f"{name}.xml")
        _add(store, tmp_path, name, source=f"{name}.xml", format="xml", preset="ceneo")
        result = _run(store, tmp_path, name)
        assert result.status == "failed"
        assert result.message is not None and "DOCTYPE" in result.message and "root:" not in result.message
    assert _names(store) == {}


def test_url_source_then_304_applies_nothing_and_costs_one_request(store: sa.Engine, tmp_path: Path) -> None:
    routes = {"/ceneo.xml": Route(body=(DATA / "ceneo.xml").read_bytes(), etag='"abc"')}
    with http_server(routes) as server:
        _add(
            store,
            tmp_path,
            "c",
            source=server.url("/ceneo.xml"),
            format="xml",
            preset="ceneo",
            stock_warehouse="MAG",
            options=FAST,
        )
        first = _run(store, tmp_path, "c")
        assert (first.status, first.read, first.created, first.rejected) == ("succeeded", 4, 3, 1)
        assert first.rejections == [(3, "record 3: price: 'abc' is not a number")]
        # SKU-1002 counted 0; SKU-1004 has no stock attribute, so it gets no stock row at all
        assert _stock(store) == {"SKU-1001": Decimal("14.0000"), "SKU-1002": Decimal("0.0000")}
        with store.begin() as conn:
            products.upsert_products(conn, [{"sku": "SKU-1001", "name": "Renamed locally"}])
        second = _run(store, tmp_path, "c")
        assert second.status == "not_modified"
        assert server.hits("/ceneo.xml") == 2
        assert _names(store)["SKU-1001"] == "Renamed locally"

        routes["/ceneo.xml"] = Route(body=b"<offers><group><o id='SKU-1001' price='1'>", content_length=10_000)
        routes["/ceneo.xml"].etag = '"def"'
        cut = _run(store, tmp_path, "c")
        assert cut.status == "failed" and "closed the connection" in (cut.message or "")
        with store.begin() as conn:
            assert profiles.get_profile(conn, "c").etag == '"abc"'  # a failed run does not store validators

        routes["/ceneo.xml"] = Route(body=b"down", status=500)
        down = _run(store, tmp_path, "c")
        assert down.status == "failed" and "HTTP 500" in (down.message or "")
    assert _names(store)["SKU-1001"] == "Renamed locally"
    with store.begin() as conn:
        statuses = [r.status for r in reversed(runner.list_runs(conn, "c"))]
    assert statuses == ["succeeded", "not_modified", "failed", "failed"]


def test_url_timeout_fails_the_run(store: sa.Engine, tmp_path: Path) -> None:
    with http_server({"/slow.xml": Route(body=b"<offers/>", delay=1.5)}) as server:
        _add(store, tmp_path, "slow", source=server.url("/slow.xml"), format="xml", preset="ceneo", options=FAST)
        result = _run(store, tmp_path, "slow")
    assert result.status == "failed" and "timed out (read)" in (result.message or "")


def test_google_feed_matched_by_ean(store: sa.Engine, tmp_path: Path) -> None:
    shutil.copy(DATA / "google_rss.xml", tmp_path / "g.xml")
    with store.begin() as conn:
        products.upsert_products(conn, [{"sku": "LOCAL-1", "ean": "5901234123457", "name": "Local name"}])
    _add(store, tmp_path, "g", source="g.xml", format="xml", preset="google", match_key="ean")
    result = _run(store, tmp_path, "g")
    assert (result.status, result.created, result.updated, result.rejected) == ("succeeded", 1, 1, 0)
    assert _names(store) == {"LOCAL-1": "Lampa biurkowa LED", "SKU-2002": "Kabel USB-C"}


def test_idosell_feed_ignores_the_minus_one_sentinel(store: sa.Engine, tmp_path: Path) -> None:
    shutil.copy(DATA / "idosell.xml", tmp_path / "i.xml")
    _seed(store, "4146-01", "Sentinel", "3")
    _add(store, tmp_path, "i", source="i.xml", format="xml", preset="idosell", stock_warehouse="MAG")
    result = _run(store, tmp_path, "i")
    assert (result.status, result.created, result.rejected) == ("succeeded", 2, 0)
    assert _stock(store) == {"4145-01": Decimal("12.0000"), "4146-01": Decimal("3.0000"), "4147-01": Decimal("2.5")}


def test_stored_rejections_are_capped(store: sa.Engine, tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text("sku,quantity\n" + "".join(f"S{i},x\n" for i in range(1500)) + "OK,1\n")
    _add(store, tmp_path, "bad", source="bad.csv", format="csv")
    result = _run(store, tmp_path, "bad")
    assert (result.status, result.read, result.rejected, result.created) == ("succeeded", 1501, 1500, 1)
    with store.begin() as conn:
        stored = conn.execute(sa.select(sa.func.count()).select_from(models.import_rejections)).scalar_one()
    assert stored == runner.MAX_STORED_REJECTIONS


def test_source_outside_the_root_fails_the_run(store: sa.Engine, tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "outside.csv").write_text("sku\nX\n")
    (root / "escape.csv").write_text("sku\nY\n")
    _add(store, root, "esc", source="escape.csv", format="csv")
    (root / "escape.csv").unlink()  # swapped for a symlink out of the root after the profile was checked
    (root / "escape.csv").symlink_to(tmp_path / "outside.csv")
    result = _run(store, root, "esc")
    assert result.status == "failed" and "outside the import root" in (result.message or "")
    assert _names(store) == {}


def test_repeated_sku_last_wins_and_empty_ean_clears_on_both_databases(store: sa.Engine, tmp_path: Path) -> None:
    with store.begin() as conn:
        products.upsert_products(conn, [{"sku": "A", "ean": "5901234123457", "name": "Old", "unit": "kg"}])
    (tmp_path / "dup.csv").write_text("sku,ean,name\nA,,First\nB,5900000000011,Bee\nA,,Second\n")
    _add(store, tmp_path, "dup", source="dup.csv", format="csv")
    result = _run(store, tmp_path, "dup")
    assert (result.created, result.updated, result.unchanged) == (1, 1, 0)
    with store.begin() as conn:
        found = {p.sku: (p.ean, p.name, p.unit) for p in products.list_products(conn)}
    assert found == {"A": (None, "Second", "kg"), "B": ("5900000000011", "Bee", "szt")}
    again = _run(store, tmp_path, "dup")
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)


def test_products_created_by_another_run_meanwhile_are_updated_not_failed(
    store: sa.Engine, tmp_path: Path, monkeypatch: Any
) -> None:
    """PostgreSQL's staging path inserts new products with a plain INSERT; when another process created some of
    them after this run's snapshot, it falls back to ON CONFLICT and updates those from the feed instead."""
    if store.dialect.name != "postgresql":
        pytest.skip("the staging path is PostgreSQL's")
    (tmp_path / "feed.csv").write_text("sku;nazwa;cena_brutto\nA;Alfa;1,00\nB;Beta;2,00\nC;Gamma;3,00\n")
    _add(store, tmp_path, "feed", source="feed.csv", format="csv", mapping={"sku": "sku", "name": "nazwa"})
    plain_insert = runner._PostgresStagingImporter._insert_new_products

    def another_run_creates_b_first(self: Any, now: object) -> int:
        with store.begin() as other:
            products.upsert_products(other, [{"sku": "B", "name": "Made elsewhere"}])
        return plain_insert(self, now)

    monkeypatch.setattr(runner._PostgresStagingImporter, "_insert_new_products", another_run_creates_b_first)
    result = _run(store, tmp_path, "feed")

    assert (result.status, result.created, result.updated, result.unchanged) == ("succeeded", 2, 1, 0)
    assert _names(store) == {"A": "Alfa", "B": "Beta", "C": "Gamma"}
    with store.begin() as conn:
        prices = dict(conn.execute(sa.select(models.import_prices.c.sku, models.import_prices.c.price)).all())
    assert prices == {"A": Decimal("1.0000"), "B": Decimal("2.0000"), "C": Decimal("3.0000")}
