"""stockq: a SQL-table job queue with artisan-style queue commands, and the warehouse jobs that run on it."""

from __future__ import annotations

from stockq.queue.api import dispatch, dispatch_many
from stockq.queue.job import Job
from stockq.queue.registry import Registry, default_registry

__version__ = "0.1.0"
__all__ = ["Job", "Registry", "__version__", "default_registry", "dispatch", "dispatch_many"]
