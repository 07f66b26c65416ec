"""huey with ``SqliteHuey`` (WAL, SQLite's default synchronous=FULL): a no-op task, one consumer process with 1
worker thread, polling every 10 ms (``initial_delay=max_delay=0.01``; the default backs off to 10 s when idle,
which would time the back-off rather than the queue), no periodic scheduler.

Dispatch: calling the task enqueues it (one committed INSERT each). huey has no batch enqueue, so "bulk" is a loop
of enqueues, as a huey user would write it. huey deletes a task from its ``task`` table when the consumer dequeues
it (before running it: a crash then loses that task), so the queue is drained when that table is empty; the last
no-op runs microseconds later. For the drain, the jobs are inserted in one transaction (``enqueue_at_once``), so
all of them appear at once as with the other systems' bulk dispatch.

    python -m peers.huey_peer worker --file /tmp/…/huey.db
"""

from __future__ import annotations

import argparse
import functools
import sqlite3
import tempfile
from collections.abc import Callable
from pathlib import Path

from huey import SqliteHuey

from peers import Measurement, Sizes, measure_drain, spawn_worker, timed_rate


@functools.cache
def version() -> str:
    from importlib.metadata import version as v

    return v("huey")


def make_huey(filename: str) -> tuple[SqliteHuey, Callable[[], object]]:
    huey = SqliteHuey(name="bench", filename=filename)

    @huey.task(name="noop")
    def noop() -> None:
        pass

    return huey, noop


def enqueue_at_once(huey: SqliteHuey, task: Callable[[], object], k: int) -> None:
    """k tasks made visible in one transaction (huey's own message format and table), so that the drain clock is
    not started while the consumer already runs jobs of a slow enqueue loop."""
    rows = [(huey.storage.name, huey.serialize_task(task.s()), 0) for _ in range(k)]  # type: ignore[attr-defined]
    with huey.storage.db(commit=True) as cursor:
        cursor.executemany("INSERT INTO task (queue, data, priority) VALUES (?, ?, ?)", rows)


def single(n: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        huey, noop = make_huey(str(Path(tmp) / "huey.db"))
        noop()
        rate = timed_rate(n, lambda: [noop() for _ in range(n)] and None)
        huey.storage.close()
        return rate


def bulk(n: int) -> float:
    # No batch API: the same loop as single dispatch (measured separately, with the bulk size).
    return single(n)


def drain(n: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        filename = str(Path(tmp) / "huey.db")
        huey, noop = make_huey(filename)
        check = sqlite3.connect(filename, isolation_level=None)
        try:
            return measure_drain(
                name="huey",
                start_worker=lambda: spawn_worker("huey_peer", "--file", filename),
                dispatch_bulk=lambda k: enqueue_at_once(huey, noop, k),
                pending=lambda: check.execute("SELECT 1 FROM task LIMIT 1").fetchone() is not None,
                n=n,
            )
        finally:
            check.close()
            huey.storage.close()


def measurements(sizes: Sizes) -> list[Measurement]:
    """Single and bulk dispatch (a loop: huey has no batch API), drain with one consumer thread."""
    system = f"huey {version()}, SQLite"
    return [
        Measurement(system, "single", lambda: single(sizes.single)),
        Measurement(system, "bulk", lambda: bulk(sizes.bulk)),
        Measurement(system, "drain:1 thread", lambda: drain(sizes.drain)),
    ]


def _worker(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--file", required=True)
    args = parser.parse_args(argv)
    # Through the importable module, not __main__: huey names tasks after the module that defines them.
    from peers import huey_peer

    huey, _ = huey_peer.make_huey(args.file)
    consumer = huey.create_consumer(
        workers=1, worker_type="thread", periodic=False, initial_delay=0.01, max_delay=0.01, backoff=1.0
    )
    consumer.run()


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] == ["worker"]:
        _worker(sys.argv[2:])
