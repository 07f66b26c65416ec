from __future__ import annotations

import pytest

from stockq import errors
from stockq.cli.work_output import format_runtime
from stockq.queue.commands import parse_range
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
