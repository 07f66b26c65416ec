"""Streaming feed parsers: CSV (``feeds.csv``) and XML (``feeds.xml``), and the built-in XML presets.

A parser yields, in file order, either a ``RawRecord`` (the mapped product fields as text, not yet validated) or a
``BadRecord`` (a record that cannot be read, e.g. a ragged CSV row); it raises ``FeedError`` when the whole feed is
unusable (not well-formed, truncated, a DOCTYPE, an undecodable byte), so that the run applies nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from stockq import errors

PRODUCT_FIELDS = ("sku", "ean", "name", "unit", "price", "quantity")


class FeedError(errors.InvalidInput):
    """The feed cannot be read as a whole; the run fails and applies nothing."""

    exit_code = 1


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One record's mapped fields, as text (None: absent in the feed)."""

    number: int
    fields: dict[str, str | None]


@dataclass(frozen=True, slots=True)
class BadRecord:
    """A record rejected while parsing; ``number`` is the CSV line or the XML record's ordinal."""

    number: int
    reason: str


@dataclass(slots=True)
class RecordBatch:
    """Consecutive records of a feed, for bulk loading: ``rows[i]`` holds the values of ``fields`` (the mapped
    product fields) of record ``numbers[i]``; ``rejected`` are the batch's unreadable records."""

    fields: tuple[str, ...]
    numbers: Sequence[int]
    rows: list[tuple[str | None, ...]]
    rejected: list[BadRecord] = field(default_factory=list)
