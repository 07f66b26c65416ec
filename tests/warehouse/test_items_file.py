"""--item and --items parsing (no database)."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

import pytest

from stockq import errors
from stockq.warehouse import items_file


def test_parse_item_option_reads_sku_qty_and_price() -> None:
    assert items_file.parse_item_option("A-1:2,5") == ("A-1", D("2.5"), None)
    assert items_file.parse_item_option("A-1:3:12.99") == ("A-1", D(3), D("12.99"))


@pytest.mark.parametrize("text", ["A-1", "A-1:x", ":3", "A:1:2:3", "A:nan"])
def test_parse_item_option_refuses_malformed(text: str) -> None:
    with pytest.raises(errors.InvalidInput):
        items_file.parse_item_option(text)


@pytest.mark.parametrize(
    "content",
    [
        "A;1,5\nB;2;3,20\n",
        "sku;qty;price\nA;1,5;\nB;2;3,20\n",
        'sku,quantity,price\nA,1.5,\nB,2,"3,20"\n',
        "A,1.5\nB,2,3.20\n",
        "price;sku;ilosc\n;A;1,5\n3,20;B;2\n",
        "\ufeffsku\tqty\tprice\nA\t1.5\t\n\nB\t2\t3.2\n",
    ],
)
def test_read_items_file_accepts_the_formats(tmp_path: Path, content: str) -> None:
    path = tmp_path / "items.csv"
    path.write_text(content, encoding="utf-8")
    assert items_file.read_items_file(path) == [("A", D("1.5"), None), ("B", D(2), D("3.2"))]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "has no items"),
        ("sku;qty\n", "has no items"),
        ("A;1\nB;zwei\n", "line 2"),
        ("name;count\nA;1\n", "no sku column"),
        ("A\n", "line 1"),
    ],
)
def test_read_items_file_names_the_bad_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "items.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(errors.InvalidInput, match=message):
        items_file.read_items_file(path)


def test_read_items_file_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(errors.InvalidInput, match="Cannot read"):
        items_file.read_items_file(tmp_path / "nope.csv")
