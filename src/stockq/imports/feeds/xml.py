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
from typing import IO, Any

from lxml import etree

from stockq.imports.feeds import PRODUCT_FIELDS, BadRecord, FeedError, RawRecord, RecordBatch
from stockq.xmlsafe import SAFE_PARSER_OPTIONS

_PROLOG_BYTES = 65536
_DOCTYPE = re.compile(rb"<!DOCTYPE", re.IGNORECASE)
_FIRST_ELEMENT = re.compile(rb"<[A-Za-z_]")
_NAME = r"[A-Za-z_][\w.-]*(?::[A-Za-z_][\w.-]*)?"
_SIMPLE_STEP = re.compile(rf"(?P<tag>{_NAME})(?:\[@(?P<attr>{_NAME})=(?:'(?P<v1>[^']*)'|\"(?P<v2>[^\"]*)\")\])?")

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
    find = _simple_find(element_path, ns) or (lambda elem: elem.find(element_path, ns))
    if attr is not None:
        return lambda elem: _attr_of(find(elem), attr)
    return lambda elem: _text_of(find(elem))


def _simple_find(path: str, namespaces: Mapping[str, str]) -> Callable[[etree._Element], etree._Element | None] | None:
    """``elem.find(path)`` for paths of plain child steps (``attrs/a[@name='EAN']``, ``g:id``) without
    ElementPath's per-call overhead (the same element: the first match in document order); None for other paths."""
    if "" in namespaces or None in namespaces:
        return None  # a default namespace changes how plain names match: leave it to ElementPath
    steps: list[tuple[str, str | None, str | None]] = []
    for step in path.split("/"):
        match = _SIMPLE_STEP.fullmatch(step)
        if match is None:
            return None
        tag, attribute = match.group("tag"), match.group("attr")
        value = match.group("v1") if match.group("v1") is not None else match.group("v2")
        steps.append((clark(tag, namespaces), clark(attribute, namespaces) if attribute else None, value))

    if len(steps) == 1 and steps[0][1] is None:
        only_tag = steps[0][0]
        return lambda elem: next(elem.iterchildren(only_tag), None)
    if len(steps) == 2 and steps[0][1] is None:
        (outer_tag, _, _), (inner_tag, attribute, value) = steps

        def nested(elem: etree._Element) -> etree._Element | None:
            for outer in elem.iterchildren(outer_tag):
                for inner in outer.iterchildren(inner_tag):
                    if attribute is None or inner.get(attribute) == value:
                        return inner
            return None

        return nested

    def first(elem: etree._Element, depth: int = 0) -> etree._Element | None:
        tag, attribute, value = steps[depth]
        for child in elem.iterchildren(tag):
            if attribute is None or child.get(attribute) == value:
                if depth + 1 == len(steps):
                    return child
                found = first(child, depth + 1)
                if found is not None:
                    return found
        return None

    return first


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
    getters = [(field, compile_path(path, ns)) for field, path in mapping.items()]
    for number, elem in _record_elements(binary, records, ns):
        try:
            values = {field: getter(elem) for field, getter in getters}
        except (ValueError, SyntaxError) as exc:
            yield BadRecord(number, f"record {number}: {exc}")
        else:
            yield RawRecord(number, values)


def read_xml_batches(
    binary: IO[bytes],
    *,
    records: Sequence[str],
    mapping: Mapping[str, str],
    namespaces: Mapping[str, str] | None = None,
    batch_size: int = 2000,
) -> Iterator[RecordBatch]:
    """``read_xml`` in batches of value tuples (the mapped fields, in ``PRODUCT_FIELDS`` order), for bulk loading;
    the same records, numbers, rejections, safety checks and constant memory."""
    ns = dict(namespaces or {})
    fields = tuple(name for name in PRODUCT_FIELDS if name in mapping)
    getters = [compile_path(mapping[name], ns) for name in fields]
    batch = RecordBatch(fields, [], [])
    numbers: list[int] = []
    for number, elem in _record_elements(binary, records, ns):
        try:
            values = tuple([getter(elem) for getter in getters])
        except (ValueError, SyntaxError) as exc:
            batch.rejected.append(BadRecord(number, f"record {number}: {exc}"))
        else:
            numbers.append(number)
            batch.rows.append(values)
        if len(batch.rows) >= batch_size:
            batch.numbers = numbers
            yield batch
            batch, numbers = RecordBatch(fields, [], []), []
    if batch.rows or batch.rejected:
        batch.numbers = numbers
        yield batch


def _record_elements(binary: IO[bytes], records: Sequence[str], ns: Mapping[str, str]) -> Iterator[tuple[int, Any]]:
    """(number, element) for every record element, parsed safely; each element and the siblings before it are
    freed once the caller has read it, so memory stays flat whatever the feed's size."""
    refuse_doctype(binary)
    context = etree.iterparse(binary, events=("end",), tag=[clark(tag, ns) for tag in records], **SAFE_PARSER_OPTIONS)
    number = 0
    try:
        for _event, elem in context:
            number += 1
            if number == 1 and elem.getroottree().docinfo.doctype:
                raise FeedError("The feed declares a DOCTYPE; DTDs and entities are refused")
            yield number, elem
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
