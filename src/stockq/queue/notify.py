"""PostgreSQL LISTEN/NOTIFY: an idle worker wakes within milliseconds of a new job, not after --sleep.

The listener has a connection of its own: psycopg's notifies() holds its connection's lock while it waits, so
sharing the connection the worker queries with would serialise the two (pgqueuer's slowdown on psycopg).
"""

from __future__ import annotations

from collections.abc import Sequence

import psycopg
from sqlalchemy.engine import URL

CHANNEL = "stockq_jobs"


class Notifier:
    """Waits for the `stockq_jobs` notifications (payload: the queue) sent on every insert and release: by the
    statements that insert jobs (migration 0008) and by the release trigger."""

    def __init__(self, url: URL) -> None:
        self._conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        self.broken = False

    def _connect(self) -> psycopg.Connection[tuple[object, ...]]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self._conninfo, autocommit=True, connect_timeout=5)
            self._conn.execute(f"LISTEN {CHANNEL}")
        return self._conn

    def wait(self, timeout: float, queues: Sequence[str]) -> bool:
        """True when a job for one of ``queues`` was announced within ``timeout`` seconds."""
        try:
            conn = self._connect()
            self.broken = False
            for notify in conn.notifies(timeout=timeout):
                if notify.payload in queues:
                    return True
            return False
        except psycopg.Error:
            # The worker falls back to polling; the next wait reconnects.
            self.broken = True
            self.close()
            return False

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except psycopg.Error:
                pass
            self._conn = None
