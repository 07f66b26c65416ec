from __future__ import annotations

import json
import uuid

import pytest

from stockq import errors
from stockq.cli.work_output import format_runtime
from stockq.queue import payload
from stockq.queue.commands import parse_range
from stockq.queue.job import Job
from stockq.queue.worker import queue_list


@pytest.mark.parametrize(
    "seconds, text",
    [(0.00108, "1.08ms"), (0.51231, "512.31ms"), (1.234, "1s 234ms"), (123, "2m 3s"), (3725, "1h 2m")],
)
def test_runtime_is_formatted_like_laravel(seconds: float, text: str) -> None:
    assert format_runtime(seconds) == text


def test_range_parsing() -> None:
    assert parse_range("1-5") == (1, 5)
    assert parse_range("3-3") == (3, 3)
    for bad in ("5-1", "a-b", "1", "-1-3", "1-5-7"):
        with pytest.raises(errors.InvalidInput):
            parse_range(bad)


def test_queue_lists_are_trimmed_and_deduplicated() -> None:
    assert queue_list(" high , low,high,, ") == ("high", "low")
    assert queue_list("") == ()


def test_new_uuids_are_canonical_random_version_4_uuids() -> None:
    seen = {payload.new_uuid() for _ in range(2_000)}
    assert len(seen) == 2_000
    variants = set()
    for text in seen:
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
        variants.add(text[19])
    assert variants == set("89ab")


def test_a_jobs_template_follows_the_clock_and_the_delay() -> None:
    class Templated(Job):
        name = "tests.Templated"
        retry_until = 60

        def handle(self) -> None:
            pass

    first = json.loads(Templated(sku="A").encoded(delay=0, now=1_000)[1])
    later = json.loads(Templated(sku="B").encoded(delay=5, now=1_001)[1])
    assert (first["createdAt"], first["retryUntil"], first["delay"], first["data"]) == (
        1_000,
        1_060,
        None,
        {"sku": "A"},
    )
    assert (later["createdAt"], later["retryUntil"], later["delay"], later["data"]) == (1_001, 1_061, 5, {"sku": "B"})
