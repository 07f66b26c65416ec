"""The worker loop: reserve, run, acknowledge, with leases, timeouts, signals and stop reasons.

One worker process runs one job at a time in its main thread. A second thread (the heartbeat) renews the leases
of the rows the worker holds, records that the worker lives, and reads the restart signal. Timeouts interrupt the
job's Python code with SIGALRM; the attempt is recorded at once and the worker keeps serving. A job that does not
respond to the interruption (stuck in C code) is recorded by the heartbeat thread, and then the process exits with
EXIT_TIMEOUT_STUCK so that supervisor/systemd start a fresh one.
"""

from __future__ import annotations

import datetime as dt
import enum
import os
import signal
import socket
import threading
import time
import traceback
import uuid as uuidlib
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import sqlalchemy.exc

from stockq import errors, redact
from stockq.queue import payload as payloads
from stockq.queue.job import Job
from stockq.queue.notify import Notifier
from stockq.queue.registry import Registry
from stockq.queue.repository import JobRepository, ReservedJob

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_MEMORY = 12
# A job ignored the timeout interruption (stuck outside Python code): its attempt was recorded, then the process
# exited with this code (the code of coreutils `timeout`) so that the process manager restarts the worker.
EXIT_TIMEOUT_STUCK = 124

# How long a timed-out job may take to unwind after SIGALRM before the heartbeat thread gives up on it.
TIMEOUT_GRACE_SECONDS = 5.0
# Prefetch for fast jobs: up to MAX_BATCH rows per round trip, and never more than about BATCH_SECONDS of work, so
# a job that lands in a worker's batch waits at most that long although another worker is idle.
MAX_BATCH = 400
BATCH_SECONDS = 0.5
# PostgreSQL, batches of at least this many: once a quarter of the batch has run, the next one is reserved (with
# the acknowledgements of the finished jobs) from a second thread while this one runs the rest, so the round trip
# overlaps the work instead of adding to it. (Half-way was too late: the main thread still waited for the round
# trip on a loaded machine; a quarter drained ~20% faster in A/B runs.)
RESERVE_AHEAD_MIN_BATCH = 32
MEMORY_CHECK_SECONDS = 0.1
FAST_JOB_SECONDS = 0.01
SLOW_JOB_SECONDS = 0.1


class StopReason(enum.StrEnum):
    INTERRUPTED = "interrupted"
    MEMORY = "memory"
    RESTART = "restart_signal"
    EMPTY = "empty"
    MAX_TIME = "max_time"
    MAX_JOBS = "max_jobs"
    ONCE = "once"


EXIT_CODES = {StopReason.MEMORY: EXIT_MEMORY}


class JobStatus(enum.StrEnum):
    STARTING = "starting"
    SUCCESS = "success"
    RELEASED = "released_after_exception"
    FAILED = "failed"


@dataclass(frozen=True, kw_only=True, slots=True)
class JobEvent:
    """What the worker tells its output about one job."""

    status: JobStatus
    job_id: int
    uuid: str
    queue: str
    name: str
    attempts: int
    started_at: dt.datetime
    duration: float | None = None
    exception: str | None = None
    message: str | None = None


# Both derive from BaseException so that a job's own `except Exception:` cannot swallow the interruption.
class JobTimedOut(BaseException):
    """The job ran past its timeout."""


class LeaseLost(BaseException):
    """The worker could not renew its lease in time; another worker may take the job, so this one stops it."""


class MaxAttemptsExceeded(Exception):
    """The job has been attempted too many times (its worker died, or it kept failing)."""


@dataclass(frozen=True, kw_only=True)
class WorkerOptions:
    """queue:work's options, with Laravel's defaults."""

    queues: tuple[str, ...] = ("default",)
    name: str = "default"
    once: bool = False
    stop_when_empty: bool = False
    max_jobs: int = 0
    max_time: float = 0
    timeout: int = 60
    memory: int = 128
    sleep: float = 3.0
    rest: float = 0
    tries: int = 1
    backoff: tuple[int, ...] = (0,)
    force: bool = False
    max_batch: int = MAX_BATCH


def is_transient(exc: BaseException) -> bool:
    """Database errors a worker waits out (connection lost, server restart, deadlock, locked file)."""
    if isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError)


def current_rss_mb() -> float:
    """The process's private resident memory (RssAnon) in MB: the heap that grows with leaks, without the shared
    libraries every Python process maps (the analogue of PHP's memory_get_usage(true) that --memory checks)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def format_exception(exc: BaseException) -> str:
    """The exception and its traceback as stored in failed_jobs.exception, with secrets masked."""
    return redact.redact("".join(traceback.format_exception(exc)).rstrip() + "\n")


@dataclass
class _Running:
    job: ReservedJob
    deadline: float | None
    envelope: payloads.Envelope
    instance: Job
    max_tries: int
    started: float = field(default_factory=time.monotonic)
    recorded: bool = False


class Worker:
    """Runs jobs from ``options.queues`` until a stop reason; ``run()`` returns the exit code."""

    def __init__(
        self,
        repository: JobRepository,
        registry: Registry,
        options: WorkerOptions,
        *,
        on_event: Callable[[JobEvent], None] | None = None,
        on_log: Callable[[str], None] | None = None,
        notifier: Notifier | None = None,
        install_signals: bool = True,
    ) -> None:
        self.repo = repository
        self.registry = registry
        self.options = options
        self.on_event = on_event
        self.on_log = on_log or (lambda message: None)
        self.notifier = notifier
        self.install_signals = install_signals
        self.worker_id = f"{socket.gethostname()[:32]}:{os.getpid()}:{uuidlib.uuid4().hex[:8]}"
        self.jobs_processed = 0
        self.stop_reason: StopReason | None = None

        self._quit = threading.Event()
        self._paused = False
        self._wake = threading.Event()
        self._restart_seen: str | None = None
        self._restart_requested = False
        self._lease_lost = threading.Event()
        self._running: _Running | None = None
        self._running_lock = threading.Lock()
        self._in_handle = False
        self._interrupt: type[BaseException] | None = None
        self._prefetched: list[ReservedJob] = []
        self._reserve_ahead = self.repo.is_postgresql and not self.options.once
        self._ahead: Future[list[ReservedJob]] | None = None
        self._ahead_acks: list[int] = []
        self._ahead_executor: ThreadPoolExecutor | None = None
        self._fenced_ids: list[int] = []
        self._acks: list[int] = []
        self._batch = 1
        self._last_expired_check = 0.0
        self._heartbeat_stop = threading.Event()
        self._heartbeat_thread: threading.Thread | None = None
        self._watchdog_thread: threading.Thread | None = None
        self._renewed_at = time.monotonic()
        self._main_thread_id = threading.get_ident()
        self._memory_checked_at = -MEMORY_CHECK_SECONDS

    # ---- lifecycle -------------------------------------------------------------------------------------------

    def run(self) -> int:
        self._main_thread_id = threading.get_ident()
        previous = self._install_signal_handlers() if self.install_signals else {}
        started = time.monotonic()
        try:
            self._with_db_retry(
                lambda: self.repo.register_worker(
                    worker_id=self.worker_id, name=self.options.name, hostname=socket.gethostname(),
                    pid=os.getpid(), queues=",".join(self.options.queues),
                )
            )  # fmt: skip
            self._restart_seen = self._with_db_retry(lambda: self.repo.signal_value("restart"))
            self._start_heartbeat()
            reason = self._loop(started)
            self.stop_reason = reason
            return EXIT_CODES.get(reason, EXIT_OK)
        finally:
            self._shutdown()
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _loop(self, started: float) -> StopReason:
        was_paused = False
        while True:
            had_job = False
            if self._paused != was_paused:
                was_paused = self._paused
                self.on_log("Worker paused (SIGUSR2); SIGCONT resumes" if was_paused else "Worker resumed (SIGCONT)")
            if self._paused:
                self._idle(self.options.sleep)
            else:
                job = self._next_job()
                if job is not None:
                    had_job = True
                    self._process(job)
                    self.jobs_processed += 1
                    if self.options.rest > 0:
                        self._idle(self.options.rest)
                elif self.options.once:
                    self._idle(self.options.sleep)
                    return StopReason.ONCE
                elif not self.options.stop_when_empty:
                    self._idle(self._idle_seconds())
            if self.options.once and had_job:
                return StopReason.ONCE
            reason = self._stop_reason(had_job, started)
            if reason is not None:
                return reason

    def _stop_reason(self, had_job: bool, started: float) -> StopReason | None:
        if self._quit.is_set():
            return StopReason.INTERRUPTED
        if self._memory_exceeded():
            return StopReason.MEMORY
        if self._restart_requested:
            return StopReason.RESTART
        if self.options.stop_when_empty and not had_job and not self._paused:
            return StopReason.EMPTY
        if self.options.max_time and time.monotonic() - started >= self.options.max_time:
            return StopReason.MAX_TIME
        if self.options.max_jobs and self.jobs_processed >= self.options.max_jobs:
            return StopReason.MAX_JOBS
        return None

    def _recover_after_fence(self) -> None:
        """After a fence, hand back what we hold: the interrupted jobs (their attempt counts) and the prefetched
        ones we never started (it does not), so that they run again at once and the heartbeat stops renewing them.
        Every statement only touches rows still leased to this worker; pending acknowledgements are kept and sent
        with the next reservation, since those jobs did finish."""
        interrupted, self._fenced_ids = self._fenced_ids, []
        self._settle_ahead()
        unstarted = [job.id for job in self._prefetched]
        self._prefetched.clear()

        def hand_back() -> None:
            for job_id in interrupted:
                self.repo.release(job_id, self.worker_id, delay=0, after_exception=False)
            self.repo.unreserve(unstarted, self.worker_id)

        self._with_db_retry(hand_back, give_up=self._quit.is_set)
        self._lease_lost.clear()

    def _memory_exceeded(self) -> bool:
        # Reading /proc costs as much as a no-op job: look at most every MEMORY_CHECK_SECONDS.
        now = time.monotonic()
        if now - self._memory_checked_at < MEMORY_CHECK_SECONDS:
            return False
        self._memory_checked_at = now
        return current_rss_mb() >= self.options.memory

    def _shutdown(self) -> None:
        self._heartbeat_stop.set()
        for thread in (self._heartbeat_thread, self._watchdog_thread):
            if thread is not None:
                thread.join(timeout=10)
        try:
            self._settle_ahead()
            if self._ahead_executor is not None:
                self._ahead_executor.shutdown(wait=True)
            self._flush_acks()
            if self._prefetched:
                self.repo.unreserve([job.id for job in self._prefetched], self.worker_id)
                self._prefetched.clear()
            self.repo.unregister_worker(self.worker_id)
        except sqlalchemy.exc.SQLAlchemyError as exc:
            # The rows stay leased to a worker that is gone; their leases run out and other workers take them.
            self.on_log(f"Could not clean up at exit ({_first_line(exc)}); leases will expire")
        if self.notifier is not None:
            self.notifier.close()

    # ---- signals -------------------------------------------------------------------------------------------

    def _install_signal_handlers(self) -> dict[int, Any]:
        handlers: dict[int, Callable[[int, FrameType | None], None]] = {
            signal.SIGTERM: self._on_quit,
            signal.SIGINT: self._on_quit,
            signal.SIGQUIT: self._on_quit,
            signal.SIGUSR2: self._on_pause,
            signal.SIGCONT: self._on_resume,
            signal.SIGALRM: self._on_alarm,
        }
        return {signum: signal.signal(signum, handler) for signum, handler in handlers.items()}

    def _on_quit(self, signum: int, frame: FrameType | None) -> None:
        self._quit.set()
        self._wake.set()

    # Signal handlers only set flags: printing from a handler could re-enter a write the main thread is doing.
    def _on_pause(self, signum: int, frame: FrameType | None) -> None:
        self._paused = True

    def _on_resume(self, signum: int, frame: FrameType | None) -> None:
        if self._paused:
            self._paused = False
            self._wake.set()

    def _on_alarm(self, signum: int, frame: FrameType | None) -> None:
        reason = self._interrupt
        if reason is not None and self._in_handle:
            self._interrupt = None
            raise reason()

    def stop(self) -> None:
        """Ask the worker to exit after its current job (what SIGTERM does)."""
        self._quit.set()
        self._wake.set()

    # ---- fetching --------------------------------------------------------------------------------------------

    def _next_job(self) -> ReservedJob | None:
        if self._lease_lost.is_set():
            self._recover_after_fence()
        if not self._prefetched and self._ahead is not None:
            self._prefetched = self._collect_ahead()
        if not self._prefetched:
            if self._quit.is_set():
                self._flush_acks()
                return None
            self._prefetched = self._reserve()
        if not self._prefetched:
            return None
        job = self._prefetched.pop(0)
        self._maybe_reserve_ahead()
        return job

    def _batch_limit(self, held: int = 0) -> int:
        limit = 1 if self.options.once else self._batch
        if self.options.max_jobs:
            limit = min(limit, self.options.max_jobs - self.jobs_processed - held)
        return limit

    def _expired_check_due(self) -> bool:
        # Rows whose lease ran out (their worker died) are looked for at most once a second.
        now = time.monotonic()
        if now - self._last_expired_check < 1.0:
            return False
        self._last_expired_check = now
        return True

    def _reserve(self) -> list[ReservedJob]:
        acks, self._acks = self._acks, []
        try:
            return self._reserve_from_queues(max(1, self._batch_limit()), acks, self._expired_check_due())
        except sqlalchemy.exc.SQLAlchemyError as exc:
            self._acks = acks + self._acks  # acknowledging twice is harmless: only rows we hold are deleted
            if not is_transient(exc):
                raise
            self._wait_for_database(exc)
            return []

    def _reserve_from_queues(self, limit: int, acks: Sequence[int], include_expired: bool) -> list[ReservedJob]:
        """The first queue (in priority order) that has jobs gives up to ``limit``; ``acks`` go with the first
        round trip."""
        for queue in self.options.queues:
            jobs = self.repo.reserve(
                queue, self.worker_id, limit=limit, include_expired=include_expired, acknowledge=acks
            )
            acks = ()
            if jobs:
                return jobs
        return []

    def _maybe_reserve_ahead(self) -> None:
        if (
            not self._reserve_ahead
            or self._ahead is not None
            or self._batch < RESERVE_AHEAD_MIN_BATCH
            or len(self._prefetched) > self._batch * 3 // 4
            or self._quit.is_set()
            or self._lease_lost.is_set()
        ):
            return
        limit = self._batch_limit(held=len(self._prefetched) + 1)
        if limit <= 0:
            return
        if self._ahead_executor is None:
            self._ahead_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stockq-reserve")
        self._ahead_acks, self._acks = self._acks, []
        self._ahead = self._ahead_executor.submit(
            self._reserve_from_queues, limit, self._ahead_acks, self._expired_check_due()
        )

    def _collect_ahead(self) -> list[ReservedJob]:
        """The jobs the reservation ahead got (waiting for it if needed); on a database error its
        acknowledgements are kept for the next round trip."""
        future, self._ahead = self._ahead, None
        if future is None:
            return []
        acks, self._ahead_acks = self._ahead_acks, []
        try:
            return future.result()
        except sqlalchemy.exc.SQLAlchemyError as exc:
            self._acks = acks + self._acks
            if not is_transient(exc):
                raise
            self._wait_for_database(exc)
            return []

    def _settle_ahead(self) -> None:
        """Wait for a reservation in flight and hold what it got like the other prefetched jobs (at a fence or
        at exit, they are handed back with them)."""
        try:
            self._prefetched.extend(self._collect_ahead())
        except sqlalchemy.exc.SQLAlchemyError as exc:
            self.on_log(f"Reservation failed ({_first_line(exc)})")

    def _idle_seconds(self) -> float:
        seconds = self.options.sleep
        try:
            next_at = self.repo.next_available_at(self.options.queues)
            if next_at is not None:
                seconds = min(seconds, max(0.0, next_at - self.repo.db_time() + 0.05))
        except sqlalchemy.exc.SQLAlchemyError as exc:
            if not is_transient(exc):
                raise
        return seconds

    def _idle(self, seconds: float) -> None:
        """Sleep up to ``seconds``; a notification of a new job, a signal or a resume wakes us early."""
        if seconds <= 0:
            return
        deadline = time.monotonic() + seconds
        self._wake.clear()
        if self.notifier is not None and not self._paused:
            while not self._quit.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                if self.notifier.wait(min(left, 0.5), self.options.queues):
                    return
                if self.notifier.broken:
                    break
        while not self._quit.is_set():
            left = deadline - time.monotonic()
            if left <= 0 or self._wake.wait(min(left, 0.5)):
                return

    # ---- running one job -------------------------------------------------------------------------------------

    def _process(self, job: ReservedJob) -> None:
        started_at = dt.datetime.now()
        try:
            envelope = payloads.decode(job.payload)
            job_class = self.registry.get(envelope.job)
        except (errors.InvalidPayload, errors.UnknownJob) as exc:
            name = payloads.display_name_of(job.payload)
            self._emit(JobStatus.STARTING, job, name, started_at)
            self._fail(job, None, None, exc, name, started_at, time.monotonic())
            return

        max_tries = envelope.max_tries if envelope.max_tries is not None else self.options.tries
        self._emit(JobStatus.STARTING, job, envelope.display_name, started_at)
        t0 = time.monotonic()
        too_many = self._already_exceeded(job, envelope, max_tries)
        if too_many is not None:
            self._fail(job, envelope, None, too_many, envelope.display_name, started_at, t0)
            return
        try:
            instance = job_class(**envelope.data)
        except Exception as exc:
            failure = errors.InvalidPayload(f"Cannot build {envelope.display_name} from its payload: {exc}")
            self._fail(job, envelope, None, failure, envelope.display_name, started_at, t0)
            return
        instance.attempts = job.attempts
        instance.job_uuid = envelope.uuid

        timeout = envelope.timeout if envelope.timeout is not None else self.options.timeout
        running = _Running(
            job=job, envelope=envelope, instance=instance, max_tries=max_tries,
            deadline=t0 + timeout if timeout > 0 else None,
        )  # fmt: skip
        with self._running_lock:
            self._running = running
        outcome: BaseException | None = None
        try:
            self._run_handle(instance, timeout)
        except JobTimedOut:
            outcome = JobTimedOut(f"{envelope.display_name} has timed out after {timeout} seconds.")
        except LeaseLost:
            self.on_log(f"{envelope.display_name} ({envelope.uuid}) stopped: the lease could not be renewed")
            self._fenced_ids.append(job.id)
            self._clear_running()
            return
        except (Exception, SystemExit) as exc:
            outcome = exc
        with self._running_lock:
            if running.recorded:  # the heartbeat thread recorded it (stuck past the grace period)
                self._running = None
                return
            running.recorded = True
            self._running = None

        if outcome is None and instance._failed_with is not None:
            self._fail(job, envelope, instance, instance._failed_with, envelope.display_name, started_at, t0)
        elif outcome is None:
            if instance._released_with is not None:
                self._record(lambda: self.repo.release(job.id, self.worker_id, delay=instance._released_with or 0,
                                                       after_exception=False))  # fmt: skip
            else:
                # Deleted with the next reservation (one round trip for both), or at exit.
                self._acks.append(job.id)
            self._emit(JobStatus.SUCCESS, job, envelope.display_name, started_at, t0)
            self._adapt_batch(time.monotonic() - t0)
        else:
            self._batch = 1
            self._after_exception(job, envelope, instance, outcome, max_tries, started_at, t0)

    def _run_handle(self, instance: Job, timeout: int) -> None:
        self._interrupt = JobTimedOut
        self._in_handle = True
        if timeout > 0:
            signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            instance.handle()
        finally:
            self._in_handle = False
            if timeout > 0:
                signal.setitimer(signal.ITIMER_REAL, 0)
            self._interrupt = None

    def _already_exceeded(self, job: ReservedJob, envelope: payloads.Envelope, max_tries: int) -> Exception | None:
        if envelope.retry_until is not None:
            if time.time() > envelope.retry_until:
                return MaxAttemptsExceeded(f"{envelope.display_name} has been attempted too many times.")
        elif max_tries > 0 and job.attempts > max_tries:
            return MaxAttemptsExceeded(f"{envelope.display_name} has been attempted too many times.")
        return None

    def _after_exception(
        self,
        job: ReservedJob,
        envelope: payloads.Envelope,
        instance: Job,
        exc: BaseException,
        max_tries: int,
        started_at: dt.datetime,
        t0: float,
    ) -> None:
        give_up = False
        if envelope.retry_until is not None:
            give_up = envelope.retry_until <= time.time()
        elif max_tries > 0 and job.attempts >= max_tries:
            give_up = True
        if envelope.max_exceptions and job.exceptions + 1 >= envelope.max_exceptions:
            give_up = True
        if isinstance(exc, JobTimedOut) and envelope.fail_on_timeout:
            give_up = True
        if give_up:
            self._fail(job, envelope, instance, exc, envelope.display_name, started_at, t0)
            return
        delay = payloads.backoff_for(envelope.backoff or self.options.backoff, job.attempts)
        self._record(lambda: self.repo.release(job.id, self.worker_id, delay=delay, after_exception=True))
        self._emit(JobStatus.RELEASED, job, envelope.display_name, started_at, t0, exc)

    def _fail(
        self,
        job: ReservedJob,
        envelope: payloads.Envelope | None,
        instance: Job | None,
        exc: BaseException,
        name: str,
        started_at: dt.datetime,
        t0: float,
    ) -> None:
        text = format_exception(exc)
        moved = self._record(lambda: self.repo.fail(job.id, self.worker_id, text))
        self._emit(JobStatus.FAILED, job, name, started_at, t0, exc)
        if moved and instance is not None:
            try:
                instance.failed(exc)
            except Exception as hook_error:
                self.on_log(f"{name}.failed() raised {type(hook_error).__name__}: {redact.redact(str(hook_error))}")

    def _record(self, operation: Callable[[], bool]) -> bool:
        """Write a job's outcome, waiting out database outages; False if the row is no longer ours."""
        self._flush_acks()
        done = self._with_db_retry(operation, give_up=self._quit.is_set)
        if done is False:
            self.on_log("The job's lease had passed to another worker; its outcome was not recorded here")
        return bool(done)

    def _flush_acks(self) -> None:
        if not self._acks:
            return
        ids, self._acks = self._acks, []
        self._with_db_retry(lambda: self.repo.delete(ids, self.worker_id), give_up=self._quit.is_set)

    def _adapt_batch(self, seconds: float) -> None:
        # Prefetch grows while jobs are fast (fewer round trips) and drops to one for slow jobs, so a long job
        # never holds back others that a second worker could run.
        if seconds < FAST_JOB_SECONDS:
            if not self._prefetched:
                by_time = max(1, int(BATCH_SECONDS / max(seconds, 1e-6)))
                self._batch = min(self._batch * 2, self.options.max_batch, by_time)
        elif seconds > SLOW_JOB_SECONDS:
            self._batch = 1

    def _clear_running(self) -> None:
        with self._running_lock:
            self._running = None

    def _emit(
        self,
        status: JobStatus,
        job: ReservedJob,
        name: str,
        started_at: dt.datetime,
        t0: float | None = None,
        exc: BaseException | None = None,
    ) -> None:
        if self.on_event is None:  # nobody listens (e.g. `queue work -q`): do not build the event
            return
        self.on_event(
            JobEvent(
                status=status, job_id=job.id, uuid=job.uuid, queue=job.queue, name=name, attempts=job.attempts,
                started_at=started_at, duration=None if t0 is None else time.monotonic() - t0,
                exception=type(exc).__name__ if exc is not None else None,
                message=redact.redact(str(exc)) if exc is not None else None,
            )
        )  # fmt: skip

    # ---- database outages ----------------------------------------------------------------------------------

    def _with_db_retry(self, operation: Callable[[], Any], *, give_up: Callable[[], bool] | None = None) -> Any:
        delay = 0.5
        while True:
            try:
                return operation()
            except sqlalchemy.exc.SQLAlchemyError as exc:
                if not is_transient(exc):
                    raise
                if give_up is not None and give_up():
                    return None
                self._wait_for_database(exc, delay)
                delay = min(delay * 2, 10.0)

    def _wait_for_database(self, exc: BaseException, delay: float = 1.0) -> None:
        self.on_log(f"Database unavailable ({_first_line(exc)}); retrying in {delay:.1f}s")
        self._wake.wait(delay)

    # ---- heartbeat -------------------------------------------------------------------------------------------

    def _start_heartbeat(self) -> None:
        self._renewed_at = time.monotonic()
        self._heartbeat_thread = threading.Thread(target=self._heartbeat_loop, name="stockq-heartbeat", daemon=True)
        self._watchdog_thread = threading.Thread(target=self._watchdog_loop, name="stockq-watchdog", daemon=True)
        self._heartbeat_thread.start()
        self._watchdog_thread.start()

    def _heartbeat_interval(self) -> float:
        return max(0.5, min(5.0, self.repo.lease_seconds / 4))

    def _heartbeat_loop(self) -> None:
        """Renews the leases and records that the worker lives; reads the restart signal."""
        interval = self._heartbeat_interval()
        while not self._heartbeat_stop.wait(interval):
            with self._running_lock:
                current = self._running.envelope.uuid if self._running else None
            attempt_started = time.monotonic()
            try:
                beat = self.repo.heartbeat(
                    self.worker_id, current_job=current, jobs_processed=self.jobs_processed,
                    status="paused" if self._paused else ("busy" if current else "idle"),
                )  # fmt: skip
            except sqlalchemy.exc.SQLAlchemyError as exc:
                self.on_log(f"Heartbeat failed ({_first_line(exc)})")
                continue
            self._renewed_at = attempt_started
            if beat.restart_signal != self._restart_seen:
                self._restart_requested = True
                self._wake.set()

    def _watchdog_loop(self) -> None:
        """Enforces what must not wait on the database: hard timeouts, and fencing when leases go stale. A
        separate thread, because the heartbeat may itself be blocked in a database call."""
        interval = self._heartbeat_interval()
        # Fence before the lease can run out, leaving a margin for a late heartbeat (at least one interval).
        lease = self.repo.lease_seconds
        fence_after = lease - min(2 * interval, (lease - interval) / 2)
        fenced_for: float | None = None
        while not self._heartbeat_stop.wait(0.1):
            self._check_stuck()
            renewed_at = self._renewed_at
            holding = self._running is not None or bool(self._prefetched) or bool(self._acks) or self._ahead is not None
            if holding and fenced_for != renewed_at and time.monotonic() - renewed_at > fence_after:
                fenced_for = renewed_at
                self.on_log("Leases could not be renewed in time; stopping the running job so it cannot run twice")
                self._fence()

    def _fence(self) -> None:
        """Our leases may have run out: stop the running job so that it never runs in two workers at once."""
        self._lease_lost.set()
        if self._in_handle:
            self._interrupt = LeaseLost
            signal.pthread_kill(self._main_thread_id, signal.SIGALRM)

    def _check_stuck(self) -> None:
        with self._running_lock:
            running = self._running
            if running is None or running.deadline is None or running.recorded:
                return
            if time.monotonic() < running.deadline + TIMEOUT_GRACE_SECONDS:
                return
            running.recorded = True
        # The job ignored SIGALRM: record its attempt from this thread, then end the process.
        exc = JobTimedOut(
            f"{running.envelope.display_name} has timed out and did not stop; the worker exits to recover."
        )
        try:
            self._after_exception(
                running.job, running.envelope, running.instance, exc, running.max_tries,
                dt.datetime.now(), running.started,
            )  # fmt: skip
            self.repo.unregister_worker(self.worker_id)
        finally:
            os._exit(EXIT_TIMEOUT_STUCK)


def _first_line(exc: BaseException) -> str:
    inner = getattr(exc, "orig", None) or exc
    text = str(inner).strip()
    return text.splitlines()[0] if text else type(inner).__name__


def queue_list(value: str | Sequence[str]) -> tuple[str, ...]:
    """``"high, low"`` → ("high", "low"): trimmed, empty names dropped, order kept, duplicates dropped."""
    items = value.split(",") if isinstance(value, str) else list(value)
    seen: dict[str, None] = {}
    for item in items:
        name = item.strip()
        if name:
            seen.setdefault(name, None)
    return tuple(seen)
