"""The event bus: events published after commit, each with an increasing id kept in the database.

A consumer keeps the id of the last event it saw; ``events_after`` gives it everything after
that id, which is how a reconnecting console catches up and how a gateway fills the gaps left
while Redis was unreachable.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

import redis
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from hotline.core import outbox
from hotline.core.models import Event
from hotline.core.outbox import event_message, events_channel
from hotline.core.redis import get_redis


def publish_after_commit(session: Session, topic: str, type: str, data: dict[str, Any]) -> None:
    """Publish ``type`` on ``topic`` once the current transaction commits (never if it rolls back).

    Topics are hierarchical strings such as ``tickets.dept.XZ-MARKET`` or ``kpi.wall``; the
    websocket gateway filters them by the subscriber's role and department.
    """
    outbox.add(session, "event", {"topic": topic, "type": type, "data": data})


def events_after(
    session: Session, after_id: int, *, topics: Iterable[str], limit: int = 1000
) -> list[dict[str, Any]]:
    """Events with an id greater than ``after_id``, oldest first, on the topic patterns given.

    No pattern means no event: an empty list is what narrowing a request to what a caller may
    see yields when nothing is left, so it must never read as "no filter" (security issue 17).
    Every topic is ``all_events_after``, a separate function, so nobody can ask for it by
    accident.
    """
    if isinstance(topics, str):
        raise TypeError("topics is a collection of patterns, not one string")
    patterns = list(topics)
    if not patterns:
        return []
    query = (
        select(Event)
        .where(
            Event.id > after_id,
            or_(
                *[
                    Event.topic.startswith(p, autoescape=True)
                    if p.endswith(".")
                    else Event.topic == p
                    for p in patterns
                ]
            ),
        )
        .order_by(Event.id)
        .limit(limit)
    )
    return [event_message(ev) for ev in session.scalars(query)]


def all_events_after(session: Session, after_id: int, *, limit: int = 1000) -> list[dict[str, Any]]:
    """Every event with an id greater than ``after_id``, whatever its topic, oldest first.

    For the gateway's own catch-up (it filters per client afterwards) and for tests; never for
    what a caller asked for.
    """
    query = select(Event).where(Event.id > after_id).order_by(Event.id).limit(limit)
    return [event_message(ev) for ev in session.scalars(query)]


def topic_matches(topic: str, pattern: str) -> bool:
    """``pattern`` ending in '.' matches a whole branch; otherwise it must equal the topic."""
    return topic.startswith(pattern) if pattern.endswith(".") else topic == pattern


def last_event_id(session: Session) -> int:
    return session.scalar(select(func.max(Event.id))) or 0


def subscribe(client: redis.Redis | None = None) -> Iterator[dict[str, Any]]:
    """Yield live events from Redis pub/sub (blocking); the caller fills gaps by id."""
    pubsub = (client or get_redis()).pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(events_channel())
    try:
        for message in pubsub.listen():
            if message.get("type") == "message":
                yield json.loads(message["data"])
    finally:
        pubsub.close()
