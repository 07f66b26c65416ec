"""Safe, constant-memory XML feed reader (lxml iterparse).

Safety: entity resolution, DTD loading and network access are off and ``huge_tree`` stays off (libxml2 keeps its
per-node limits); any DOCTYPE is refused before parsing starts (checked again on the parsed document), so an XXE or
billion-laughs file fails at once, expands nothing and reads no file.
Memory: after each record the element is cleared and its already-processed previous siblings are deleted, so the
tree never holds more than the current record.

Field paths are ElementPath expressions relative to the record, with an optional final ``/@attribute`` or just
``@attribute`` (``@id``, ``name``, ``attrs/a[@name='EAN']``, ``g:price``, ``sizes/size/@code``); alternatives
separated by ``|`` are tried in order. Prefixes come from the profile's namespaces.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import IO

from lxml import etree

from stockq.imports.feeds import BadRecord, FeedError, RawRecord
from stockq.xmlsafe import SAFE_PARSER_OPTIONS

_PROLOG_BYTES = 65536
_DOCTYPE = re.compile(rb"<!DOCTYPE", re.IGNORECASE)
_FIRST_ELEMENT = re.compile(rb"<[A-Za-z_]")

Getter = Callable[[etree._Element], str | None]


def clark(name: str, namespaces: Mapping[str, str]) -> str:
    """``g:id`` → ``{http://base.google.com/ns/1.0}id`` using ``namespaces``; plain and Clark names pass through."""
    if name.startswith("{") or ":" not in name:
        return name
    prefix, local = name.split(":", 1)
    if prefix not in namespaces:
        raise FeedError(f"Unknown namespace prefix {prefix!r} in {name!r}")
    return f"{{{namespaces[prefix]}}}{local}"


def compile_path(path: str, namespaces: Mapping[str, str]) -> Getter:
    """A function returning the (stripped) text or attribute value at ``path`` under a record, or None."""
    alternatives = [_compile_one(p.strip(), namespaces) for p in path.split("|") if p.strip()]
    if not alternatives:
        raise FeedError(f"Empty field path {path!r}")
    if len(alternatives) == 1:
        return alternatives[0]

    def first(elem: etree._Element) -> str | None:
        for getter in alternatives:
            value = getter(elem)
            if value:
                return value
        return None

    return first


def _compile_one(path: str, namespaces: Mapping[str, str]) -> Getter:
    element_path, _, last = path.rpartition("/")
    if last.startswith("@"):
        attribute = last[1:]
    else:
        element_path, attribute = path, ""
    attr = clark(attribute, namespaces) if attribute else None
    ns = dict(namespaces)
    if element_path:
        try:
            etree.Element("probe").find(element_path, ns)
        except (SyntaxError, KeyError, ValueError) as exc:
            raise FeedError(f"Invalid field path {path!r}: {exc}") from None
    if attr is not None and not element_path:
        return lambda elem: _strip(elem.get(attr))
    if attr is not None:
        return lambda elem: _attr_of(elem.find(element_path, ns), attr)
    return lambda elem: _text_of(elem.find(element_path, ns))


def _strip(value: str | None) -> str | None:
    return value.strip() if value is not None else None


def _attr_of(elem: etree._Element | None, attr: str) -> str | None:
    return None if elem is None else _strip(elem.get(attr))


def _text_of(elem: etree._Element | None) -> str | None:
    if elem is None:
        return None
    text = elem.text if len(elem) == 0 else "".join(str(t) for t in elem.itertext())
    return (text or "").strip()


def refuse_doctype(binary: IO[bytes]) -> None:
    """Fail when the prolog (the bytes before the first element) declares a DOCTYPE; rewinds ``binary``."""
    head = binary.read(_PROLOG_BYTES)
    binary.seek(0)
    first_element = _FIRST_ELEMENT.search(head)
    prolog = head if first_element is None else head[: first_element.start()]
    if _DOCTYPE.search(prolog):
        raise FeedError("The feed declares a DOCTYPE; DTDs and entities are refused (possible XXE or entity bomb)")


def read_xml(
    binary: IO[bytes],
    *,
    records: Sequence[str],
    mapping: Mapping[str, str],
    namespaces: Mapping[str, str] | None = None,
) -> Iterator[RawRecord | BadRecord]:
    """Yield the mapped fields of every element named in ``records`` (see the module docstring)."""
    ns = dict(namespaces or {})
    tags = [clark(tag, ns) for tag in records]
    getters = [(field, compile_path(path, ns)) for field, path in mapping.items()]
    refuse_doctype(binary)
    context = etree.iterparse(
        binary,
        events=("end",),
        tag=tags,
        **SAFE_PARSER_OPTIONS,
    )
    number = 0
    try:
        for _event, elem in context:
            number += 1
            if number == 1 and elem.getroottree().docinfo.doctype:
                raise FeedError("The feed declares a DOCTYPE; DTDs and entities are refused")
            try:
                values = {field: getter(elem) for field, getter in getters}
            except (ValueError, SyntaxError) as exc:
                yield BadRecord(number, f"record {number}: {exc}")
            else:
                yield RawRecord(number, values)
            elem.clear(keep_tail=True)
            parent = elem.getparent()
            if parent is not None:
                while elem.getprevious() is not None:
                    del parent[0]
    except etree.XMLSyntaxError as exc:
        raise FeedError(f"The XML is not well-formed (after {number} records): {_first_error(exc)}") from None
    if number == 0 and not _has_root(context):
        raise FeedError("The XML document is empty")


def _has_root(context: etree.iterparse) -> bool:
    return getattr(context, "root", None) is not None


def _first_error(exc: etree.XMLSyntaxError) -> str:
    return str(exc).splitlines()[0][:300]
