"""The queue commands as library functions (the CLI parses, calls one of these, and prints)."""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass

from stockq import errors
from stockq.queue.repository import RESTART_SIGNAL, FailedJob, JobRepository, QueueCounts, WorkerInfo

_RANGE = re.compile(r"^(\d+)-(\d+)$")


def parse_range(text: str) -> tuple[int, int]:
    """``"1-5"`` → (1, 5); anything else, or a range that runs backwards, is an InvalidInput."""
    match = _RANGE.match(text.strip())
    if not match:
        raise errors.InvalidInput(f"Invalid range [{text}]: use FIRST-LAST with whole numbers, e.g. 1-5")
    first, last = int(match.group(1)), int(match.group(2))
    if first > last:
        raise errors.InvalidInput(f"Invalid range [{text}]: {first} is greater than {last}")
    return first, last


@dataclass(frozen=True, slots=True)
class RetryOutcome:
    ident: str
    queue: str | None
    seconds: float

    @property
    def found(self) -> bool:
        return self.queue is not None


def retry_targets(
    repo: JobRepository, ids: Sequence[str], *, queue: str | None, ranges: Sequence[str]
) -> tuple[list[str], list[str]]:
    """Which failed jobs `queue retry` acts on: (uuids to retry, identifiers that match nothing)."""
    parsed_ranges = [parse_range(r) for r in ranges]
    uuids: list[str]
    if list(ids) == ["all"]:
        return [job.uuid for job in repo.failed()], []
    if queue is not None:
        uuids = [job.uuid for job in repo.failed(queue=queue)]
        if not uuids:
            raise errors.NotFound(f"Unable to find failed jobs for queue [{queue}].")
        return uuids, []
    uuids = []
    missing: list[str] = []
    for ident in ids:
        if ident and ident != "0" and ident not in uuids:
            uuids.append(ident)
    for first, last in parsed_ranges:
        found = dict(repo.failed_uuids_in_range(first, last))
        for number in range(first, last + 1):
            if number in found:
                if found[number] not in uuids:
                    uuids.append(found[number])
            else:
                missing.append(str(number))
    return uuids, missing


def retry(repo: JobRepository, uuids: Sequence[str]) -> list[RetryOutcome]:
    """Push each failed job back onto its queue; each one atomically (delete from failed_jobs + insert)."""
    outcomes = []
    for uuid in uuids:
        t0 = time.perf_counter()
        queue = repo.retry(uuid)
        outcomes.append(RetryOutcome(ident=uuid, queue=queue, seconds=time.perf_counter() - t0))
    return outcomes


def restart(repo: JobRepository) -> str:
    """Broadcast the restart signal: every worker, on every host, exits after its current job."""
    value = f"{time.time():.6f}"
    repo.set_signal(RESTART_SIGNAL, value)
    return value


@dataclass(frozen=True, slots=True)
class MonitoredQueue:
    connection: str
    counts: QueueCounts
    max_size: int
    now: int

    @property
    def alert(self) -> bool:
        return self.counts.size >= self.max_size

    @property
    def oldest_pending_age(self) -> int | None:
        at = self.counts.oldest_pending_at
        return None if at is None else max(0, self.now - at)

    def as_json(self) -> dict[str, object]:
        return {
            "connection": self.connection,
            "queue": self.counts.queue,
            "size": self.counts.size,
            "pending": self.counts.pending,
            "delayed": self.counts.delayed,
            "reserved": self.counts.reserved,
            "oldest_pending": self.oldest_pending_age,
            "status": "ALERT" if self.alert else "OK",
        }


def monitor(repo: JobRepository, queues: Sequence[str], *, max_size: int) -> list[MonitoredQueue]:
    names: list[str] = []
    for item in queues:
        name = item.split(":", 1)[1] if ":" in item else item
        if name.strip() and name.strip() not in names:
            names.append(name.strip())
    if not names:
        raise errors.InvalidInput("Name at least one queue, e.g. `stockq queue monitor import,integrations`")
    now = repo.db_time()
    return [
        MonitoredQueue(connection=repo.connection_name, counts=c, max_size=max_size, now=now)
        for c in repo.counts(names)
    ]


@dataclass(frozen=True, slots=True)
class QueueStatus:
    queues: list[QueueCounts]
    failed: dict[str, int]
    workers: list[WorkerInfo]
    now: int
    lease_seconds: int

    def worker_alive(self, worker: WorkerInfo) -> bool:
        return self.now - worker.heartbeat_at <= self.lease_seconds

    def as_json(self) -> dict[str, object]:
        names = sorted({c.queue for c in self.queues} | set(self.failed))
        by_name = {c.queue: c for c in self.queues}
        return {
            "queues": [
                {
                    "queue": name,
                    "pending": by_name[name].pending if name in by_name else 0,
                    "delayed": by_name[name].delayed if name in by_name else 0,
                    "reserved": by_name[name].reserved if name in by_name else 0,
                    "failed": self.failed.get(name, 0),
                }
                for name in names
            ],
            "failed_total": sum(self.failed.values()),
            "workers": [
                {
                    "id": w.id, "name": w.name, "host": w.hostname, "pid": w.pid, "queues": w.queues,
                    "status": w.status, "current_job": w.current_job, "jobs_processed": w.jobs_processed,
                    "heartbeat_age": self.now - w.heartbeat_at, "alive": self.worker_alive(w),
                }
                for w in self.workers
            ],
        }  # fmt: skip


def status(repo: JobRepository) -> QueueStatus:
    return QueueStatus(
        queues=repo.counts(),
        failed=repo.failed_counts(),
        workers=repo.workers(),
        now=repo.db_time(),
        lease_seconds=repo.lease_seconds,
    )


def failed_at_local(job: FailedJob) -> str:
    """failed_at (stored in UTC) in the machine's local time, as `Y-m-d H:i:s`."""
    return job.failed_at.replace(tzinfo=dt.UTC).astimezone().strftime("%Y-%m-%d %H:%M:%S")
