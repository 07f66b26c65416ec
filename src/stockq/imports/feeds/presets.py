"""Built-in mappings: XML presets for common Polish feeds, and column-name aliases for CSV without a mapping.

- ``ceneo``: the Ceneo offers feed (``<offers><group><o id price stock>``): SKU from ``@id``, EAN from
  ``attrs/a[@name='EAN']``, quantity from ``@stock`` (absent: not imported).
- ``google``: Google Merchant Center RSS 2.0 (``item``) or Atom (``entry``) with the ``g:`` namespace; no quantity.
- ``idosell``: an IdoSell (IOF) ``light.xml``-style supplier feed: ``<product id><price gross><sizes><size code>
  <stock quantity>``; the first size of a product is imported; a negative quantity (IOF's -1 sentinel) is ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from stockq import errors

GOOGLE_NS = "http://base.google.com/ns/1.0"
ATOM_NS = "http://www.w3.org/2005/Atom"


@dataclass(frozen=True, slots=True)
class Preset:
    """What a preset fixes for a profile: the format, XML record tags and namespaces, and the field mapping."""

    name: str
    format: str
    records: tuple[str, ...]
    mapping: dict[str, str]
    namespaces: dict[str, str] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)


PRESETS: dict[str, Preset] = {
    "ceneo": Preset(
        name="ceneo",
        format="xml",
        records=("o",),
        mapping={
            "sku": "@id",
            "ean": "attrs/a[@name='EAN']",
            "name": "name",
            "price": "@price",
            "quantity": "@stock",
        },
    ),
    "google": Preset(
        name="google",
        format="xml",
        records=("item", "atom:entry"),
        namespaces={"g": GOOGLE_NS, "atom": ATOM_NS},
        mapping={"sku": "g:id", "ean": "g:gtin", "name": "g:title | atom:title | title", "price": "g:price"},
    ),
    "idosell": Preset(
        name="idosell",
        format="xml",
        records=("product",),
        mapping={
            "sku": "sizes/size/@code | @id",
            "ean": "sizes/size/@code_external | @ean",
            "name": "description/name | name",
            "price": "price/@gross",
            "quantity": "sizes/size/stock/@quantity",
        },
        options={"ignore_negative_quantity": True},
    ),
}

CSV_ALIASES: dict[str, tuple[str, ...]] = {
    "sku": ("sku", "kod", "symbol", "indeks", "index", "id"),
    "ean": ("ean", "gtin", "kod_kreskowy", "barcode"),
    "name": ("name", "nazwa", "title"),
    "unit": ("unit", "jm", "jednostka"),
    "price": ("price", "cena", "cena_brutto", "gross"),
    "quantity": ("quantity", "qty", "ilosc", "ilość", "stan", "stock"),
}


def preset(name: str) -> Preset:
    """The preset called ``name``; InvalidInput listing the known ones otherwise."""
    try:
        return PRESETS[name.lower()]
    except KeyError:
        raise errors.InvalidInput(f"Unknown preset {name!r}; known: {', '.join(sorted(PRESETS))}") from None


def csv_mapping_from_header(header: list[str]) -> dict[str, str]:
    """Map product fields to the header's columns by their usual names (English and Polish)."""
    names = {h.replace("\ufeff", "").strip().lower(): h for h in header}
    mapping: dict[str, str] = {}
    for product_field, aliases in CSV_ALIASES.items():
        for alias in aliases:
            if alias in names:
                mapping[product_field] = names[alias]
                break
    return mapping
