"""The fast XML feed reader: an lxml parser target (start/end/data callbacks) that extracts the mapped fields while
libxml2 parses, without building a tree or element proxies.

It covers mappings whose every path (each ``|`` alternative) is ``@attr`` on the record or a chain of child steps
``tag`` / ``tag[@attr='value']`` (namespace prefixes allowed) with an optional final ``/@attr``, when the namespaces
define no default prefix: exactly the paths ``feeds.xml`` answers with ``_simple_find`` or ``elem.get``.
``feeds.xml`` keeps its tree reader (iterparse) for any other mapping.

The values are the tree reader's: for each path the first match in document order; an element's text is every text
and CDATA node inside it (descendants included, comments and PIs dropped), stripped; an attribute value stripped;
None when the path matches nothing.

Three shapes of feed are left to the tree reader: a record nested inside another record (the tree reader clears the
inner record before the outer one is read, which this reader does not reproduce); more than ``MAX_STREAMED_TEXT``
characters of text in one record or between two records (the tree reader's libxml2 refuses a text node over 10 MB;
here the text would pile up in memory); elements nested deeper than ``MAX_DEPTH`` (the tree builder refuses them,
libxml2's SAX interface has no limit). This reader raises ``Unstreamable`` when it meets one, before it has yielded
a record that the shape would change, and the tree reader then fails (or not) exactly as before.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from lxml import etree

from stockq.imports.feeds import FeedError
from stockq.xmlsafe import SAFE_PARSER_OPTIONS

CHUNK_BYTES = 32768  # what lxml's iterparse reads at a time
MAX_STREAMED_TEXT = 1_000_000  # characters held for one record (or between records) before handing over
MAX_DEPTH = 256  # libxml2's tree builder refuses deeper documents (without huge_tree); its SAX interface does not
DOCTYPE_REFUSED = "The feed declares a DOCTYPE; DTDs and entities are refused"

Step = tuple[str, str | None, str | None]  # (Clark tag, predicate attribute or None, predicate value)
Completion = tuple[int, str | None]  # (value slot, attribute to read, or None for the element's text)


class Unstreamable(Exception):
    """The feed has a shape this reader does not reproduce (see the module docstring); the tree reader takes over."""


class _Absent:
    """The slot's first match has no such attribute: the value is None, and later matches must not replace it (a
    slot still None has not matched yet)."""

    def __bool__(self) -> bool:
        return False


_ABSENT: Any = _Absent()
_PENDING: Any = object()  # matched; the element's text is still being read


@dataclass(frozen=True, slots=True)
class StreamPlan:
    """A mapping compiled for the streaming reader: one value slot per path alternative."""

    records: frozenset[str]
    steps: tuple[tuple[Step, ...], ...]  # per slot; empty for an attribute of the record itself
    attributes: tuple[str | None, ...]  # per slot
    fields: tuple[tuple[int, ...], ...]  # per output field, its alternatives' slots in order
    record_attributes: tuple[tuple[int, str], ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "record_attributes",
            tuple((slot, attr) for slot, attr in enumerate(self.attributes) if not self.steps[slot] and attr),
        )


def plan_stream(fields: Sequence[Sequence[tuple[tuple[Step, ...], str | None]]], records: Sequence[str]) -> StreamPlan:
    """The plan for output fields given as their alternatives' (element steps, final attribute or None), the
    record tags as Clark names."""
    steps: list[tuple[Step, ...]] = []
    attributes: list[str | None] = []
    slots_per_field: list[tuple[int, ...]] = []
    for alternatives in fields:
        slots: list[int] = []
        for chain, attribute in alternatives:
            slots.append(len(steps))
            steps.append(tuple(chain))
            attributes.append(attribute)
        slots_per_field.append(tuple(slots))
    return StreamPlan(
        records=frozenset(records), steps=tuple(steps), attributes=tuple(attributes), fields=tuple(slots_per_field)
    )


# A node is what the paths expect below one open element, built from the states it carries (slot, index of the
# slot's next step): a dict from each child tag some state expects to its transition. Tags no state expects are
# absent: their subtrees are skipped.
State = tuple[int, int]
_Outcome = tuple[Any, tuple[Completion, ...]]
# (child node, completions, predicate attribute, predicate value, otherwise): with one predicate, ``otherwise`` is
# the outcome for a child that fails it; with several, ``otherwise(attrib)`` gives the outcome (attribute: None).
_Transition = tuple[Any, tuple[Completion, ...], str | None, str | None, Any]
_NOTHING: dict[str, _Transition] = {}  # the node below an element no path goes deeper into


class _Automaton:
    def __init__(self, plan: StreamPlan) -> None:
        self.steps = plan.steps
        self.attributes = plan.attributes
        self.nodes: dict[frozenset[State], dict[str, _Transition]] = {}
        self.root = self.node(frozenset((slot, 0) for slot, chain in enumerate(plan.steps) if chain))

    def node(self, states: frozenset[State]) -> dict[str, _Transition]:
        if not states:
            return _NOTHING
        node = self.nodes.get(states)
        if node is None:
            node = self.nodes[states] = {}
            for tag in sorted({self.steps[slot][index][0] for slot, index in states}):
                node[tag] = self.transition(states, tag)
        return node

    def advance(self, passing: Sequence[State]) -> _Outcome:
        """The child node and completions when a child element satisfies the steps of ``passing``."""
        following: set[State] = set()
        completions: list[Completion] = []
        for slot, index in passing:
            if index + 1 == len(self.steps[slot]):
                completions.append((slot, self.attributes[slot]))
            else:
                following.add((slot, index + 1))
        return self.node(frozenset(following)), tuple(completions)

    def transition(self, states: frozenset[State], tag: str) -> _Transition:
        candidates = sorted(state for state in states if self.steps[state[0]][state[1]][0] == tag)
        predicates = [(state, *self.steps[state[0]][state[1]][1:]) for state in candidates]
        predicates = [(state, attr, _sax_attribute(value)) for state, attr, value in predicates if attr is not None]
        if not predicates:
            return (*self.advance(candidates), None, None, None)
        if len(predicates) == 1:
            [(tested, attr, value)] = predicates
            matched = self.advance(candidates)
            unmatched = self.advance([state for state in candidates if state != tested])

            return (*matched, attr, value, unmatched)
        outcomes: dict[tuple[bool, ...], _Outcome] = {}

        def check(attrib: Any) -> _Outcome:
            outcome = tuple([attrib.get(attr) == value for _, attr, value in predicates])
            found = outcomes.get(outcome)
            if found is None:
                failing = {state for (state, _, _), ok in zip(predicates, outcome, strict=True) if not ok}
                found = outcomes[outcome] = self.advance([state for state in candidates if state not in failing])
            return found

        return None, (), None, None, check


def stream_records(binary: IO[bytes], plan: StreamPlan) -> Iterator[tuple[list[int], list[tuple[str | None, ...]]]]:
    """The records' numbers (in the order records end, from 1) and field values (in ``plan.fields`` order), a chunk
    of the feed's records at a time.

    Raises FeedError like the tree reader (DOCTYPE, not well-formed, empty) and Unstreamable on a feed it leaves to
    the tree reader; the caller has refused a DOCTYPE in the prolog already. ``data`` is ``text.append``: the text of an
    element is the slice of ``text`` between its start and its end."""
    automaton = _Automaton(plan)
    records = plan.records
    record_attributes = plan.record_attributes
    root = automaton.root
    blank: list[Any] = [None] * len(plan.steps)
    finish = _finisher(plan.fields)

    text: list[str] = []  # every text piece since the current record started
    open_nodes: list[dict[str, _Transition]] = []  # per open element of the current record: its node
    captures: list[tuple[int, int, int]] = []  # (depth, slot, index in text where the element's text starts)
    values: list[Any] = []
    numbers: list[int] = []
    rows: list[tuple[str | None, ...]] = []
    count = 0
    saw_element = False
    outer = 0  # open elements outside any record (the current record's ancestors)
    room = 0  # how many elements the current record may hold open before libxml2's depth limit

    def start(tag: str, attrib: Any) -> None:
        nonlocal saw_element, outer, room
        if open_nodes:
            if tag in records:
                raise Unstreamable(f"a {tag} record inside a record")
            if len(open_nodes) > room:
                raise Unstreamable("elements nested too deep")
            transition = open_nodes[-1].get(tag)
            if transition is None:
                open_nodes.append(_NOTHING)
                return
            child, completions, predicate, expected, otherwise = transition
            if predicate is not None:
                if attrib.get(predicate) != expected:
                    child, completions = otherwise
            elif otherwise is not None:
                child, completions = otherwise(attrib)
            for slot, attr in completions:
                if values[slot] is None:
                    if attr is None:
                        values[slot] = _PENDING
                        captures.append((len(open_nodes), slot, len(text)))
                    else:
                        value = attrib.get(attr)
                        values[slot] = _ABSENT if value is None else _attribute_value(value)
            open_nodes.append(child)
            return
        text.clear()  # nothing outside a record is read
        if outer >= MAX_DEPTH:
            raise Unstreamable("elements nested too deep")
        if tag not in records:
            saw_element = True
            outer += 1
            return
        room = MAX_DEPTH - 1 - outer
        values[:] = blank
        for slot, attr in record_attributes:
            value = attrib.get(attr)
            values[slot] = None if value is None else _attribute_value(value)
        open_nodes.append(root)

    def end(tag: str) -> None:
        nonlocal count, outer
        if not open_nodes:
            outer -= 1
        else:
            open_nodes.pop()
            depth = len(open_nodes)
            if depth:
                while captures and captures[-1][0] == depth:
                    _, slot, index = captures.pop()
                    values[slot] = "".join(text[index:]).strip()
            else:
                count += 1
                numbers.append(count)
                rows.append(finish(values))

    def doctype(*_args: Any) -> None:
        raise FeedError(DOCTYPE_REFUSED)

    target: Any = _Target(start, end, text.append, doctype)  # lxml-stubs want every optional callback
    parser = etree.XMLPullParser((), base_url=_filename_of(binary), target=target, **SAFE_PARSER_OPTIONS)
    try:
        while chunk := binary.read(CHUNK_BYTES):
            parser.feed(chunk)
            if sum(map(len, text)) > MAX_STREAMED_TEXT:
                raise Unstreamable("a record with too much text")
            if rows:
                yield numbers, rows
                numbers, rows = [], []
        parser.close()
    except etree.XMLSyntaxError as exc:
        if rows:
            yield numbers, rows
        raise FeedError(f"The XML is not well-formed (after {count} records): {first_error(exc)}") from None
    if rows:
        yield numbers, rows
    if count == 0 and not saw_element:
        raise FeedError("The XML document is empty")


class _Target:
    """The parser target: lxml looks its callbacks up once, as attributes."""

    def __init__(
        self,
        start: Callable[[str, Any], None],
        end: Callable[[str], object],
        data: Callable[[str], None],
        doctype: Callable[..., None],
    ) -> None:
        self.start = start
        self.end = end
        self.data = data
        self.doctype = doctype

    def close(self) -> None:
        return None


def _attribute_value(raw: str) -> str:
    """An attribute value as the tree holds it, stripped. Without entity substitution libxml2 hands SAX targets every
    ``&`` of an attribute value (whatever reference produced it: ``&amp;``, ``&#38;``, ``&#x26;``) as ``&#38;``, and
    no other ``&`` can be in it (an undeclared entity is a syntax error, a DOCTYPE refused)."""
    return (raw.replace("&#38;", "&") if "&" in raw else raw).strip()


def _sax_attribute(value: str | None) -> str | None:
    """A predicate's value as libxml2 hands attribute values to SAX targets (see ``_attribute_value``)."""
    return None if value is None else value.replace("&", "&#38;")


def _finisher(fields: tuple[tuple[int, ...], ...]) -> Callable[[list[Any]], tuple[str | None, ...]]:
    """values per slot → values per field: a slot nothing matched is None; of several alternatives the first
    non-empty value wins (None when none has one)."""
    if all(len(slots) == 1 for slots in fields) and [slots[0] for slots in fields] == list(range(len(fields))):

        def as_they_are(values: list[Any]) -> tuple[str | None, ...]:
            row = tuple(values)
            return tuple([None if value is _ABSENT else value for value in row]) if _ABSENT in row else row

        return as_they_are

    def finish(values: list[Any]) -> tuple[str | None, ...]:
        out: list[str | None] = []
        for slots in fields:
            if len(slots) == 1:
                value = values[slots[0]]
                out.append(None if value is _ABSENT else value)
                continue
            chosen = None
            for slot in slots:
                value = values[slot]
                if value:  # not None, _ABSENT or ""
                    chosen = value
                    break
            out.append(chosen)
        return tuple(out)

    return finish


def _filename_of(source: Any) -> str | None:
    """The name lxml's iterparse gives the parser for ``source`` (it appears in syntax error messages)."""
    try:
        return str(source.geturl())
    except Exception:
        pass
    for attribute in ("name", "filename"):
        name = getattr(source, attribute, None)
        if isinstance(name, str):
            return os.path.abspath(name)
    return None


def first_error(exc: etree.XMLSyntaxError) -> str:
    return str(exc).splitlines()[0][:300]
