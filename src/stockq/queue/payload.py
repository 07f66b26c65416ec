"""The JSON envelope a job travels in (Laravel's payload keys), built at dispatch and read back in the worker."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from typing import Any

from stockq import errors

JSONDict = dict[str, Any]


@dataclass(frozen=True, kw_only=True, slots=True)
class Envelope:
    """A decoded payload. ``job`` is the registered name; ``data`` the job's keyword arguments."""

    uuid: str
    job: str
    display_name: str
    data: JSONDict
    max_tries: int | None = None
    max_exceptions: int | None = None
    fail_on_timeout: bool = False
    backoff: tuple[int, ...] | None = None
    timeout: int | None = None
    retry_until: int | None = None
    created_at: int | None = None
    delay: int | None = None

    def encode(self) -> str:
        return encode_json(
            {
                "uuid": self.uuid,
                "displayName": self.display_name,
                "job": self.job,
                "maxTries": self.max_tries,
                "maxExceptions": self.max_exceptions,
                "failOnTimeout": self.fail_on_timeout,
                "backoff": ",".join(str(b) for b in self.backoff) if self.backoff is not None else None,
                "timeout": self.timeout,
                "retryUntil": self.retry_until,
                "data": self.data,
                "createdAt": self.created_at,
                "delay": self.delay,
            }
        )


def new_uuid() -> str:
    """A random (version 4) UUID in its canonical text form; what ``str(uuid.uuid4())`` returns, without building
    a UUID object (a third of a bulk dispatch's per-job encoding time went there)."""
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_RFC_4122_VARIANT[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


# The variant nibble of an RFC 4122 UUID is 10xx in binary: 8, 9, a or b.
_RFC_4122_VARIANT = "89ab"


def encode_json(value: Any) -> str:
    """Compact JSON that refuses anything JSON cannot carry faithfully (objects, NaN, infinities)."""
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise errors.PayloadNotSerializable(f"The job's arguments cannot be stored as JSON: {exc}") from None


def check_serializable(data: JSONDict) -> None:
    """Raise PayloadNotSerializable naming the first argument that JSON would not carry back unchanged."""
    for key, value in data.items():
        problem = _json_problem(value)
        if problem:
            raise errors.PayloadNotSerializable(f"Job argument {key!r} cannot be stored as JSON: {problem}")


def _json_problem(value: Any) -> str | None:
    if value is None or isinstance(value, bool | int | str):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{value} is not a finite number"
    if isinstance(value, list | tuple):
        for item in value:
            problem = _json_problem(item)
            if problem:
                return problem
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"dictionary key {key!r} is not a string"
            problem = _json_problem(item)
            if problem:
                return problem
        return None
    return f"a {type(value).__name__} is not JSON"


def decode(raw: str) -> Envelope:
    """Parse a stored payload; InvalidPayload says what is wrong with it."""
    try:
        doc = json.loads(raw)
    except (TypeError, ValueError) as exc:
        raise errors.InvalidPayload(f"The payload is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise errors.InvalidPayload("The payload is not a JSON object")
    job = doc.get("job")
    if not isinstance(job, str) or not job:
        raise errors.InvalidPayload("The payload names no job")
    data = doc.get("data", {})
    if not isinstance(data, dict):
        raise errors.InvalidPayload("The payload's data is not a JSON object")
    try:
        return Envelope(
            uuid=str(doc.get("uuid") or new_uuid()),
            job=job,
            display_name=str(doc.get("displayName") or job),
            data=data,
            max_tries=_optional_int(doc.get("maxTries")),
            max_exceptions=_optional_int(doc.get("maxExceptions")),
            fail_on_timeout=bool(doc.get("failOnTimeout", False)),
            backoff=parse_backoff(doc.get("backoff")),
            timeout=_optional_int(doc.get("timeout")),
            retry_until=_optional_int(doc.get("retryUntil")),
            created_at=_optional_int(doc.get("createdAt")),
            delay=_optional_int(doc.get("delay")),
        )
    except (TypeError, ValueError) as exc:
        raise errors.InvalidPayload(f"The payload has an invalid field: {exc}") from None


def display_name_of(raw: str) -> str:
    """The job's name for people, from a stored payload, even one that does not decode as an envelope."""
    try:
        doc = json.loads(raw)
    except (TypeError, ValueError):
        return "(invalid payload)"
    if not isinstance(doc, dict):
        return "(invalid payload)"
    return str(doc.get("displayName") or doc.get("job") or "(unknown job)")


def _optional_int(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(f"{value!r} is not a number")
    return int(value)


def parse_backoff(value: Any) -> tuple[int, ...] | None:
    """Backoff as seconds: an int, a list of ints, or Laravel's comma string ``"1,5,10"``."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise TypeError("backoff is not a number")
    if isinstance(value, int):
        items: list[Any] = [value]
    elif isinstance(value, str):
        items = [part.strip() for part in value.split(",")]
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        raise TypeError(f"backoff {value!r} is not a number or a list of numbers")
    seconds = tuple(int(item) for item in items)
    if any(s < 0 for s in seconds):
        raise ValueError("backoff seconds cannot be negative")
    return seconds or None


def backoff_for(backoff: tuple[int, ...] | None, attempts: int) -> int:
    """The delay before the next attempt: ``backoff[attempts - 1]``, the last value repeating."""
    if not backoff:
        return 0
    return backoff[min(max(attempts, 1), len(backoff)) - 1]
