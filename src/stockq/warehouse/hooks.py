"""Listeners told which stock totals a posting changed, inside the posting's own transaction.

``on_stock_changed(callback)`` registers ``callback(conn, changed)`` where ``changed`` is a sorted list of
``(warehouse_id, product_id)`` pairs whose quantity moved. It is called after the totals are written and before the
transaction commits, so a listener can write rows in the same transaction (for example queue a stock sync with
``stockq.queue.api.dispatch(job, conn=conn)``): the posting and what the listener writes commit or roll back
together. A listener that raises aborts the posting. The ledger itself never imports the queue.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.engine import Connection

StockKey = tuple[int, int]
StockChangedListener = Callable[[Connection, list[StockKey]], None]

_listeners: list[StockChangedListener] = []


def on_stock_changed(callback: StockChangedListener) -> StockChangedListener:
    """Register ``callback(conn, changed)``; returns it, so it can be used as a decorator. Registering twice is a
    no-op."""
    if callback not in _listeners:
        _listeners.append(callback)
    return callback


def remove_listener(callback: StockChangedListener) -> None:
    """Unregister ``callback`` (no error when it was not registered)."""
    if callback in _listeners:
        _listeners.remove(callback)


def announce(conn: Connection, changed: list[StockKey]) -> None:
    """Call every listener with the changed (warehouse_id, product_id) pairs; nothing happens for an empty list."""
    if not changed:
        return
    for listener in list(_listeners):
        listener(conn, list(changed))
