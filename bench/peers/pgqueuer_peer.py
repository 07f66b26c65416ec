"""pgqueuer on psycopg (async, autocommit) and on asyncpg: a no-op entrypoint, ``QueueManager.run(batch_size=…)``
with batch 10 (the default) and 100 (its documented throughput knob).

Schema: ``Queries(driver).install()`` (what ``pgq install`` runs). Dispatch: ``Queries.enqueue("noop", None)``
(single) and ``Queries.enqueue([...], [...], [...])`` (bulk, one statement). pgqueuer deletes a job from its
``pgqueuer`` table when it completes (logging it to ``pgqueuer_log``), so the queue is drained when that table is
empty.

    python -m peers.pgqueuer_peer worker --url postgresql://… --driver asyncpg --batch 100
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import signal
from collections.abc import Awaitable, Callable
from typing import Any

from peers import (
    Measurement,
    Sizes,
    fresh_pg_database,
    measure_drain,
    pg_table_has_rows,
    spawn_worker,
)

DRIVERS = ("psycopg", "asyncpg")
BATCHES = (10, 100)
PENDING = "SELECT 1 FROM pgqueuer LIMIT 1"


@functools.cache
def version() -> str:
    from importlib.metadata import version as v

    return v("pgqueuer")


async def _connect(url: str, driver: str) -> tuple[Any, Callable[[], Awaitable[None]]]:
    """A pgqueuer driver over one connection, and how to close it."""
    if driver == "asyncpg":
        import asyncpg
        from pgqueuer.db import AsyncpgDriver

        conn = await asyncpg.connect(url)
        return AsyncpgDriver(conn), conn.close
    import psycopg
    from pgqueuer.db import PsycopgDriver

    aconn = await psycopg.AsyncConnection.connect(url, autocommit=True)
    return PsycopgDriver(aconn), aconn.close


async def _with_queries(url: str, driver: str, work: Callable[[Any], Awaitable[float]]) -> float:
    from pgqueuer.queries import Queries

    drv, close = await _connect(url, driver)
    try:
        return await work(Queries(drv))
    finally:
        await close()


def install(url: str) -> None:
    async def run(queries: Any) -> float:
        await queries.install()
        return 0.0

    asyncio.run(_with_queries(url, "psycopg", run))


def _rate(n: int, t0: float, t1: float) -> float:
    return n / (t1 - t0)


def single(admin: str, driver: str, n: int) -> float:
    async def run(queries: Any) -> float:
        loop = asyncio.get_running_loop()
        await queries.enqueue("noop", None)
        t0 = loop.time()
        for _ in range(n):
            await queries.enqueue("noop", None)
        return _rate(n, t0, loop.time())

    with fresh_pg_database(admin, "peer_pgqueuer") as url:
        install(url)
        return asyncio.run(_with_queries(url, driver, run))


def _bulk_enqueue(queries: Any, n: int) -> Awaitable[Any]:
    return queries.enqueue(["noop"] * n, [None] * n, [0] * n)


def bulk(admin: str, driver: str, n: int) -> float:
    async def run(queries: Any) -> float:
        loop = asyncio.get_running_loop()
        await queries.enqueue("noop", None)
        t0 = loop.time()
        await _bulk_enqueue(queries, n)
        return _rate(n, t0, loop.time())

    with fresh_pg_database(admin, "peer_pgqueuer") as url:
        install(url)
        return asyncio.run(_with_queries(url, driver, run))


def drain(admin: str, driver: str, n: int, batch: int) -> float:
    with fresh_pg_database(admin, "peer_pgqueuer") as url:
        install(url)
        pending = pg_table_has_rows(url, PENDING)

        def dispatch(k: int) -> None:
            async def run(queries: Any) -> float:
                await _bulk_enqueue(queries, k)
                return 0.0

            asyncio.run(_with_queries(url, driver, run))

        try:
            return measure_drain(
                name=f"pgqueuer ({driver})",
                start_worker=lambda: spawn_worker(
                    "pgqueuer_peer", "--url", url, "--driver", driver, "--batch", str(batch)
                ),
                dispatch_bulk=dispatch,
                pending=pending,
                n=n,
            )
        finally:
            pending.close()  # type: ignore[attr-defined]


def measurements(admin: str, sizes: Sizes) -> list[Measurement]:
    """Per driver: single and bulk dispatch, drain at batch 10 and 100."""
    found: list[Measurement] = []
    for driver in DRIVERS:
        system = f"pgqueuer {version()}, {driver}"
        found += [
            Measurement(system, "single", lambda d=driver: single(admin, d, sizes.single)),  # type: ignore[misc]
            Measurement(system, "bulk", lambda d=driver: bulk(admin, d, sizes.bulk)),  # type: ignore[misc]
        ]
        found += [
            Measurement(system, f"drain:batch {b}", lambda d=driver, b=b: drain(admin, d, sizes.drain, b))  # type: ignore[misc]
            for b in BATCHES
        ]
    return found


async def _work(url: str, driver: str, batch: int) -> None:
    from pgqueuer.models import Job
    from pgqueuer.qm import QueueManager
    from pgqueuer.queries import Queries

    drv, close = await _connect(url, driver)
    qm = QueueManager(Queries(drv))

    @qm.entrypoint("noop")
    async def noop(job: Job) -> None:
        pass

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, qm.shutdown.set)
    try:
        await qm.run(batch_size=batch)
    finally:
        await close()


def _worker(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--driver", choices=DRIVERS, default="asyncpg")
    parser.add_argument("--batch", type=int, default=10)
    args = parser.parse_args(argv)
    asyncio.run(_work(args.url, args.driver, args.batch))


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] == ["worker"]:
        _worker(sys.argv[2:])
