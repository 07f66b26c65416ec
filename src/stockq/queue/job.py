"""The public job contract: subclass Job, implement handle(), dispatch instances."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Sequence
from typing import Any, ClassVar

from stockq import errors
from stockq.queue import payload
from stockq.queue.registry import default_registry

# Attribute names the base class uses; a payload key may not shadow them.
_RESERVED = frozenset(
    {
        "name", "queue", "tries", "timeout", "backoff", "max_exceptions", "retry_until", "fail_on_timeout",
        "abstract", "handle", "failed", "dispatch", "release", "fail", "attempts", "job_uuid", "payload_data",
        "job_name", "envelope",
    }
)  # fmt: skip


# Payload keys that depend only on the job's class, in Laravel's order (between "uuid" and "retryUntil").
_FIXED = ("displayName", "job", "maxTries", "maxExceptions", "failOnTimeout", "backoff", "timeout")
# Per job class: the (created, delay) it was last rendered for and the payload's text around "data".
_templates: dict[type, tuple[int, int, str, str]] = {}


def _template(job: Job, created: int, delay: int) -> tuple[str, str]:
    """The payload text of a job of ``job``'s class after the uuid up to "data": and after the data, for jobs
    created at ``created`` with ``delay``: the keys in Laravel's order, rendered by the envelope itself."""
    cls = type(job)
    cached = _templates.get(cls)
    if cached is not None and cached[0] == created and cached[1] == delay:
        return cached[2], cached[3]
    document = json.loads(job.envelope(delay=delay, now=created).encode())
    fixed = {key: document[key] for key in (*_FIXED, "retryUntil")}
    head = payload.encode_json(fixed)[1:-1] + ',"data":'
    tail = "," + payload.encode_json({"createdAt": document["createdAt"], "delay": document["delay"]})[1:]
    _templates[cls] = (created, delay, head, tail)
    return head, tail


class Job:
    """A unit of work run by a worker.

    Keyword arguments given to the constructor are the job's payload: they are kept as attributes and stored as
    JSON. Class attributes tune how the worker runs it::

        class ResizeImage(stockq.Job):
            name = "media.ResizeImage"   # stable name; defaults to the dotted path of the class
            queue = "default"
            tries = 3                    # None: the worker's --tries
            timeout = 120                # None: the worker's --timeout
            backoff = [10, 60]           # seconds before retry 1, 2, 3… (the last repeats)

            def handle(self) -> None:
                resize(self.path, self.width)

    Subclasses register themselves under their name when they are defined (``abstract = True`` opts out).
    """

    name: ClassVar[str | None] = None
    queue: ClassVar[str] = "default"
    tries: ClassVar[int | None] = None
    timeout: ClassVar[int | None] = None
    backoff: ClassVar[int | Sequence[int] | None] = None
    max_exceptions: ClassVar[int | None] = None
    # Seconds after dispatch (or a timedelta) after which the job is no longer retried.
    retry_until: ClassVar[int | dt.timedelta | None] = None
    fail_on_timeout: ClassVar[bool] = False
    abstract: ClassVar[bool] = False

    payload_data: dict[str, Any]
    attempts: int
    job_uuid: str | None
    _released_with: int | None
    _failed_with: BaseException | None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__dict__.get("abstract", False):
            default_registry.register(cls)

    def __new__(cls, *args: Any, **kwargs: Any) -> Job:
        if args:
            raise TypeError(f"{cls.__name__} takes keyword arguments only (they are its JSON payload)")
        clash = sorted(_RESERVED & kwargs.keys())
        if clash:
            raise TypeError(f"{cls.__name__}: argument name(s) {', '.join(clash)} are reserved by stockq.Job")
        instance = super().__new__(cls)
        instance.payload_data = dict(kwargs)
        instance.attempts = 0
        instance.job_uuid = None
        instance._released_with = None
        instance._failed_with = None
        return instance

    def __init__(self, **kwargs: Any) -> None:
        for key, value in kwargs.items():
            setattr(self, key, value)

    @classmethod
    def job_name(cls) -> str:
        return cls.__dict__.get("name") or f"{cls.__module__}.{cls.__qualname__}"

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.payload_data.items())
        return f"{type(self).__name__}({args})"

    def handle(self) -> None:
        """Do the work. An exception releases the job for another attempt or fails it."""
        raise NotImplementedError(f"{type(self).__name__}.handle() is not implemented")

    def failed(self, exc: BaseException) -> None:
        """Called once when the job has failed for good (after its row moved to failed_jobs)."""

    def release(self, delay: int = 0) -> None:
        """From handle(): put the job back on its queue for another attempt after ``delay`` seconds."""
        self._released_with = max(0, int(delay))

    def fail(self, exc: BaseException | None = None) -> None:
        """From handle(): fail the job for good, without further attempts."""
        self._failed_with = exc or errors.JobError(f"{self.job_name()} was failed by its handler")

    def envelope(self, *, delay: int | None = None, now: float | None = None) -> payload.Envelope:
        """The payload this job is stored as; raises PayloadNotSerializable for arguments JSON cannot carry."""
        payload.check_serializable(self.payload_data)
        created = int(now if now is not None else time.time())
        retry_until = type(self).retry_until
        if isinstance(retry_until, dt.timedelta):
            retry_until = int(retry_until.total_seconds())
        return payload.Envelope(
            uuid=payload.new_uuid(),
            job=self.job_name(),
            display_name=self.job_name(),
            data=self.payload_data,
            max_tries=self.tries,
            max_exceptions=self.max_exceptions,
            fail_on_timeout=self.fail_on_timeout,
            backoff=payload.parse_backoff(list(self.backoff) if isinstance(self.backoff, Sequence) else self.backoff),
            timeout=self.timeout,
            retry_until=created + retry_until if retry_until is not None else None,
            created_at=created,
            delay=delay or None,
        )

    def encoded(self, *, delay: int = 0, now: float | None = None) -> tuple[str, str]:
        """(uuid, payload JSON) for a new dispatch: the same document as ``envelope().encode()``. Everything but
        the uuid and the data is the same for every job of a class dispatched in the same second with the same
        delay, so it is rendered once and reused (bulk dispatch of thousands spends its time here)."""
        data = self.payload_data
        payload.check_serializable(data)
        head, tail = _template(self, int(now if now is not None else time.time()), delay)
        uuid = payload.new_uuid()
        return uuid, f'{{"uuid":"{uuid}",{head}{payload.encode_json(data) if data else "{}"}{tail}'

    def dispatch(self, *, queue: str | None = None, delay: int = 0, database_url: str | None = None) -> str:
        """Queue this job (on ``queue`` or the class's queue) and return its uuid."""
        from stockq.queue import api

        return api.dispatch(self, queue=queue, delay=delay, database_url=database_url)
