"""Document lines from the command line and from files.

- ``parse_item_option("SKU:QTY[:PRICE]")`` reads one ``--item``.
- ``read_items_file(path)`` reads ``--items FILE``: ``sku;qty[;price]`` lines, or comma- or tab-separated ones. The
  delimiter is taken from the first line (``;`` wins, then tab, then ``,``). A first line whose quantity is not a
  number is a header; with a header, columns are found by name (``sku``; ``qty``/``quantity``/``ilosc``;
  ``price``/``unit_price``/``cena``). Decimal commas are accepted (``1,5``; in comma-separated files quote them).
  Blank lines are skipped; errors name the line.
"""

from __future__ import annotations

import csv
from decimal import Decimal, InvalidOperation
from pathlib import Path

from stockq import errors

ItemLine = tuple[str, Decimal, Decimal | None]

_SKU_NAMES = {"sku", "symbol", "indeks", "index", "code"}
_QTY_NAMES = {"qty", "quantity", "ilosc", "ilość", "amount"}
_PRICE_NAMES = {"price", "unit_price", "cena", "unitprice"}


def parse_decimal(text: str, what: str) -> Decimal:
    """``1.5``, ``1,5``, ``1 000,5`` → Decimal; InvalidInput otherwise."""
    cleaned = text.strip().replace("\u00a0", "").replace(" ", "").replace(",", ".")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise errors.InvalidInput(f"Invalid {what}: {text!r}") from None
    if not value.is_finite():
        raise errors.InvalidInput(f"Invalid {what}: {text!r}")
    return value


def parse_item_option(text: str) -> ItemLine:
    """One ``--item SKU:QTY[:PRICE]``."""
    parts = text.split(":")
    if len(parts) not in (2, 3) or not parts[0].strip():
        raise errors.InvalidInput(f"Invalid --item {text!r}: expected SKU:QTY or SKU:QTY:PRICE")
    sku = parts[0].strip()
    quantity = parse_decimal(parts[1], f"quantity in --item {text!r}")
    price = parse_decimal(parts[2], f"price in --item {text!r}") if len(parts) == 3 and parts[2].strip() else None
    return sku, quantity, price


def read_items_file(path: Path) -> list[ItemLine]:
    """Every line of an items file (see the module docstring)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise errors.InvalidInput(f"Cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise errors.InvalidInput(f"{path} is not UTF-8 text") from None
    lines = text.splitlines()
    first = next((line for line in lines if line.strip()), "")
    delimiter = ";" if ";" in first else ("\t" if "\t" in first else ",")
    reader = csv.reader(lines, delimiter=delimiter)
    sku_col, qty_col, price_col = 0, 1, 2
    items: list[ItemLine] = []
    header_checked = False
    for line_no, row in enumerate(reader, start=1):
        cells = [cell.strip() for cell in row]
        if not any(cells):
            continue
        if not header_checked:
            header_checked = True
            if len(cells) >= 2 and not _is_number(cells[1]):
                names = [cell.lower() for cell in cells]
                sku_col = _find(names, _SKU_NAMES, "sku", path)
                qty_col = _find(names, _QTY_NAMES, "qty", path)
                price_col = next((i for i, name in enumerate(names) if name in _PRICE_NAMES), -1)
                continue
        where = f"{path.name} line {line_no}"
        if len(cells) <= max(sku_col, qty_col) or not cells[sku_col]:
            raise errors.InvalidInput(f"{where}: expected sku{delimiter}qty[{delimiter}price]")
        quantity = parse_decimal(cells[qty_col], f"quantity in {where}")
        price = None
        if 0 <= price_col < len(cells) and cells[price_col]:
            price = parse_decimal(cells[price_col], f"price in {where}")
        items.append((cells[sku_col], quantity, price))
    if not items:
        raise errors.InvalidInput(f"{path} has no items")
    return items


def _is_number(text: str) -> bool:
    try:
        parse_decimal(text, "number")
    except errors.InvalidInput:
        return False
    return True


def _find(names: list[str], accepted: set[str], what: str, path: Path) -> int:
    for index, name in enumerate(names):
        if name in accepted:
            return index
    raise errors.InvalidInput(f"{path}: the header has no {what} column")
