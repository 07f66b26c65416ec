"""The demo's example catalogue: a Polish-style CSV (Windows-1250, semicolons, decimal commas) and a Ceneo feed."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class DemoProduct:
    sku: str
    ean: str
    name: str
    price: Decimal
    stock: int


def ean13(body: str) -> str:
    """``body`` (12 digits) with its EAN-13 check digit."""
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body))
    return body + str((10 - total % 10) % 10)


# From the local catalogue (CSV): products of the company's own warehouse.
CSV_PRODUCTS = [
    DemoProduct("KUB-001", ean13("590123412345"), "Kubek ceramiczny 300 ml", Decimal("19.99"), 40),
    DemoProduct("KUB-002", ean13("590123412346"), "Kubek termiczny stalowy", Decimal("49.90"), 12),
    DemoProduct("TAL-010", ean13("590123412350"), "Talerz płaski 27 cm", Decimal("24.50"), 30),
    DemoProduct("MIS-020", ean13("590123412360"), "Miska sałatkowa szklana", Decimal("129.90"), 8),
    DemoProduct("SZK-030", ean13("590123412370"), "Szklanka do herbaty, zestaw 6 szt.", Decimal("59.00"), 5),
    DemoProduct("ŁYŻ-040", ean13("590123412380"), "Łyżeczki deserowe, zestaw 12 szt.", Decimal("34.99"), 0),
]

# From a supplier's Ceneo-style offers feed (XML): these also set stock, in a second warehouse.
XML_PRODUCTS = [
    DemoProduct("CZA-100", ean13("590765400100"), "Czajnik elektryczny 1,7 l", Decimal("149.00"), 7),
    DemoProduct("EKS-200", ean13("590765400200"), "Ekspres przelewowy do kawy", Decimal("329.00"), 3),
    DemoProduct("TOS-300", ean13("590765400300"), "Toster dwukomorowy", Decimal("119.90"), 15),
]


def catalogue_csv() -> bytes:
    lines = ["kod;ean;nazwa;cena;stan"]
    for p in CSV_PRODUCTS:
        lines.append(f"{p.sku};{p.ean};{p.name};{str(p.price).replace('.', ',')};{p.stock}")
    return ("\r\n".join(lines) + "\r\n").encode("cp1250")


def supplier_feed_xml() -> bytes:
    offers = []
    for p in XML_PRODUCTS:
        offers.append(
            f'    <o id="{p.sku}" url="https://dostawca.example/p/{p.sku}" price="{p.price}" avail="1" stock="{p.stock}">\n'
            f"      <cat><![CDATA[AGD]]></cat>\n"
            f"      <name><![CDATA[{p.name}]]></name>\n"
            f'      <attrs><a name="EAN"><![CDATA[{p.ean}]]></a></attrs>\n'
            f"    </o>"
        )
    body = "\n".join(offers)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<offers xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" version="1">\n'
        f'  <group name="other">\n{body}\n  </group>\n</offers>\n'
    ).encode()


__all__ = ["CSV_PRODUCTS", "XML_PRODUCTS", "DemoProduct", "catalogue_csv", "supplier_feed_xml"]
