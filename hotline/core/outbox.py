"""The transactional outbox: jobs and events leave the database only after their commit.

A service writes an ``OutboxMessage`` in the caller's transaction. After the commit, the relay
moves events into the ``events`` log (giving them increasing ids) and publishes them over Redis
pub/sub, and hands jobs to rq. Rows Redis did not take stay in the outbox and are retried by
the relay thread of every long-running process, so a job asked for while Redis was down runs
once Redis is back. A rolled-back transaction takes its outbox rows with it: nothing is sent.
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import datetime
from typing import Any

import redis
from rq import Queue, Retry
from rq.exceptions import DuplicateJobError
from sqlalchemy import delete, event, func, select
from sqlalchemy.orm import Session

from hotline.core import counters, metrics
from hotline.core.db import new_session
from hotline.core.models import Event, OutboxMessage
from hotline.core.redis import get_redis
from hotline.core.settings import get_settings

log = logging.getLogger(__name__)

EVENTS_CHANNEL = "hotline:events"
_PENDING_FLAG = "hotline.outbox_pending"
_BATCH = 500
# A job row rq refused this often stays in the outbox for an operator (see /healthz) instead
# of being retried for ever; Redis outages do not count towards it.
MAX_JOB_ATTEMPTS = 20


def add(session: Session, kind: str, payload: dict[str, Any]) -> None:
    """Stage a message in the session's transaction; it is relayed after a successful commit."""
    session.add(OutboxMessage(kind=kind, payload=payload))
    session.info[_PENDING_FLAG] = True


@event.listens_for(Session, "after_commit")
def _relay_after_commit(session: Session) -> None:
    if session.info.pop(_PENDING_FLAG, False):
        # The caller's data is safely committed by now; delivery problems must not surface as
        # an error of its request, the retry thread will pick up whatever is left.
        try:
            relay_once()
        except Exception:  # noqa: BLE001 - logged and retried later, never lost
            log.exception("outbox relay failed right after commit; it will be retried")


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    session.info.pop(_PENDING_FLAG, None)


def _next_event_ids(session: Session, count: int) -> int:
    """Reserve ``count`` ids and return the first; the row lock orders relays across processes."""
    return counters.increment(session, "events", count) - count + 1


def _relay_events(session: Session) -> list[Event]:
    rows = session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.kind == "event")
        .order_by(OutboxMessage.id)
        .limit(_BATCH)
        .with_for_update(skip_locked=True)
    ).all()
    if not rows:
        return []
    first_id = _next_event_ids(session, len(rows))
    events = [
        Event(
            id=first_id + i,
            topic=row.payload["topic"],
            type=row.payload["type"],
            payload=row.payload["data"],
            created_at=row.created_at,
        )
        for i, row in enumerate(rows)
    ]
    session.add_all(events)
    session.execute(delete(OutboxMessage).where(OutboxMessage.id.in_([r.id for r in rows])))
    return events


def event_message(ev: Event) -> dict[str, Any]:
    """The wire form of an event, the same on pub/sub, in the catch-up API and on websockets."""
    return {
        "id": ev.id,
        "topic": ev.topic,
        "type": ev.type,
        "data": ev.payload,
        "at": ev.created_at.isoformat() if ev.created_at else None,
    }


def _publish(events: list[Event]) -> None:
    if not events:
        return
    try:
        pipe = get_redis().pipeline(transaction=False)
        for ev in events:
            pipe.publish(EVENTS_CHANNEL, json.dumps(event_message(ev), ensure_ascii=False))
        pipe.execute()
        metrics.EVENTS_PUBLISHED.inc(len(events))
    except (redis.RedisError, OSError, RuntimeError) as exc:
        # Events are already in the log; subscribers catch up from it by id when Redis is back.
        log.warning("could not publish %d events over Redis: %s", len(events), exc)


def _enqueue(payload: dict[str, Any]) -> None:
    queue = Queue(payload.get("queue", "default"), connection=get_redis())
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


def _relay_jobs(session: Session) -> tuple[int, bool]:
    rows = session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.kind == "job", OutboxMessage.attempts < MAX_JOB_ATTEMPTS)
        .order_by(OutboxMessage.id)
        .limit(_BATCH)
        .with_for_update(skip_locked=True)
    ).all()
    delivered: list[int] = []
    failed = False
    for row in rows:
        try:
            _enqueue(row.payload)
        except (redis.RedisError, OSError, RuntimeError) as exc:
            row.last_error = f"{type(exc).__name__}: {exc}"[:1000]
            failed = True
            break  # Redis is unreachable: keep order, try the rest later
        except Exception as exc:  # noqa: BLE001 - a malformed job must not block the others
            row.attempts += 1
            row.last_error = f"{type(exc).__name__}: {exc}"[:1000]
            log.error("outbox job %s refused by rq: %s", row.id, row.last_error)
            continue
        delivered.append(row.id)
    if delivered:
        session.execute(delete(OutboxMessage).where(OutboxMessage.id.in_(delivered)))
        metrics.JOBS_ENQUEUED.inc(len(delivered))
    return len(delivered), failed


_relay_lock = threading.Lock()


def relay_once() -> int:
    """Deliver what the outbox holds now; returns how many messages left it."""
    with _relay_lock:
        session = new_session()
        try:
            events = _relay_events(session)
            session.commit()
        except Exception:
            session.rollback()
            raise
        finally:
            session.close()
        _publish(events)
        session = new_session()
        try:
            jobs, _failed = _relay_jobs(session)
            session.commit()
        except Exception:
            session.rollback()
            raise
        finally:
            session.close()
        return len(events) + jobs


def pending_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(OutboxMessage)) or 0


class RelayThread(threading.Thread):
    """Retries the outbox in the background of a long-running process (API or worker)."""

    def __init__(self, interval: float | None = None) -> None:
        super().__init__(name="outbox-relay", daemon=True)
        self.interval = interval or get_settings().outbox_poll_seconds
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                relay_once()
            except Exception as exc:  # noqa: BLE001 - a database blip must not kill the thread
                log.warning("outbox relay: %s", exc)

    def stop(self) -> None:
        self.stopped.set()
