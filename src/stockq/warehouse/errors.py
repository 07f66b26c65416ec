"""Errors of the warehouse ledger (part of the ``stockq.errors.StockqError`` tree)."""

from __future__ import annotations

from stockq import errors


class InsufficientStock(errors.StockqError):
    """The issue would take stock below zero in a warehouse that does not allow negative stock."""


class InvalidDocumentState(errors.InvalidInput):
    """The document is not in a state that allows this operation."""
