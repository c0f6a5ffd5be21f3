"""The transactional outbox: jobs and events leave the database only after their commit.

A service writes an ``OutboxMessage`` in the caller's transaction. After the commit, the relay
moves events into the ``events`` log (giving them increasing ids) and publishes them over Redis
pub/sub, and hands jobs to rq. Rows Redis did not take stay in the outbox and are retried by
the relay thread of every long-running process, so a job asked for while Redis was down runs
once Redis is back. A rolled-back transaction takes its outbox rows with it: nothing is sent.

Relaying is done by one thread per process, in batches. A committing thread wakes it and waits
(holding no connection) until a relay pass that began after its commit is over, so when a
request answers, its events are in the log and its jobs in rq, exactly as if it had relayed
them itself; but concurrent requests share one pass (one statement for the events, one
transaction for the jobs) instead of each paying for its own.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from datetime import datetime
from typing import Any

import redis
from rq import Queue, Retry
from rq.exceptions import DuplicateJobError
from sqlalchemy import Connection, bindparam, delete, event, func, insert, select, text, update
from sqlalchemy.orm import Session

from hotline.core import counters, metrics, reconcile
from hotline.core.db import get_engine, utcnow
from hotline.core.models import Event, OutboxMessage
from hotline.core.redis import EmbeddedRedisNotAnswering, EmbeddedRedisUnavailable, get_redis
from hotline.core.settings import get_settings

log = logging.getLogger(__name__)


def events_channel() -> str:
    """The pub/sub channel of this installation's events.

    Pub/sub ignores Redis's database numbers: two installations (or test runs) sharing one
    server on db 0 and db 5 would hear each other's events, and a gateway would drop its own
    behind the other's higher ids. The database number keeps them apart.
    """
    database = get_redis().connection_pool.connection_kwargs.get("db", 0)
    return f"hotline:events:{database}"


# session.info keys: the kinds of messages staged in the transaction, then committed.
_PENDING = "hotline.outbox_pending"
_STAGED = "hotline.outbox_staged"  # the rows themselves, written just before the commit
_COMMITTED = "hotline.outbox_committed"
KINDS = frozenset({"event", "job"})
_BATCH = 500
# A job row rq refused this often stays in the outbox for an operator (see /healthz) instead
# of being retried for ever; Redis outages do not count towards it.
MAX_JOB_ATTEMPTS = 20
# How long a committing thread waits for its relay pass. Redis timeouts are shorter (see
# hotline.core.redis), so this only bounds a relay stuck on the database; the rows stay in
# the outbox and the next pass delivers them.
_WAIT_SECONDS = 15.0

_OUTBOX = OutboxMessage.__table__
_EVENTS = Event.__table__


def add(session: Session, kind: str, payload: dict[str, Any]) -> None:
    """Stage a message in the session's transaction; it is relayed after a successful commit.

    Staged in the session and written in one statement just before the commit (the rows are
    not visible to queries in the same transaction before then). As ORM objects, each was an
    INSERT … RETURNING of its own at the next autoflush: a third of a call event's CPU.
    No savepoint may roll back a staged message: the code base uses none.
    """
    staged = session.info.setdefault(_STAGED, [])
    staged.append({"kind": kind, "payload": payload, "created_at": utcnow(), "attempts": 0})
    session.info.setdefault(_PENDING, set()).add(kind)


@event.listens_for(Session, "before_commit")
def _write_staged(session: Session) -> None:
    staged = session.info.pop(_STAGED, None)
    if staged:
        session.execute(insert(_OUTBOX), staged)


@event.listens_for(Session, "after_commit")
def _relay_after_commit(session: Session) -> None:
    kinds = session.info.pop(_PENDING, None)
    if kinds:
        session.info[_COMMITTED] = kinds


@event.listens_for(Session, "after_transaction_end")
def _wait_for_relay(session: Session, transaction) -> None:
    # Here rather than in after_commit: the session has given its connection back to the pool,
    # so a request does not hold one of them while it waits for the relay.
    kinds = session.info.pop(_COMMITTED, None) if transaction.parent is None else None
    if kinds:
        # The caller's data is safely committed by now; delivery problems must not surface as
        # an error of its request, the next pass will pick up whatever is left.
        _relayer().relay_and_wait(kinds)


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)
    session.info.pop(_STAGED, None)


def event_message(ev: Event) -> dict[str, Any]:
    """The wire form of an event, the same on pub/sub, in the catch-up API and on websockets."""
    return _message(ev.id, ev.topic, ev.type, ev.payload, ev.created_at)


def _message(
    id: int, topic: str, type: str, data: Any, created_at: datetime | None
) -> dict[str, Any]:
    return {
        "id": id,
        "topic": topic,
        "type": type,
        "data": data,
        "at": created_at.isoformat() if created_at else None,
    }


def _publish(messages: list[dict[str, Any]]) -> None:
    if not messages:
        return
    try:
        channel = events_channel()
        pipe = get_redis().pipeline(transaction=False)
        for message in messages:
            pipe.publish(channel, json.dumps(message, ensure_ascii=False))
        pipe.execute()
        metrics.EVENTS_PUBLISHED.inc(len(messages))
    except (redis.RedisError, OSError, RuntimeError) as exc:
        # Events are already in the log; subscribers catch up from it by id when Redis is back.
        # A one-shot command (seed, user create) does not start the embedded server: no news.
        quiet = isinstance(exc, EmbeddedRedisUnavailable) and not isinstance(
            exc, EmbeddedRedisNotAnswering
        )
        log.log(
            logging.DEBUG if quiet else logging.WARNING,
            "could not publish %d events over Redis: %s",
            len(messages),
            exc,
        )


def _enqueue(connection: redis.Redis, queues: dict[str, Queue], payload: dict[str, Any]) -> None:
    name = payload.get("queue", "default")
    queue = queues.get(name)
    if queue is None:
        queue = queues[name] = Queue(name, connection=connection)
    kwargs = dict(
        args=payload.get("args", []),
        kwargs=payload.get("kwargs", {}),
        job_id=payload["job_id"],
        unique=True,
        result_ttl=payload.get("result_ttl", 24 * 3600),
        failure_ttl=7 * 24 * 3600,
    )
    if payload.get("retry"):
        kwargs["retry"] = Retry(max=payload["retry"], interval=[5, 30, 120])
    try:
        if payload.get("at"):
            when = datetime.fromisoformat(payload["at"])
            queue.enqueue_at(when, payload["func"], **kwargs)
        else:
            queue.enqueue(payload["func"], **kwargs)
    except DuplicateJobError:
        pass  # the same job (same deterministic id) is already queued or done: nothing to do


def _deliver_jobs(connection: Connection, rows: list[Any]) -> tuple[list[int], bool]:
    """Hand job rows to rq in order; the ids delivered, and whether Redis failed."""
    delivered: list[int] = []
    if not rows:
        return delivered, False
    try:
        client = get_redis()
    except (redis.RedisError, OSError, RuntimeError) as exc:
        _note_failure(connection, rows[0].id, exc, count=False)
        return delivered, True
    queues: dict[str, Queue] = {}
    for row in rows:
        try:
            _enqueue(client, queues, row.payload)
        except (redis.RedisError, OSError, RuntimeError) as exc:
            _note_failure(connection, row.id, exc, count=False)
            return delivered, True  # Redis is unreachable: keep order, try the rest later
        except Exception as exc:  # noqa: BLE001 - a malformed job must not block the others
            error = _note_failure(connection, row.id, exc, count=True)
            log.error("outbox job %s refused by rq: %s", row.id, error)
            continue
        delivered.append(row.id)
    return delivered, False


def _note_failure(connection: Connection, row_id: int, exc: Exception, *, count: bool) -> str:
    error = f"{type(exc).__name__}: {exc}"[:1000]
    values: dict[str, Any] = {"last_error": error}
    if count:
        values["attempts"] = _OUTBOX.c.attempts + 1
    connection.execute(update(_OUTBOX).where(_OUTBOX.c.id == row_id).values(**values))
    return error


# Built once: a relay pass runs after nearly every commit.
_EVENT_ROWS = (
    select(_OUTBOX.c.id, _OUTBOX.c.payload, _OUTBOX.c.created_at)
    .where(_OUTBOX.c.kind == "event")
    .order_by(_OUTBOX.c.id)
    .limit(_BATCH)
)
_JOB_ROWS = (
    select(_OUTBOX.c.id, _OUTBOX.c.payload)
    .where(_OUTBOX.c.kind == "job", _OUTBOX.c.attempts < MAX_JOB_ATTEMPTS)
    .order_by(_OUTBOX.c.id)
    .limit(_BATCH)
    .with_for_update(skip_locked=True)
)
_DELETE_ROWS = delete(_OUTBOX).where(_OUTBOX.c.id.in_(bindparam("ids", expanding=True)))


_relay_lock = threading.Lock()

# PostgreSQL moves a batch of events from the outbox into the log in one statement committed
# on its own: the ``events`` counter's row lock, which orders relays across processes so that
# ids grow in commit order, is then held for that statement only — never while this process
# waits for its GIL between statements, which under load was longer than the work itself.
_MOVE_EVENTS_POSTGRESQL = text(
    """
    WITH claimed AS (
        DELETE FROM outbox
        WHERE id IN (
            SELECT id FROM outbox WHERE kind = 'event'
            ORDER BY id LIMIT :batch FOR UPDATE SKIP LOCKED
        )
        RETURNING id, payload, created_at
    ), numbered AS (
        SELECT row_number() OVER (ORDER BY id) AS n, count(*) OVER () AS total,
               payload, created_at
        FROM claimed
    ), counter AS (
        INSERT INTO counters (name, value)
        SELECT :counter, count(*) FROM claimed HAVING count(*) > 0
        ON CONFLICT (name) DO UPDATE SET value = counters.value + excluded.value
        RETURNING value
    )
    INSERT INTO events (id, topic, type, payload, created_at)
    SELECT counter.value - numbered.total + numbered.n, numbered.payload ->> 'topic',
           numbered.payload ->> 'type', numbered.payload -> 'data', numbered.created_at
    FROM numbered CROSS JOIN counter
    RETURNING id, topic, type, payload, created_at
    """
).columns(_EVENTS.c.id, _EVENTS.c.topic, _EVENTS.c.type, _EVENTS.c.payload, _EVENTS.c.created_at)


def _move_events(connection: Connection) -> list[dict[str, Any]]:
    """Up to one batch of events from the outbox into the log, with their ids; wire form."""
    if connection.dialect.name == "postgresql":
        connection.execution_options(isolation_level="AUTOCOMMIT")
        try:
            rows = connection.execute(
                _MOVE_EVENTS_POSTGRESQL, {"batch": _BATCH, "counter": "events"}
            ).all()
            connection.commit()
        finally:
            connection.execution_options(isolation_level=connection.default_isolation_level)
        return sorted(
            (_message(r.id, r.topic, r.type, r.payload, r.created_at) for r in rows),
            key=lambda m: m["id"],
        )
    # SQLite: the transaction holds the database's one write lock from its first statement.
    with connection.begin():
        rows = connection.execute(_EVENT_ROWS).all()
        if not rows:
            return []
        first_id = counters.increment(connection, "events", len(rows)) - len(rows) + 1
        messages = [
            _message(
                first_id + i, r.payload["topic"], r.payload["type"], r.payload["data"], r.created_at
            )
            for i, r in enumerate(rows)
        ]
        connection.execute(
            insert(_EVENTS),
            [
                {
                    "id": m["id"],
                    "topic": m["topic"],
                    "type": m["type"],
                    "payload": m["data"],
                    "created_at": r.created_at,
                }
                for m, r in zip(messages, rows, strict=True)
            ],
        )
        connection.execute(_DELETE_ROWS, {"ids": [r.id for r in rows]})
    return messages


def _relay_jobs(connection: Connection) -> int:
    """Up to one batch of jobs to rq; rows Redis did not take stay, with their error.

    The rows stay locked until rq has them, so that two processes never hand rq the same
    jobs; should the commit fail after rq took a job, the row is relayed again and rq ignores
    the job's repeated id.
    """
    with connection.begin():
        rows = connection.execute(_JOB_ROWS).all()
        delivered, _failed = _deliver_jobs(connection, rows)
        if delivered:
            connection.execute(_DELETE_ROWS, {"ids": delivered})
    if delivered:
        metrics.JOBS_ENQUEUED.inc(len(delivered))
    return len(delivered)


def relay_once(kinds: frozenset[str] | set[str] = KINDS) -> int:
    """Deliver what the outbox holds now (up to one batch of each of ``kinds``); returns how
    many messages left it. Events are published once their ids are committed.

    One pooled connection for the whole pass, used through SQLAlchemy Core: the pass runs
    after nearly every commit, and a session and a second checkout cost more than its
    statements.
    """
    moved = 0
    with _relay_lock, get_engine().connect() as connection:
        if "event" in kinds:
            messages = _move_events(connection)
            _publish(messages)
            moved += len(messages)
        if "job" in kinds:
            moved += _relay_jobs(connection)
    return moved


def relay_pending(kinds: frozenset[str] | set[str] = KINDS) -> int:
    """Relay batch after batch until the outbox has nothing more to give right now."""
    total = 0
    while True:
        moved = relay_once(kinds)
        total += moved
        if moved < _BATCH:
            return total


def watch_redis() -> None:
    """One look at the Redis server (see :class:`hotline.core.reconcile.RedisWatch`)."""
    try:
        reconcile.watch.check(get_redis())
    except (redis.RedisError, OSError, RuntimeError) as exc:
        log.debug("Redis not watched this time: %s", exc)
    except Exception:  # noqa: BLE001 - e.g. the database is away: the next look tries again
        log.exception("asking again for the scheduled jobs of a new Redis failed")


def pending_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(OutboxMessage)) or 0


class _Relayer:
    """The relay thread of this process, started on first use.

    Passes are numbered: ``asked`` counts requests for a pass, ``done`` the requests the last
    finished pass covered. A pass covers every request made before it began, so a thread that
    committed, then asked, knows its rows were looked at once ``done`` reaches its number.
    A pass looks only at the kinds its requests staged (a commit with events alone costs no
    query for jobs); the retry poller asks for every kind.
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._asked = 0
        self._done = 0
        self._kinds: set[str] = set()
        self._thread: threading.Thread | None = None
        self.passes = 0  # passes run so far, for tests and for a debugger

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="outbox-relay", daemon=True)
            self._thread.start()

    def wake(self, kinds: frozenset[str] | set[str] = KINDS) -> int:
        """Ask for a pass over ``kinds``; returns its number for :meth:`wait`."""
        with self._condition:
            self._ensure_thread()
            self._asked += 1
            self._kinds.update(kinds)
            self._condition.notify_all()
            return self._asked

    def wait(self, number: int, timeout: float = _WAIT_SECONDS) -> bool:
        with self._condition:
            return self._condition.wait_for(lambda: self._done >= number, timeout)

    def relay_and_wait(self, kinds: frozenset[str] | set[str] = KINDS) -> None:
        number = self.wake(kinds)
        if threading.current_thread() is self._thread:
            return  # staged by the relay pass itself: the next pass takes it, nobody waits
        if not self.wait(number):
            log.warning("outbox relay did not finish within %.0f s; it will retry", _WAIT_SECONDS)

    def _run(self) -> None:
        while True:
            with self._condition:
                self._condition.wait_for(lambda: self._asked > self._done)
                covers, kinds, self._kinds = self._asked, self._kinds, set()
            _relay_logged(relay_pending, kinds)
            with self._condition:
                self._done = covers
                self.passes += 1
                self._condition.notify_all()


def _relay_logged(relay, *args: Any) -> None:
    try:
        relay(*args)
    except Exception:  # noqa: BLE001 - logged, the rows stay in the outbox and are retried
        log.exception("outbox relay failed; it will be retried")


_process_relayer: _Relayer | None = None
_process_relayer_lock = threading.Lock()


def _relayer() -> _Relayer:
    global _process_relayer
    relayer = _process_relayer
    if relayer is None:
        with _process_relayer_lock:
            if _process_relayer is None:
                _process_relayer = _Relayer()
            relayer = _process_relayer
    return relayer


def _forget_relayer_in_child() -> None:
    # A forked child (an rq work-horse) has none of its parent's threads, and a lock the
    # parent's relay thread held at the fork would stay locked for ever in the child.
    global _process_relayer, _process_relayer_lock, _relay_lock
    _process_relayer = None
    _process_relayer_lock = threading.Lock()
    _relay_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_relayer_in_child)


class RelayThread(threading.Thread):
    """Retries the outbox in the background of a long-running process (API or worker).

    It only wakes the process's relay thread: rows Redis did not take, or rows of a process
    that died between its commit and its relay, leave on the next pass. Every
    ``redis_watch_seconds`` it also looks whether Redis is a server this process has not seen
    before, which has its scheduled jobs asked for again (hotline.core.reconcile), and which
    starts the embedded server again if it was killed.
    """

    def __init__(self, interval: float | None = None) -> None:
        super().__init__(name="outbox-retry", daemon=True)
        self.interval = interval or get_settings().outbox_poll_seconds
        self.watch_interval = get_settings().redis_watch_seconds
        self.stopped = threading.Event()

    def run(self) -> None:
        next_watch = time.monotonic()
        while True:
            if self.watch_interval and time.monotonic() >= next_watch:
                watch_redis()
                next_watch = time.monotonic() + self.watch_interval
            if self.stopped.wait(self.interval):
                return
            _relayer().wake()

    def stop(self) -> None:
        self.stopped.set()
