"""Safe parsing and exact building of PrestaShop webservice XML.

Parsing never resolves entities, loads DTDs or touches the network (a shop's answer is untrusted input).
Building follows the webservice's own layout: CDATA scalars, one element per line, entity fields indented by a tab.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from lxml import etree

from stockq.xmlsafe import SAFE_PARSER_OPTIONS

XLINK_NS = "http://www.w3.org/1999/xlink"
XLINK_HREF = f"{{{XLINK_NS}}}href"
PROLOG = '<?xml version="1.0" encoding="UTF-8"?>\n'
ROOT_OPEN = f'<prestashop xmlns:xlink="{XLINK_NS}">\n'
ROOT_CLOSE = "</prestashop>\n"


class XmlError(ValueError):
    """The document is not well-formed XML (or not a PrestaShop document)."""


def _parser() -> etree.XMLParser:
    return etree.XMLParser(**SAFE_PARSER_OPTIONS)


def parse(content: bytes | str) -> etree._Element:
    """Parse ``content`` safely; raises XmlError with libxml's message on malformed input."""
    if isinstance(content, str):
        content = content.encode("utf-8")
    if not content.strip():
        raise XmlError("String could not be parsed as XML")
    try:
        root = etree.fromstring(content, parser=_parser())
    except etree.XMLSyntaxError as exc:
        raise XmlError(str(exc)) from None
    if root is None:
        raise XmlError("String could not be parsed as XML")
    return root


def text_of(element: etree._Element | None) -> str:
    """The text of an element (CDATA included); '' for a missing or empty element."""
    if element is None:
        return ""
    if not len(element):
        return element.text or ""
    return "".join(str(part) for part in element.itertext())


def cdata(value: object) -> str:
    """``value`` as a CDATA section (a ``]]>`` inside is split across two sections, as it must be)."""
    text = "" if value is None else str(value)
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def escape_attr(value: object) -> str:
    return str(value).replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")


def document(body: str) -> str:
    """A full document: prolog, the root with the xlink namespace, ``body`` and the closing root."""
    return PROLOG + ROOT_OPEN + body + ROOT_CLOSE


@dataclass(frozen=True, slots=True)
class WsError:
    """One `<error>` of a PrestaShop error document."""

    code: int | None
    message: str


def error_document(errors: Iterable[WsError]) -> str:
    parts = ["<errors>\n"]
    for error in errors:
        parts.append("<error>\n")
        if error.code is not None:
            parts.append(f"<code>{cdata(error.code)}</code>\n")
        parts.append(f"<message>{cdata(error.message)}</message>\n</error>\n")
    parts.append("</errors>\n")
    return document("".join(parts))


def parse_errors(root: etree._Element) -> list[WsError]:
    """The `<errors>` of a PrestaShop document, in order; [] when it has none."""
    found: list[WsError] = []
    for error in root.iterfind("errors/error"):
        code_text = text_of(error.find("code")).strip()
        found.append(WsError(int(code_text) if code_text.isdigit() else None, text_of(error.find("message")).strip()))
    return found


def entity_body(resource_singular: str, fields: Mapping[str, object]) -> str:
    """A write body with one entity: plain elements (no whitespace around values, which PrestaShop would keep)."""
    return entities_body(resource_singular, [fields])


def entities_body(resource_singular: str, entities: Iterable[Mapping[str, object]]) -> str:
    """A write body with several entities of one resource (PrestaShop saves them one by one)."""
    parts = [ROOT_OPEN]
    for fields in entities:
        parts.append(f"<{resource_singular}>")
        for name, value in fields.items():
            parts.append(f"<{name}>{cdata(value)}</{name}>")
        parts.append(f"</{resource_singular}>\n")
    parts.append(ROOT_CLOSE)
    return PROLOG + "".join(parts)


def list_rows(root: etree._Element, resource: str) -> list[dict[str, str]]:
    """The items of a list answer (``display=[…]`` or ``full``) as dicts of scalar fields; minimal lists give
    ``{"id": …}`` from the attribute."""
    container = root.find(resource)
    if container is None:
        raise XmlError(f"the answer has no <{resource}> element")
    rows: list[dict[str, str]] = []
    for item in container:
        if not isinstance(item.tag, str):
            continue
        row: dict[str, str] = {}
        if item.get("id") is not None:
            row["id"] = item.get("id", "")
        for field in item:
            tag = field.tag
            if isinstance(tag, str) and tag != "associations":
                row[tag] = (field.text or "") if not len(field) else text_of(field)
        rows.append(row)
    return rows


def entity_fields(root: etree._Element, singular: str) -> dict[str, str]:
    """The scalar fields of a single-entity answer."""
    entity = root.find(singular)
    if entity is None:
        raise XmlError(f"the answer has no <{singular}> element")
    return {f.tag: text_of(f) for f in entity if isinstance(f.tag, str) and f.tag != "associations"}
