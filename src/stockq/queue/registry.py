"""Job classes by registered name. The worker looks names up here and never imports what a payload names."""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterable, Iterator
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from stockq import errors

if TYPE_CHECKING:
    from stockq.queue.job import Job

ENTRY_POINT_GROUP = "stockq.jobs"


class Registry:
    """A mapping of stable job names to job classes."""

    def __init__(self) -> None:
        self._jobs: dict[str, type[Job]] = {}
        self._lock = threading.Lock()

    def register(self, *classes: type[Job]) -> None:
        """Register classes under their ``name``; all or nothing, a clash with another class raises."""
        with self._lock:
            to_add: dict[str, type[Job]] = {}
            for cls in classes:
                name = cls.job_name()
                existing = self._jobs.get(name) or to_add.get(name)
                if existing is not None and _qualname(existing) != _qualname(cls):
                    raise errors.ConfigurationError(
                        f"Job name {name!r} is taken by {_qualname(existing)}; {_qualname(cls)} needs its own"
                    )
                to_add[name] = cls
            self._jobs.update(to_add)

    def get(self, name: str) -> type[Job]:
        try:
            return self._jobs[name]
        except KeyError:
            raise errors.UnknownJob(f"No job is registered under the name {name!r}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._jobs

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._jobs))

    def __len__(self) -> int:
        return len(self._jobs)


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


default_registry = Registry()


def load_job_modules(modules: Iterable[str], *, include_entry_points: bool = True) -> None:
    """Import the modules that define job classes (their definition registers them), then the entry points of the
    ``stockq.jobs`` group. Names only come from configuration and installed packages, never from payloads."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise errors.ConfigurationError(f"Cannot import job module {module!r} (STOCKQ_JOBS): {exc}") from None
    if include_entry_points:
        for entry in entry_points(group=ENTRY_POINT_GROUP):
            try:
                entry.load()
            except Exception as exc:
                raise errors.ConfigurationError(
                    f"Cannot load job entry point {entry.name!r} ({entry.value}): {exc}"
                ) from None
