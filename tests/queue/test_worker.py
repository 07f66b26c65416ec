from __future__ import annotations

import threading
import time
from collections.abc import Callable

import sqlalchemy as sa

from stockq.queue import api
from stockq.queue.models import jobs
from stockq.queue.registry import default_registry
from stockq.queue.repository import JobRepository, NewJob
from stockq.queue.worker import EXIT_MEMORY, JobEvent, JobStatus, StopReason, Worker, WorkerOptions
from tests.support import testjobs
from tests.support.testjobs import Explode, FailSelf, Hog, LeakKey, Noop, Record, ReleaseSelf, SleepPython

RunWorker = Callable[..., tuple[int, list, Worker]]


def statuses(events: list) -> list[tuple[str, str]]:
    return [(e.name, e.status.value) for e in events]


def test_worker_runs_jobs_and_stops_when_empty(repo: JobRepository, run_worker: RunWorker, db_url: str) -> None:
    api.dispatch_many([Record(key=f"k{i}") for i in range(5)])
    code, events, worker = run_worker()
    assert code == 0 and worker.stop_reason is StopReason.EMPTY
    assert [r.key for r in testjobs.runs(db_url)] == [f"k{i}" for i in range(5)]
    assert statuses(events).count(("tests.Record", "success")) == 5
    assert repo.counts() == []


def test_exception_releases_with_backoff_then_fails_and_calls_the_hook(
    repo: JobRepository, run_worker: RunWorker
) -> None:
    testjobs.hook_calls.clear()
    uuid = Explode(tag="x").dispatch()
    code, events, _ = run_worker()
    assert code == 0
    assert [e.status for e in events if e.status is not JobStatus.STARTING] == [
        JobStatus.RELEASED, JobStatus.RELEASED, JobStatus.FAILED,
    ]  # fmt: skip
    (failed,) = repo.failed()
    assert failed.uuid == uuid
    assert "RuntimeError: boom x" in failed.exception and "Traceback" in failed.exception
    assert testjobs.hook_calls == [(uuid, "boom x")]


def test_worker_tries_option_applies_when_the_job_sets_none(repo: JobRepository, run_worker: RunWorker) -> None:
    api.dispatch(LeakKey(key="k"))
    _code, events, _ = run_worker(tries=2)
    assert [e.status for e in events if e.name == "tests.LeakKey" and e.status is not JobStatus.STARTING] == [
        JobStatus.RELEASED, JobStatus.FAILED,
    ]  # fmt: skip


def test_backoff_delays_the_retry(repo: JobRepository, run_worker: RunWorker) -> None:
    api.dispatch(LeakKey(key="k"))
    _code, events, _ = run_worker(tries=3, backoff=(3600,))
    assert [e.status for e in events] == [JobStatus.STARTING, JobStatus.RELEASED]
    (counts,) = repo.counts()
    assert counts.delayed == 1


def test_job_can_release_itself_and_fail_itself(repo: JobRepository, run_worker: RunWorker) -> None:
    ReleaseSelf().dispatch()
    FailSelf().dispatch()
    run_worker()
    (failed,) = repo.failed()
    assert "refused by handler" in failed.exception
    assert repo.counts() == []


def test_timeout_is_recorded_at_once_and_the_worker_goes_on(repo: JobRepository, run_worker: RunWorker) -> None:
    SleepPython(seconds=30).dispatch()
    Noop().dispatch()
    t0 = time.monotonic()
    code, events, _ = run_worker(timeout=1, tries=1)
    assert time.monotonic() - t0 < 10
    assert code == 0
    assert statuses(events)[-1] == ("tests.Noop", "success")
    (failed,) = repo.failed()
    assert "JobTimedOut" in failed.exception and "has timed out after 1 seconds" in failed.exception


def test_timed_out_job_with_tries_left_is_released_not_left_reserved(
    repo: JobRepository, run_worker: RunWorker
) -> None:
    SleepPython(seconds=30).dispatch()
    _code, events, _ = run_worker(timeout=1, tries=2, backoff=(3600,))
    assert [e.status for e in events] == [JobStatus.STARTING, JobStatus.RELEASED]
    (counts,) = repo.counts()
    assert counts.reserved == 0 and counts.delayed == 1


def test_corrupt_and_unknown_payloads_fail_with_a_clear_message(repo: JobRepository, run_worker: RunWorker) -> None:
    repo.push(NewJob(uuid="00000000-0000-4000-8000-000000000001", queue="default", payload="{not json"))
    repo.push(NewJob(uuid="00000000-0000-4000-8000-000000000002", queue="default",
                     payload='{"uuid":"00000000-0000-4000-8000-000000000002","job":"os.system","data":{}}'))  # fmt: skip
    Noop().dispatch()
    code, events, _ = run_worker()
    assert code == 0
    failures = {f.uuid: f.exception for f in repo.failed()}
    assert "not valid JSON" in failures["00000000-0000-4000-8000-000000000001"]
    assert "No job is registered under the name 'os.system'" in failures["00000000-0000-4000-8000-000000000002"]
    assert ("tests.Noop", "success") in statuses(events)


def test_payload_with_arguments_the_class_rejects_fails_clearly(repo: JobRepository, run_worker: RunWorker) -> None:
    repo.push(NewJob(uuid="00000000-0000-4000-8000-000000000003", queue="default",
                     payload='{"uuid":"00000000-0000-4000-8000-000000000003","job":"tests.Noop","data":{"queue":1}}'))  # fmt: skip
    run_worker()
    (failed,) = repo.failed()
    assert "Cannot build tests.Noop from its payload" in failed.exception


def test_attempted_too_many_times_after_a_dead_worker(repo: JobRepository, run_worker: RunWorker) -> None:
    Noop().dispatch()
    repo.reserve("default", "dead-worker")  # attempt 1, then the worker "dies"
    with repo.engine.begin() as conn:
        conn.execute(sa.update(jobs).values(lease_expires_at=jobs.c.lease_expires_at - 3600))
    run_worker(tries=1)
    (failed,) = repo.failed()
    assert "has been attempted too many times" in failed.exception


def test_priority_queues_are_served_in_order(repo: JobRepository, run_worker: RunWorker, db_url: str) -> None:
    api.dispatch(Record(key="low"), queue="low")
    api.dispatch(Record(key="high"), queue="high")
    run_worker(queues=("high", "low"))
    assert [r.key for r in testjobs.runs(db_url)] == ["high", "low"]


def test_stop_reasons_once_max_jobs_max_time(repo: JobRepository, run_worker: RunWorker) -> None:
    api.dispatch_many([Noop() for _ in range(10)])
    code, events, worker = run_worker(once=True, stop_when_empty=False)
    assert (code, worker.stop_reason, len(events)) == (0, StopReason.ONCE, 2)
    code, events, worker = run_worker(max_jobs=3, stop_when_empty=False)
    assert (code, worker.stop_reason) == (0, StopReason.MAX_JOBS)
    assert len([e for e in events if e.status is JobStatus.SUCCESS]) == 3
    assert repo.counts()[0].pending == 6
    t0 = time.monotonic()
    code, _, worker = run_worker(max_time=1, stop_when_empty=False, queues=("empty",))
    assert worker.stop_reason is StopReason.MAX_TIME and 0.9 < time.monotonic() - t0 < 5


def test_memory_limit_exits_12_after_the_job(repo: JobRepository, run_worker: RunWorker) -> None:
    Hog(mb=64).dispatch()
    Noop().dispatch()
    code, events, worker = run_worker(memory=32)
    assert code == EXIT_MEMORY and worker.stop_reason is StopReason.MEMORY
    assert statuses(events) == [("tests.Hog", "starting"), ("tests.Hog", "success")]
    Hog.kept.clear()


def test_restart_signal_stops_the_worker(repo: JobRepository, run_worker: RunWorker) -> None:
    from stockq.queue import commands

    def restart_soon() -> None:
        time.sleep(1.0)
        commands.restart(repo)

    threading.Thread(target=restart_soon).start()
    code, _, worker = run_worker(stop_when_empty=False, queues=("nothing",), sleep=0.1)
    assert (code, worker.stop_reason) == (0, StopReason.RESTART)


def test_secrets_never_reach_failed_jobs(repo: JobRepository, run_worker: RunWorker) -> None:
    LeakKey(key="VERYSECRETKEY42").dispatch()
    _code, events, _ = run_worker()
    (failed,) = repo.failed()
    assert "VERYSECRETKEY42" not in failed.exception
    assert all("VERYSECRETKEY42" not in (e.message or "") for e in events)


def test_worker_registers_itself_and_leaves(repo: JobRepository, run_worker: RunWorker) -> None:
    seen_during_run: list[list[tuple[str, str]]] = []
    Noop().dispatch()
    original = repo.reserve

    def spying_reserve(*args, **kwargs):  # reservations happen while the worker is registered
        seen_during_run.append([(w.id, w.queues) for w in repo.workers()])
        return original(*args, **kwargs)

    repo.reserve = spying_reserve  # type: ignore[method-assign]
    _code, _events, worker = run_worker(queues=("default", "import"))
    assert seen_during_run and seen_during_run[0] == [(worker.worker_id, "default,import")]
    assert repo.workers() == []


def _reservations_by_thread(repo: JobRepository) -> list[str]:
    """Spy on repo.reserve: the name of the thread each reservation ran in."""
    threads: list[str] = []
    original = repo.reserve

    def spying_reserve(*args, **kwargs):
        threads.append(threading.current_thread().name)
        return original(*args, **kwargs)

    repo.reserve = spying_reserve  # type: ignore[method-assign]
    return threads


def test_a_fast_drain_reserves_ahead_and_runs_every_job_once(
    repo: JobRepository, run_worker: RunWorker, db_url: str
) -> None:
    api.dispatch_many([Record(key=f"k{i}") for i in range(600)])
    threads = _reservations_by_thread(repo)
    code, _events, _worker = run_worker()
    keys = [r.key for r in testjobs.runs(db_url)]
    assert code == 0 and len(keys) == 600 and set(keys) == {f"k{i}" for i in range(600)}
    assert repo.counts() == []
    ahead = [name for name in threads if name.startswith("stockq-reserve")]
    assert bool(ahead) == repo.is_postgresql  # PostgreSQL overlaps the round trip with the work; SQLite does not


def test_max_jobs_holds_with_reservations_ahead(repo: JobRepository, run_worker: RunWorker) -> None:
    api.dispatch_many([Noop() for _ in range(300)])
    code, events, worker = run_worker(max_jobs=200, stop_when_empty=False)
    assert (code, worker.stop_reason) == (0, StopReason.MAX_JOBS)
    assert len([e for e in events if e.status is JobStatus.SUCCESS]) == 200
    (counts,) = repo.counts()
    assert (counts.pending, counts.reserved) == (100, 0)


def test_a_stopped_worker_hands_back_what_it_reserved_ahead(repo: JobRepository) -> None:
    api.dispatch_many([Noop() for _ in range(2_000)])
    threads = _reservations_by_thread(repo)
    done: list[JobEvent] = []

    def on_event(event: JobEvent) -> None:
        if event.status is JobStatus.SUCCESS:
            done.append(event)
            if len(done) == 300:
                worker.stop()

    worker = Worker(repo, default_registry, WorkerOptions(stop_when_empty=True, sleep=0.05), on_event=on_event)
    assert worker.run() == 0
    assert worker.stop_reason is StopReason.INTERRUPTED
    (counts,) = repo.counts()
    assert (counts.pending, counts.reserved) == (2_000 - len(done), 0)
    assert len(done) in range(300, 302)
    assert any(name.startswith("stockq-reserve") for name in threads) == repo.is_postgresql
