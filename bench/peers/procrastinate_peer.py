"""procrastinate: an async no-op task, its worker with ``concurrency`` 1 and 10 (its documented throughput knob).

Schema: ``app.schema_manager.apply_schema()``. Dispatch: ``task.defer()`` (single), ``task.batch_defer()`` (bulk,
one INSERT). Worker: ``app.run_worker(concurrency=N)`` with LISTEN/NOTIFY (default). Jobs stay in
``procrastinate_jobs`` with status ``succeeded`` (default delete_jobs=never), so the queue is drained when no row is
``todo`` or ``doing``.

    python -m peers.procrastinate_peer worker --url postgresql://… --concurrency 10
"""

from __future__ import annotations

import argparse
import functools
import os

import procrastinate

from peers import (
    Measurement,
    Sizes,
    fresh_pg_database,
    measure_drain,
    pg_table_has_rows,
    spawn_worker,
    timed_rate,
)

CONCURRENCIES = (1, 10)
PENDING = "SELECT 1 FROM procrastinate_jobs WHERE status IN ('todo', 'doing') LIMIT 1"


def make_app(url: str) -> procrastinate.App:
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=url))

    @app.task(name="noop", queue="default")
    async def noop() -> None:
        pass

    return app


def _task(app: procrastinate.App) -> procrastinate.tasks.Task:  # type: ignore[type-arg]
    return app.tasks["noop"]


@functools.cache
def version() -> str:
    from importlib.metadata import version as v

    return v("procrastinate")


def _with_app(url: str) -> procrastinate.App:
    app = make_app(url)
    app.open()
    return app


def install(url: str) -> None:
    app = _with_app(url)
    try:
        app.schema_manager.apply_schema()
    finally:
        app.close()


def single(admin: str, n: int) -> float:
    with fresh_pg_database(admin, "peer_procrastinate") as url:
        install(url)
        app = _with_app(url)
        try:
            task = _task(app)
            task.defer()  # connection pool warm
            return timed_rate(n, lambda: [task.defer() for _ in range(n)] and None)
        finally:
            app.close()


def bulk(admin: str, n: int) -> float:
    with fresh_pg_database(admin, "peer_procrastinate") as url:
        install(url)
        app = _with_app(url)
        try:
            task = _task(app)
            task.defer()
            kwargs: list[dict[str, object]] = [{} for _ in range(n)]
            return timed_rate(n, lambda: task.batch_defer(*kwargs) and None)
        finally:
            app.close()


def drain(admin: str, n: int, concurrency: int) -> float:
    with fresh_pg_database(admin, "peer_procrastinate") as url:
        install(url)
        app = _with_app(url)
        pending = pg_table_has_rows(url, PENDING)
        try:
            task = _task(app)
            return measure_drain(
                name="procrastinate",
                start_worker=lambda: spawn_worker(
                    "procrastinate_peer", "--url", url, "--concurrency", str(concurrency)
                ),
                dispatch_bulk=lambda k: task.batch_defer(*[{} for _ in range(k)]) and None,
                pending=pending,
                n=n,
            )
        finally:
            pending.close()  # type: ignore[attr-defined]
            app.close()


def measurements(admin: str, sizes: Sizes) -> list[Measurement]:
    """Single and bulk dispatch, drain at concurrency 1 and 10."""
    system = f"procrastinate {version()}"
    return [
        Measurement(system, "single", lambda: single(admin, sizes.single)),
        Measurement(system, "bulk", lambda: bulk(admin, sizes.bulk)),
        *(
            Measurement(system, f"drain:concurrency {c}", lambda c=c: drain(admin, sizes.drain, c))  # type: ignore[misc]
            for c in CONCURRENCIES
        ),
    ]


def _worker(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--concurrency", type=int, default=1)
    args = parser.parse_args(argv)
    app = make_app(args.url)
    app.run_worker(concurrency=args.concurrency, wait=True, install_signal_handlers=True)


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] == ["worker"]:
        os.environ.setdefault("PYTHONUNBUFFERED", "1")
        _worker(sys.argv[2:])
