"""The batched readers (PostgreSQL's COPY staging path) agree with the per-record readers, and an import mixing
plain batches (converted in SQL) with irregular ones (validated record by record) applies and rejects exactly what
the per-record path does, on both databases."""

from __future__ import annotations

import io
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from stockq.imports import models, profiles, runner
from stockq.imports.feeds import BadRecord, RawRecord
from stockq.imports.feeds.csv import read_csv, read_csv_batches
from stockq.imports.feeds.presets import PRESETS
from stockq.imports.feeds.xml import _text_of, compile_path, read_xml, read_xml_batches
from stockq.warehouse import products, stock
from tests.imports.helpers import DATA

Flat = list[tuple[int, Any]]

TRICKY_CSV = (
    'sku;nazwa;cena\r\nA1;"two\r\nlines";1,5\r\n\r\nA2;x;2\r\nA3;"a\rb";3\nshort;1\nA4;nul\x00;4\n'
    'A5;"quote "" inside";5\r\nA6;"x\n\ny";6\r\nA7;"";\r\nA8;tab\there;7\n'
)


def _flat_records(items: list[RawRecord | BadRecord]) -> Flat:
    return [(item.number, tuple(item.fields.items()) if isinstance(item, RawRecord) else item.reason) for item in items]


def _flat_batches(batches: Any) -> Flat:
    flat: Flat = []
    for batch in batches:
        good = [
            (n, tuple(zip(batch.fields, row, strict=True))) for n, row in zip(batch.numbers, batch.rows, strict=True)
        ]
        flat += sorted(good + [(bad.number, bad.reason) for bad in batch.rejected], key=lambda item: item[0])
    return flat


@pytest.mark.parametrize("batch_size", [1, 2, 3, 5, 100])
@pytest.mark.parametrize("header", [True, False])
def test_csv_batches_match_read_csv_line_numbers_and_rejections(batch_size: int, header: bool) -> None:
    data = TRICKY_CSV.encode()
    mapping = {"sku": "sku", "name": "nazwa", "price": "cena"} if header else {"sku": "1", "name": "2", "price": "3"}
    expected = _flat_records(list(read_csv(io.BytesIO(data), mapping=mapping, encoding="utf-8", header=header)))
    fields_order = {"sku": 0, "ean": 1, "name": 2, "unit": 3, "price": 4, "quantity": 5}
    expected = [
        (n, tuple(sorted(v, key=lambda kv: fields_order[kv[0]])) if isinstance(v, tuple) else v) for n, v in expected
    ]
    got = _flat_batches(
        read_csv_batches(io.BytesIO(data), mapping=mapping, encoding="utf-8", header=header, batch_size=batch_size)
    )
    assert got == expected
    numbers = [n for n, _ in got]
    assert numbers[:3] == [3, 5, 7] if header else numbers[:4] == [1, 3, 5, 7]  # multi-line records, blank line


@pytest.mark.parametrize("name", ["ceneo", "google_rss", "google_atom", "idosell"])
def test_xml_batches_match_read_xml(name: str) -> None:
    chosen = PRESETS[name.split("_")[0]]
    with (DATA / f"{name}.xml").open("rb") as f:
        expected = _flat_records(
            list(read_xml(f, records=chosen.records, mapping=chosen.mapping, namespaces=chosen.namespaces))
        )
    order = ("sku", "ean", "name", "unit", "price", "quantity")
    expected = [
        (n, tuple(sorted(v, key=lambda kv: order.index(kv[0]))) if isinstance(v, tuple) else v) for n, v in expected
    ]
    with (DATA / f"{name}.xml").open("rb") as f:
        got = _flat_batches(
            read_xml_batches(
                f, records=chosen.records, mapping=chosen.mapping, namespaces=chosen.namespaces, batch_size=2
            )
        )
    assert got == expected and got


def test_simple_field_paths_find_what_elementpath_finds() -> None:
    from lxml import etree

    root = etree.fromstring(
        b"<o xmlns:g='urn:g'><attrs><a name='X'>1</a><a name=\"EAN\"> 590 </a></attrs><attrs><a name='EAN'>2</a>"
        b"</attrs><g:id>G</g:id><name>N<b>bold</b></name></o>"
    )
    ns = {"g": "urn:g"}
    for path in ("attrs/a[@name='EAN']", 'attrs/a[@name="X"]', "attrs/a", "g:id", "name", "missing", "attrs/b"):
        assert compile_path(path, ns)(root) == _text_of(root.find(path, ns)), path


def test_python_whitespace_is_what_str_strip_strips() -> None:
    every = "".join(c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace())
    assert runner.PYTHON_WHITESPACE == every


MIXED_CSV = (
    "sku;ean;nazwa;jm;ilosc;cena\n"
    "P-1;5901234567890;Plain one;szt;1;10,50\n"
    "P-2;;Plain two;;2;11.25\n"
    "P-3;5901234567891;\u00a0Padded name\u00a0;kg;3,5;12\n"
    '  P-4 ;;"Padded\r\nSKU, two lines";;4;"1 049,00"\n'
    "P-5;12AB;Bad EAN;;5;1\n"
    "P-6;;Negative;;-3;1\n"
    "P-7;;Tab\tand back\\slash;;7;7\n"
    "P-8;;Bad price;;8;abc\n"
    ";;No SKU;;1;1\n"
    "P-1;;Repeated, last wins;;9;99\n"
    "P-9;;Unit too long;abcdefghijklmnopqrs;0;0\n"
)


@pytest.mark.parametrize("batch_size", [2, 2000])
def test_mixed_plain_and_irregular_batches_apply_like_the_per_record_path(
    store: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch_size: int
) -> None:
    monkeypatch.setattr(runner, "BATCH_SIZE", batch_size)
    (tmp_path / "mixed.csv").write_text(MIXED_CSV, encoding="utf-8")
    mapping = {"sku": "sku", "ean": "ean", "name": "nazwa", "unit": "jm", "quantity": "ilosc", "price": "cena"}
    with store.begin() as conn:
        profiles.add_profile(
            conn,
            "mixed",
            source="mixed.csv",
            format="csv",
            import_root=tmp_path,
            mapping=mapping,
            stock_warehouse="MAG",
        )

    result = runner.run_import(store, "mixed", import_root=tmp_path)

    assert (result.status, result.read, result.created, result.rejected) == ("succeeded", 11, 6, 4)
    assert result.rejections == [
        (7, "line 7: EAN '12AB' is not 8 to 14 digits"),
        (8, "line 8: negative quantity -3"),
        (10, "line 10: price: 'abc' is not a number"),
        (11, "line 11: no SKU"),
    ]
    with store.begin() as conn:
        found = {p.sku: p for p in products.list_products(conn)}
        prices = dict(conn.execute(sa.select(models.import_prices.c.sku, models.import_prices.c.price)).all())
        levels = {lv.sku: lv.quantity for lv in stock.stock_levels(conn, ["MAG"])}
    assert sorted(found) == ["P-1", "P-2", "P-3", "P-4", "P-7", "P-9"]
    assert (found["P-1"].name, found["P-1"].ean) == ("Repeated, last wins", None)
    assert (found["P-2"].ean, found["P-2"].unit) == (None, "szt")
    assert (found["P-3"].name, found["P-3"].unit, found["P-3"].ean) == ("Padded name", "kg", "5901234567891")
    assert found["P-4"].name == "Padded\r\nSKU, two lines"
    assert found["P-7"].name == "Tab\tand back\\slash"
    assert found["P-9"].unit == "abcdefghijklmnop"
    assert {k: Decimal(str(v)) for k, v in prices.items()} == {
        "P-1": Decimal("99"),
        "P-2": Decimal("11.25"),
        "P-3": Decimal("12"),
        "P-4": Decimal("1049"),
        "P-7": Decimal("7"),
        "P-9": Decimal("0"),
    }
    assert levels == {
        "P-1": Decimal("9.0000"),
        "P-2": Decimal("2.0000"),
        "P-3": Decimal("3.5000"),
        "P-4": Decimal("4.0000"),
        "P-7": Decimal("7.0000"),
        "P-9": Decimal("0.0000"),
    }

    again = runner.run_import(store, "mixed", import_root=tmp_path)
    assert (again.status, again.created, again.stock_document) == ("succeeded", 0, None)
    if store.dialect.name == "postgresql":  # the staging path dedupes first: nothing left to change
        assert (again.updated, again.unchanged) == (0, 6)


def test_xml_record_without_sku_is_rejected_and_absent_fields_are_left_alone(store: sa.Engine, tmp_path: Path) -> None:
    with store.begin() as conn:
        products.upsert_products(conn, [{"sku": "X-2", "name": "Kept", "ean": "5900000000002"}])
    (tmp_path / "c.xml").write_text(
        '<offers><group name="x">'
        '<o id="X-1" price="10.50" stock="1"><name>One</name></o>'
        '<o price="3" stock="2"><name>No id</name></o>'
        '<o id="X-2" price="1 049,00" stock="3"><name> Two </name></o>'
        "</group></offers>",
        encoding="utf-8",
    )
    with store.begin() as conn:
        profiles.add_profile(conn, "c", source="c.xml", format="xml", preset="ceneo", import_root=tmp_path)

    result = runner.run_import(store, "c", import_root=tmp_path)

    assert (result.status, result.read, result.created, result.updated, result.rejected) == ("succeeded", 3, 1, 1, 1)
    assert result.rejections == [(2, "record 2: no SKU")]
    with store.begin() as conn:
        found = {p.sku: p for p in products.list_products(conn)}
        prices = dict(conn.execute(sa.select(models.import_prices.c.sku, models.import_prices.c.price)).all())
    assert (found["X-2"].name, found["X-2"].ean) == ("Two", "5900000000002")  # no EAN in the feed: kept
    assert {k: Decimal(str(v)) for k, v in prices.items()} == {"X-1": Decimal("10.5"), "X-2": Decimal("1049")}
