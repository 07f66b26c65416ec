"""Imports every module that defines tables, so that the metadata is complete (for Alembic and tests)."""

from __future__ import annotations

from stockq.imports import models as imports_models  # noqa: F401
from stockq.integrations import models as integrations_models  # noqa: F401
from stockq.queue import models as queue_models
from stockq.warehouse import models as warehouse_models  # noqa: F401

__all__ = ["queue_models"]
