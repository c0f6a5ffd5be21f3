"""The rq worker of the system: runs jobs and scheduled jobs, and retries the outbox.

What happens when things break (each case has a test in tests/production):

- A worker killed mid-job (SIGKILL, the OOM killer): its work-horse and scheduler die with it,
  so nothing runs on unsupervised. The job stays in rq's started registry; once its heartbeat
  is older than ``worker_heartbeat_seconds + worker_heartbeat_grace_seconds``, the next
  maintenance run of another worker (every ``worker_maintenance_seconds``) retries it. Jobs
  re-read their state in their own transaction, so a retry never does the work twice.
- A scheduler gone while another worker's scheduler holds the other queues' locks: the
  survivor asks for the missing locks every ``worker_maintenance_seconds`` and schedules
  those queues too once the dead one's lock is released or expires (HotlineScheduler).
- Redis away: rq's scheduler process dies and rq itself quits its loop when Redis fails
  outside its wait for jobs. The worker waits until Redis answers and starts working again,
  under the same name, with its scheduler. The embedded server, if killed, is started again
  by whichever process misses it first; one that is only stopped is waited for.
- Redis restarted empty: the worker registers itself again (``/healthz`` lists workers by
  their registration and heartbeats) and the scheduled jobs are asked for again
  (hotline.core.reconcile).
- Heartbeats: an idle worker heartbeats every ``min(worker_heartbeat_seconds,
  worker_maintenance_seconds)``, a busy one every ``worker_heartbeat_seconds``; ``/healthz``
  counts a worker whose last heartbeat is older than that plus the grace as gone.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import threading
from datetime import datetime

import redis
from rq import Queue, Worker, worker_registration
from rq.defaults import DEFAULT_LOGGING_DATE_FORMAT, DEFAULT_LOGGING_FORMAT
from rq.job import Job
from rq.scheduler import RQScheduler

from hotline.core import reconcile
from hotline.core.db import transaction
from hotline.core.models import AuditEntry
from hotline.core.outbox import RelayThread
from hotline.core.redis import configured_redis_url, redis_url
from hotline.core.settings import get_settings

log = logging.getLogger(__name__)

QUEUES = ("high", "default", "low")
_PR_SET_PDEATHSIG = 1
_REDIS_ERRORS = (redis.ConnectionError, redis.TimeoutError, OSError)


class HotlineScheduler(RQScheduler):
    """rq's scheduler, taking over a dead scheduler's queues within the maintenance interval.

    Workers that start together can split the per-queue scheduler locks between them. rq's
    running scheduler asks for the locks it lacks only every two minutes, so when the worker
    holding the default queue's lock died, that queue's scheduled jobs (deadline reminders,
    the retry of the job that worker was running) waited up to two minutes.
    """

    def __init__(self, *args, reacquire_seconds: float = 120, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.reacquire_seconds = reacquire_seconds

    @property
    def should_reacquire_locks(self) -> bool:
        if self._queue_names == self.acquired_locks:
            return False
        if not self.lock_acquisition_time:
            return True
        waited = (datetime.now() - self.lock_acquisition_time).total_seconds()
        return waited > self.reacquire_seconds


class HotlineWorker(Worker):
    """rq's forking worker with a configurable heartbeat grace and a record of why it stopped."""

    def __init__(self, *args, heartbeat_grace: int = 60, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.heartbeat_grace = heartbeat_grace
        self.shutdown_requested = False

    def _start_scheduler(
        self,
        burst: bool = False,
        logging_level: str | None = "INFO",
        date_format: str = DEFAULT_LOGGING_DATE_FORMAT,
        log_format: str = DEFAULT_LOGGING_FORMAT,
    ) -> None:
        # rq's own start-up, with HotlineScheduler in place of the RQScheduler it hard-codes.
        self.scheduler = HotlineScheduler(
            self.queues,
            connection=self.connection,
            logging_level=logging_level if logging_level is not None else self.log.level,
            date_format=date_format,
            log_format=log_format,
            serializer=self.serializer,
            reacquire_seconds=self.maintenance_interval,
        )
        self.scheduler.acquire_locks()
        if not self.scheduler.acquired_locks:
            return  # another worker's scheduler runs; our maintenance takes over if it dies
        if burst:
            try:
                self.scheduler.register_birth()
                self.scheduler.enqueue_scheduled_jobs()
            finally:
                self.scheduler.release_locks()
                self.scheduler.register_death()
        else:
            self.scheduler.start()

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        # rq's own rule with its fixed 60 s of grace made a configurable setting: how long a
        # job may go without a heartbeat before another worker takes it for abandoned.
        interval = self.job_monitoring_interval
        if job.timeout and job.timeout > 0:
            interval = min(job.timeout - working_time, interval)
        return int(interval) + self.heartbeat_grace

    def request_stop(self, signum, frame) -> None:
        self.shutdown_requested = True  # SIGTERM/SIGINT: stop for good, do not start over
        super().request_stop(signum, frame)


def _die_with_the_worker() -> None:
    """Have every process the worker forks (work-horse, scheduler) end when the worker does.

    rq puts its work-horse in a process group of its own, so a SIGKILLed worker leaves it
    running without heartbeats: rq then retries the job elsewhere while it still runs. With
    PR_SET_PDEATHSIG the kernel sends SIGTERM instead, which ends a work-horse at once and
    makes the scheduler give its lock back.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):  # not Linux: rq's own behaviour
        return
    parent = os.getpid()

    def in_child() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the worker died between fork and prctl
            os.kill(os.getpid(), signal.SIGTERM)

    os.register_at_fork(after_in_child=in_child)


def _make_worker(connection: redis.Redis, name: str | None) -> HotlineWorker:
    settings = get_settings()
    return HotlineWorker(
        [Queue(q, connection=connection) for q in QUEUES],
        connection=connection,
        name=name,
        job_monitoring_interval=settings.worker_heartbeat_seconds,
        maintenance_interval=settings.worker_maintenance_seconds,
        # An idle rq worker heartbeats and runs its maintenance only between two waits for a
        # job, and waits worker_ttl - 15 s: rq's 420 s default would make the maintenance
        # interval a wish, and /healthz would take a live idle worker for a dead one.
        worker_ttl=min(settings.worker_maintenance_seconds, settings.worker_heartbeat_seconds) + 15,
        heartbeat_grace=settings.worker_heartbeat_grace_seconds,
    )


def _wait_for_redis(connection: redis.Redis, stop: threading.Event) -> None:
    pause = 0.5
    while not stop.is_set():
        with contextlib.suppress(*_REDIS_ERRORS):
            if connection.ping():
                return
        # Starts the embedded server again if it is gone (never beside one only stopped).
        with contextlib.suppress(*_REDIS_ERRORS, RuntimeError):
            redis_url()
        stop.wait(pause)
        pause = min(pause * 2, 5.0)


def _register_again(worker: HotlineWorker, client: redis.Redis) -> None:
    """Put a running worker back into a Redis that restarted without it (emptied, or the
    embedded one restored from a file older than the worker's registration)."""
    if client.sismember(worker.redis_workers_keys, worker.key):
        return
    if worker.birth_date is None or worker.last_heartbeat is None:
        return  # not registered yet: rq's own registration comes
    log.warning("worker %s registers itself again with a new Redis", worker.name)
    with client.pipeline() as pipeline:
        pipeline.hset(worker.key, mapping=worker.serialize())
        pipeline.expire(worker.key, worker.worker_ttl + 60)
        worker_registration.register(worker, pipeline)
        pipeline.execute()


def _forget(worker: HotlineWorker) -> None:
    """Clear what a worker that quit on a Redis error left behind, so that its successor can
    register under the same name and take the scheduler over at once."""
    with contextlib.suppress(*_REDIS_ERRORS):
        if worker.scheduler is not None:
            worker.scheduler.release_locks()  # only the locks this scheduler still owns
        worker.register_death()


def run_worker(
    *, burst: bool = False, name: str | None = None, with_scheduler: bool = True
) -> None:
    """Work the queues until stopped (or until empty with ``burst``), through Redis outages."""
    # A connection of its own: rq raises the socket timeout of the connection it is given to
    # outlast its blocking wait for jobs, which the outbox relay must not inherit.
    connection = redis.Redis.from_url(configured_redis_url(), socket_connect_timeout=2)
    _die_with_the_worker()
    current: list[HotlineWorker] = []
    reconcile.watch.on_new_server(lambda client: current and _register_again(current[0], client))
    relay = RelayThread()
    relay.start()
    stop = threading.Event()
    try:
        _wait_for_redis(connection, stop)
        while not stop.is_set():
            worker = _make_worker(connection, name)
            current[:] = [worker]
            name = worker.name
            try:
                worker.work(burst=burst, with_scheduler=with_scheduler)
            except _REDIS_ERRORS as exc:
                log.warning("worker %s lost Redis: %s", name, exc)
            if burst or worker.shutdown_requested:
                return
            # rq left its loop without being asked to (Redis failed outside its wait for jobs):
            # start over once Redis answers, rather than leave the queues unworked. Until the
            # next worker installs its own, a signal only ends the wait.
            log.warning("worker %s stopped working; starting again once Redis answers", name)
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, lambda *_: stop.set())
            stop.wait(1.0)  # a worker that quits at once for another reason must not spin
            _wait_for_redis(connection, stop)
            _forget(worker)
    finally:
        relay.stop()


def ping(note: str) -> str:
    """A harmless job that leaves a trace in the audit log: proves the pipeline end to end."""
    with transaction() as session:
        session.add(
            AuditEntry(actor="system", action="job.ping", entity="job", entity_id=note, detail={})
        )
    return note
