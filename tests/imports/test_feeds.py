"""Parsers without a database: encodings, delimiters, numbers, malformed CSV, XML presets and XML attacks."""

from __future__ import annotations

import io
import resource
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stockq.imports.feeds import BadRecord, FeedError, RawRecord
from stockq.imports.feeds import csv as feeds_csv
from stockq.imports.feeds.csv import MAX_FIELD_CHARS, detect_delimiter, detect_encoding, read_csv
from stockq.imports.feeds.presets import PRESETS
from stockq.imports.feeds.xml import read_xml
from stockq.imports.runner import parse_number
from tests.imports.helpers import DATA, write_ceneo_offers

CSV_MAP = {"sku": "sku", "ean": "ean", "name": "nazwa", "quantity": "ilosc", "price": "cena_brutto"}


def _csv(data: bytes, **kwargs: object) -> list[RawRecord | BadRecord]:
    encoding = kwargs.pop("encoding", "utf-8")
    return list(read_csv(io.BytesIO(data), encoding=str(encoding), **kwargs))  # type: ignore[arg-type]


def _xml(path: Path, preset: str) -> list[RawRecord | BadRecord]:
    chosen = PRESETS[preset]
    with path.open("rb") as f:
        return list(read_xml(f, records=chosen.records, mapping=chosen.mapping, namespaces=chosen.namespaces))


def test_encoding_detection_bom_utf8_then_windows_1250(tmp_path: Path) -> None:
    assert detect_encoding(DATA / "pl_cp1250.csv") == "cp1250"
    assert detect_encoding(DATA / "bom_utf8.csv") == "utf-8-sig"
    plain = tmp_path / "plain.csv"
    plain.write_bytes("sku;nazwa\nA;Żółw\n".encode())
    assert detect_encoding(plain) == "utf-8"
    # valid UTF-8 for 2 MiB, then one Windows-1250 byte: the whole file is checked, not just a sample
    late = tmp_path / "late.csv"
    late.write_bytes(b"sku;nazwa\n" + b"A;x\n" * 600_000 + "B;ą\n".encode("cp1250"))
    assert detect_encoding(late) == "cp1250"


def test_polish_csv_in_windows_1250_with_semicolons_and_decimal_commas() -> None:
    with (DATA / "pl_cp1250.csv").open("rb") as f:
        items = list(read_csv(f, mapping=CSV_MAP, encoding="cp1250"))
    good = {i.fields["sku"]: i for i in items if isinstance(i, RawRecord)}
    assert good["SKU-1001"].fields["name"] == 'Lampa biurkowa LED "Lux", 9W'
    assert good["SKU-1002"].fields["name"] == "Żarówka E27 ąśź"
    assert good["SKU-1002"].fields["price"] == "1 049,00"
    # formula-looking cells stay text, exactly as written
    assert good["SKU-1003"].fields["name"] == '=HYPERLINK("http://evil.example/")'
    assert good["SKU-1008"].fields["name"] == "@SUM(1+1)"
    bad = [i for i in items if isinstance(i, BadRecord)]
    assert [(b.number, b.reason) for b in bad] == [(5, "line 5: 3 fields, expected 5")]


@pytest.mark.parametrize(
    ("header", "expected"),
    [("a;b;c", ";"), ("a,b,c", ","), ("a\tb\tc", "\t"), ("a|b|c", "|"), ('"x;y",b,c', ","), ("single", ",")],
)
def test_delimiter_detection(header: str, expected: str) -> None:
    assert detect_delimiter(header) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 049,00", "1049.00"),
        ("1\u00a0049,00", "1049.00"),
        ("1.234,50", "1234.50"),
        ("1,234.50", "1234.50"),
        ("1234.50", "1234.50"),
        ("129,99", "129.99"),
        ("129.99 PLN", "129.99"),
        ("10 000", "10000"),
        ("-3", "-3"),
    ],
)
def test_numbers_in_polish_and_other_notations(text: str, expected: str) -> None:
    assert str(parse_number(text)) == expected


@pytest.mark.parametrize("text", ["abc", "1.2.3", "=1+1", "12,34,5", "", "1e5", "0x10"])
def test_not_numbers(text: str) -> None:
    with pytest.raises(ValueError, match="is not a number"):
        parse_number(text)


def test_explicit_decimal_comma_refuses_an_ambiguous_dot() -> None:
    assert parse_number("1.234,5", decimal=",") == parse_number("1234,5")
    with pytest.raises(ValueError):
        parse_number("1.5", decimal=",")


def test_nul_byte_and_ragged_rows_are_rejected_per_record_with_line_numbers() -> None:
    data = b"sku,name,quantity\nA,ok,1\nB,bad\x00name,2\nC,x\nD,too,many,fields\nE,fine,3\n"
    items = _csv(data, mapping={"sku": "sku", "name": "name"})
    assert [i.fields["sku"] for i in items if isinstance(i, RawRecord)] == ["A", "E"]
    assert [(i.number, i.reason) for i in items if isinstance(i, BadRecord)] == [
        (3, "line 3: contains a NUL byte"),
        (4, "line 4: 2 fields, expected 3"),
        (5, "line 5: 4 fields, expected 3"),
    ]


def test_a_10_mb_field_fails_the_feed_without_reading_it_whole() -> None:
    data = b"sku,name\nA,ok\nB," + b"x" * 10_000_000 + b"\nC,after\n"
    with pytest.raises(FeedError, match=f"longer than {MAX_FIELD_CHARS}"):
        _csv(data, mapping={"sku": "sku", "name": "name"})


def test_the_10_mb_field_error_names_its_line() -> None:
    data = b"sku,name\r\nA,ok\r\nB,ok\r\nC," + b"x" * (MAX_FIELD_CHARS + 1) + b"\r\nD,after\r\n"
    with pytest.raises(FeedError, match=r"^Line 4 is longer"):
        _csv(data, mapping={"sku": "sku", "name": "name"})


@settings(max_examples=300, deadline=None)
@given(
    text=st.lists(
        st.sampled_from(["a", ";", '"', "\n", "\r", "\r\n", "\x0b", "\x85", "\u2028", "ż", " "]), max_size=80
    ).map("".join),
    chunk=st.sampled_from([1, 2, 3, 7, 1 << 20]),
)
def test_chunked_line_splitting_matches_readline(text: str, chunk: int) -> None:
    """The chunked splitter yields exactly what readline() with newline="" yields, wherever the chunks end."""

    def wrapper() -> io.TextIOWrapper:
        return io.TextIOWrapper(io.BytesIO(text.encode()), encoding="utf-8", newline="")

    expected, reference = [], wrapper()
    while line := reference.readline():
        expected.append(line)
    assert list(feeds_csv._capped_lines(wrapper(), chunk)) == expected


def test_an_unbalanced_quote_fails_the_feed() -> None:
    data = b'sku,name\nA,"open quote\n' + b"B,line\n" * 200_000
    with pytest.raises(FeedError, match=r"Malformed CSV|longer than"):
        _csv(data, mapping={"sku": "sku", "name": "name"})


def test_undecodable_bytes_fail_with_a_hint_about_the_encoding() -> None:
    with pytest.raises(FeedError, match=r"not valid utf-8.*encoding"):
        _csv("sku,name\nA,Żółw\n".encode("cp1250"), mapping={"sku": "sku", "name": "name"})


def test_missing_mapped_column_and_auto_mapping_of_polish_headers() -> None:
    with pytest.raises(FeedError, match=r"'kod' .*not in the header"):
        _csv(b"sku,name\nA,B\n", mapping={"sku": "kod"})
    items = _csv("Indeks;Nazwa;Ilość\nA;Lampa;3\n".encode(), mapping={})
    assert items == [RawRecord(2, {"sku": "A", "name": "Lampa", "quantity": "3"})]


def test_csv_without_header_maps_column_numbers() -> None:
    items = _csv(b"A|Lampa|3\nB|Kabel|4\n", mapping={"sku": "1", "quantity": "3"}, header=False)
    assert items == [RawRecord(1, {"sku": "A", "quantity": "3"}), RawRecord(2, {"sku": "B", "quantity": "4"})]


def test_bom_utf8_csv_with_quoted_newline() -> None:
    with (DATA / "bom_utf8.csv").open("rb") as f:
        items = list(read_csv(f, mapping={}, encoding="utf-8-sig"))
    assert items == [
        RawRecord(2, {"sku": "BOM-1", "name": "Zażółć gęślą jaźń", "quantity": "3", "price": "9.99"}),
        RawRecord(4, {"sku": "BOM-2", "name": "Multi\nline", "quantity": "4", "price": "1.50"}),
    ]


def test_ceneo_preset() -> None:
    items = _xml(DATA / "ceneo.xml", "ceneo")
    assert items[0] == RawRecord(
        1,
        {"sku": "SKU-1001", "ean": "5901234123457", "name": "Lampa biurkowa LED", "price": "129.99", "quantity": "14"},
    )
    assert items[1].fields["name"] == "Żarówka E27 9W"  # type: ignore[union-attr]
    assert items[3].fields["quantity"] is None  # type: ignore[union-attr]
    assert len(items) == 4


def test_google_merchant_rss_and_atom_presets() -> None:
    rss = _xml(DATA / "google_rss.xml", "google")
    assert rss == [
        RawRecord(1, {"sku": "SKU-1001", "ean": "5901234123457", "name": "Lampa biurkowa LED", "price": "129.99 PLN"}),
        RawRecord(2, {"sku": "SKU-2002", "ean": None, "name": "Kabel USB-C", "price": "19,90 PLN"}),
    ]
    atom = _xml(DATA / "google_atom.xml", "google")
    assert [(r.fields["sku"], r.fields["name"]) for r in atom] == [  # type: ignore[union-attr]
        ("ATOM-1", "Atomowa lampa"),
        ("ATOM-2", "Druga"),
    ]


def test_idosell_preset() -> None:
    items = _xml(DATA / "idosell.xml", "idosell")
    assert [(r.fields["sku"], r.fields["price"], r.fields["quantity"]) for r in items] == [  # type: ignore[union-attr]
        ("4145-01", "100.00", "12"),
        ("4146-01", "10.00", "-1"),
        ("4147-01", "1.23", "2.5"),
    ]


@pytest.mark.parametrize("name", ["xxe.xml", "billion_laughs.xml"])
def test_doctype_attacks_fail_fast_and_leak_nothing(name: str) -> None:
    started = time.monotonic()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(FeedError, match="DOCTYPE") as caught:
        _xml(DATA / name, "ceneo")
    assert time.monotonic() - started < 1.0
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 20_000  # KiB: no expansion
    assert "root:" not in str(caught.value)


def test_doctype_after_leading_comment_is_still_refused(tmp_path: Path) -> None:
    path = tmp_path / "sneaky.xml"
    path.write_text('<?xml version="1.0"?>\n<!-- hi -->\n<!DOCTYPE o [<!ENTITY a "b">]>\n<offers><o id="1"/></offers>')
    with pytest.raises(FeedError, match="DOCTYPE"):
        _xml(path, "ceneo")


def test_undeclared_entity_is_not_well_formed(tmp_path: Path) -> None:
    path = tmp_path / "entity.xml"
    path.write_text('<offers><o id="1"><name>&secret;</name></o></offers>')
    with pytest.raises(FeedError, match="not well-formed"):
        _xml(path, "ceneo")


def test_truncated_xml_fails_after_the_records_it_read() -> None:
    with pytest.raises(FeedError, match="not well-formed"):
        _xml(DATA / "truncated.xml", "ceneo")


def test_iterparse_keeps_memory_flat(tmp_path: Path) -> None:
    """Records are cleared and previous siblings deleted: the tree never grows with the file."""
    path = tmp_path / "big.xml"
    write_ceneo_offers(path, 30_000)
    chosen = PRESETS["ceneo"]
    with path.open("rb") as fh:
        iterator = read_xml(fh, records=chosen.records, mapping=chosen.mapping)
        seen = 0
        for _ in iterator:
            seen += 1
            if seen == 29_999:
                break
        # the generator's frame holds the last element; its parent must have no accumulated siblings
        frame = iterator.gi_frame
        assert frame is not None
        elem = frame.f_locals["elem"]
        assert len(elem.getparent()) < 100  # parsed-ahead records only, not the 30,000 before
    assert seen == 29_999
