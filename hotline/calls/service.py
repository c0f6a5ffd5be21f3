"""Call intake: events from the telephony system, the requests derived from them, agents, queues.

Terms owned here: 专席 specialist seat (a queue for one line of business: 社保专席 social
security ``social_security``, 综合专席 the general desk ``general``); 一号接听 "one number
answers all": other hotlines merged into 12345 (12315, 12333 …), each a queue of its own.

The requests of a call are derived again from ALL its events each time one arrives. That makes
the result independent of the order and timing in which events reach us: a late ``answered``
or a repeated ``offered`` changes nothing but what the events themselves say. The hourly KPI
buckets are updated by the difference between the old and the new derivation.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import zlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator
from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    case,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy import event as orm_events
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from dispatch.tickets import service as ticket_service
from hotline.calls.models import (
    AgentStateChange,
    AgentStatus,
    CallEvent,
    CallOffer,
    HotlineQueue,
    KpiBucket,
)
from hotline.core.db import utcnow
from hotline.core.errors import AppError, NotFound
from hotline.core.events import publish_after_commit
from hotline.core.models import Counter, User, UserRole
from hotline.core.moments import Moment
from hotline.core.settings import get_settings

log = logging.getLogger(__name__)

EVENT_TYPES = (
    "offered",
    "answered",
    "abandoned",
    "ended",
    "transferred",
    "ivr_entered",
    "ivr_selected",
)
# Events stamped with the same instant are applied in the order a call lives through them.
_ORDER = {
    t: i
    for i, t in enumerate(
        ("ivr_entered", "ivr_selected", "offered", "answered", "abandoned", "transferred", "ended")
    )
}
AGENT_STATES = ("logged_out", "ready", "on_call", "after_call_work", "break")

DEFAULT_QUEUES = [
    {"code": "general", "name": "综合专席", "number": "12345"},
    {
        "code": "social_security",
        "name": "社保专席",
        "number": "12345",
        "overflow_to": "general",
        "overflow_after_seconds": 30,
    },
]


class CallEventIn(BaseModel):
    """One event from the telephony system (CTI)."""

    event_id: str = Field(min_length=1, max_length=64)
    type: Literal[
        "offered", "answered", "abandoned", "ended", "transferred", "ivr_entered", "ivr_selected"
    ]
    call_id: str = Field(min_length=1, max_length=64)
    at: Moment
    queue: str | None = Field(None, max_length=32)
    agent: str | None = Field(None, max_length=64)
    caller: str | None = Field(None, max_length=32)
    option: str | None = Field(None, max_length=32, description="ivr_selected: the key pressed")
    reason: str | None = Field(None, max_length=32, description="abandoned: e.g. timeout")

    @field_validator("at", mode="before")
    @classmethod
    def _iso_text(cls, value: Any) -> Any:
        # pydantic would read 0, 1.7e9 or "000…0" as seconds since 1970: a telephony system
        # that sends that has a bug, and the call would be counted in the wrong year.
        if isinstance(value, datetime):
            return value  # from our own importers
        if not isinstance(value, str) or value.strip().lstrip("+-").replace(".", "").isdigit():
            raise ValueError(
                "`at` must be an ISO 8601 time with offset, e.g. 2026-11-28T09:00:00+08:00"
            )
        return value

    @field_validator("at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("`at` needs a time zone offset, e.g. 2026-11-28T09:00:00+08:00")
        return value.astimezone(UTC)

    @field_validator("event_id", "call_id", "queue", "agent", "caller", "option", "reason")
    @classmethod
    def _no_nul(cls, value: str | None) -> str | None:
        # PostgreSQL cannot store U+0000. The app's NUL guard leaves this route's bodies to
        # us, so that one such event is refused on its own and the rest of the batch stays.
        if value is not None and "\x00" in value:
            raise ValueError("NUL characters (U+0000) are not allowed")
        return value

    def check(self) -> None:
        if self.type in ("offered", "transferred") and not self.queue:
            raise ValueError(f"a `{self.type}` event needs `queue`")
        if self.type == "answered" and not self.agent:
            raise ValueError("an `answered` event needs `agent` (the agent's user name)")


@dataclass
class DerivedOffer:
    seq: int
    queue: str
    offered_at: datetime
    caller: str | None
    answered_at: datetime | None = None
    agent: str | None = None
    abandoned_at: datetime | None = None
    transferred_at: datetime | None = None
    ended_at: datetime | None = None
    timeout: bool = False
    overflowed_from: str | None = None
    # Started by a transfer: the caller's re-entry (an ``offered``) may still come and
    # starts the wait; not a column.
    awaiting_entry: bool = False

    @property
    def settled(self) -> bool:
        return bool(self.answered_at or self.abandoned_at or self.transferred_at or self.ended_at)

    @property
    def outcome(self) -> str:
        if self.answered_at:
            return "answered" if self.ended_at or self.transferred_at else "talking"
        if self.abandoned_at:
            return "timeout" if self.timeout else "abandoned"
        if self.transferred_at:
            return "transferred"
        return "waiting"

    @property
    def wait_seconds(self) -> float | None:
        end = self.answered_at or self.abandoned_at or self.transferred_at
        return (end - self.offered_at).total_seconds() if end else None

    @property
    def talk_seconds(self) -> float | None:
        if self.answered_at and (self.ended_at or self.transferred_at):
            return ((self.transferred_at or self.ended_at) - self.answered_at).total_seconds()
        return None

    def columns(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "queue": self.queue,
            "caller": self.caller,
            "offered_at": self.offered_at,
            "answered_at": self.answered_at,
            "agent": self.agent,
            "abandoned_at": self.abandoned_at,
            "transferred_at": self.transferred_at,
            "ended_at": self.ended_at,
            "wait_seconds": self.wait_seconds,
            "talk_seconds": self.talk_seconds,
            "outcome": self.outcome,
            "overflowed_from": self.overflowed_from,
        }


# Events stamped with the same instant (whole-second PBX clocks) are applied in the order
# that follows the call's legs from the state the call is in: a waiting caller's entry (an
# overflow, or the re-entry after a transfer) before its answer; a talking leg's end and its
# transfer before the next leg's entry and answer.
_SAME_INSTANT_ORDER = {
    state: {t: i for i, t in enumerate(("ivr_entered", "ivr_selected", *order))}
    for state, order in {
        "none": ("offered", "transferred", "answered", "abandoned", "ended"),
        "waiting": ("offered", "answered", "abandoned", "transferred", "ended"),
        "talking": ("ended", "transferred", "offered", "answered", "abandoned"),
        "done": ("offered", "transferred", "answered", "abandoned", "ended"),
    }.items()
}


def _leg_state(current: DerivedOffer | None) -> str:
    if current is None:
        return "none"
    if current.answered_at is None:
        return "done" if current.abandoned_at or current.ended_at else "waiting"
    return "done" if current.ended_at or current.transferred_at else "talking"


def derive_offers(events: Iterable[CallEvent | CallEventIn | Row]) -> list[DerivedOffer]:
    """The requests one call made of agent queues, from its events in any order.

    Rules (docs/kpi.md states them for readers of the figures):

    - An ``offered`` while the caller is waiting is an overflow (same request, new queue); the
      first ``offered`` after a transfer is the caller's re-entry: the request's wait starts
      there, not at the transfer line.
    - A ``transferred`` of an answered (talking) request ends it and offers a new request to
      the target queue; a ``transferred`` while still waiting moves the request like an
      overflow: it counts once, its wait measured from the first entry.
    - A call that ends while waiting was abandoned.
    - A ``transferred`` or ``offered`` repeating the last one (same queue, within the clock
      skew) under a new event id changes nothing.
    - An ``answered`` stamped up to the clock skew before the offer it belongs to (another
      PBX node's clock) answers that offer at wait 0.
    """
    skew = timedelta(seconds=get_settings().clock_skew_seconds)
    ordered = sorted(events, key=lambda e: (e.at, e.event_id))
    offers: list[DerivedOffer] = []
    current: DerivedOffer | None = None
    caller: str | None = None
    last_transfer: tuple[datetime, str | None] | None = None
    held_answer: Any = None  # an answer that came before any offer it could belong to

    def new_leg(queue: str, at: datetime, *, awaiting_entry: bool) -> DerivedOffer:
        leg = DerivedOffer(len(offers), queue, at, caller, awaiting_entry=awaiting_entry)
        offers.append(leg)
        return leg

    def take_held_answer(leg: DerivedOffer) -> None:
        nonlocal held_answer
        if held_answer is not None and leg.offered_at - held_answer.at <= skew:
            leg.answered_at, leg.agent = leg.offered_at, held_answer.agent
            held_answer = None

    index = 0
    while index < len(ordered):
        moment = ordered[index].at
        end = index + 1
        while end < len(ordered) and ordered[end].at == moment:
            end += 1
        pending = ordered[index:end]
        index = end
        while pending:
            if len(pending) == 1:
                event = pending.pop()
            else:
                rank = _SAME_INSTANT_ORDER[_leg_state(current)]
                event = min(pending, key=lambda e: (rank[e.type], e.event_id))
                pending.remove(event)
            caller = caller or event.caller
            state = _leg_state(current)
            if event.type == "offered":
                if state == "waiting":
                    if current.awaiting_entry:
                        current.offered_at, current.queue = event.at, event.queue
                        current.awaiting_entry = False
                        take_held_answer(current)
                    elif event.queue != current.queue:
                        current.overflowed_from = current.overflowed_from or current.queue
                        current.queue = event.queue
                    continue
                if (
                    current is not None
                    and current.queue == event.queue
                    and event.at - current.offered_at <= skew
                ):
                    continue  # the same offer again under another id
                if state == "talking":
                    current.ended_at = event.at  # back in a queue: the talk is over
                current = new_leg(event.queue, event.at, awaiting_entry=False)
                current.caller = event.caller or caller
                take_held_answer(current)
            elif event.type == "transferred":
                if last_transfer and (
                    last_transfer[1] == event.queue and event.at - last_transfer[0] <= skew
                ):
                    continue  # the same transfer again under another id
                last_transfer = (event.at, event.queue)
                if state == "waiting":
                    if event.queue != current.queue:
                        current.overflowed_from = current.overflowed_from or current.queue
                        current.queue = event.queue
                    continue
                if state == "talking":
                    current.transferred_at = event.at
                current = new_leg(event.queue, event.at, awaiting_entry=True)
                take_held_answer(current)
            elif event.type == "answered":
                if state == "waiting":
                    current.answered_at, current.agent = event.at, event.agent
                else:
                    held_answer = event  # its offer may be stamped a little later
            elif event.type == "abandoned":
                if state == "waiting":
                    current.abandoned_at = event.at
                    # Stored events (rows or models) keep the reason in ``data``.
                    reason = (
                        event.reason
                        if isinstance(event, CallEventIn)
                        else (event.data or {}).get("reason")
                    )
                    current.timeout = reason == "timeout"
            elif event.type == "ended" and current is not None and current.ended_at is None:
                current.ended_at = event.at
                if state == "waiting":
                    current.abandoned_at = event.at  # the caller hung up while waiting
    return offers


# -- KPI bucket arithmetic -----------------------------------------------------------------------


# The sums each hourly KPI bucket keeps (hotline.kpi reads them back by these names).
BUCKET_FIELDS = (
    "offered",
    "answered",
    "answered_within",
    "abandoned",
    "short_abandoned",
    "wait_sum",
    "talk_sum",
    "talk_count",
)


def _hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def bucket_contribution(
    offer: CallOffer | DerivedOffer | Row,
) -> tuple[tuple[str, datetime], dict]:
    """What one request adds to its queue's hour, under the configured threshold.

    A request still waiting adds nothing: whether it is a miss, may still be answered in time,
    or is lost (its end never came) depends on the time of reading, so readers count the few
    waiting requests themselves."""
    settings = get_settings()
    if offer.outcome == "waiting":
        return (offer.queue, _hour(offer.offered_at)), dict.fromkeys(BUCKET_FIELDS, 0)
    wait = offer.wait_seconds
    answered = offer.answered_at is not None
    abandoned = offer.abandoned_at is not None and not answered
    short = abandoned and wait is not None and wait < settings.short_abandon_seconds
    talk = offer.talk_seconds
    return (offer.queue, _hour(offer.offered_at)), {
        "offered": 1,
        "answered": int(answered),
        "answered_within": int(
            answered and wait is not None and wait <= settings.answer_threshold_seconds
        ),
        "abandoned": int(abandoned),
        "short_abandoned": int(short),
        "wait_sum": wait if answered and wait is not None else 0.0,
        "talk_sum": talk or 0.0,
        "talk_count": int(talk is not None),
    }


# Bucket rows at this shard offset and above hold the first-queue correction of each (queue,
# hour): for a request that overflowed (or moved while waiting) from F to A, +its contribution
# in F and -it in A. A queue's figures by the queue the caller first entered are its own rows
# plus these; over all queues they cancel out. Kept beside the answering queue's rows so a
# year's first-queue figure reads the same few bucket rows (no scan of the requests).
FIRST_QUEUE_SHARD = 100


def first_queue_corrections(
    offer: CallOffer | DerivedOffer | Row,
) -> list[tuple[tuple[str, datetime], dict]]:
    """What a request that was moved while waiting adds to the first-queue correction rows."""
    first = offer.overflowed_from
    if not first or first == offer.queue:
        return []
    (_queue, hour), values = bucket_contribution(offer)
    return [((first, hour), values), ((offer.queue, hour), {n: -v for n, v in values.items()})]


def _contributions(
    offer: CallOffer | DerivedOffer | Row,
) -> list[tuple[tuple[str, datetime, int], dict]]:
    """Every bucket row (queue, hour, layer) one request adds to: its answering queue's
    (layer 0) and the first-queue corrections (layer FIRST_QUEUE_SHARD)."""
    (queue, hour), values = bucket_contribution(offer)
    rows = [((queue, hour, 0), values)]
    for (q, h), v in first_queue_corrections(offer):
        rows.append(((q, h, FIRST_QUEUE_SHARD), v))
    return rows


def offer_conditions() -> dict[str, ColumnElement[bool]]:
    """How ``bucket_contribution`` tells requests apart, as SQL conditions on ``CallOffer``
    under the configured thresholds: the one place the database's counts are defined."""
    settings = get_settings()
    answered = CallOffer.answered_at.is_not(None)
    abandoned = and_(CallOffer.abandoned_at.is_not(None), CallOffer.answered_at.is_(None))
    wait_known = CallOffer.wait_seconds.is_not(None)
    return {
        "answered": answered,
        "answered_within": and_(
            answered, wait_known, CallOffer.wait_seconds <= settings.answer_threshold_seconds
        ),
        "abandoned": abandoned,
        "short_abandoned": and_(
            abandoned, wait_known, CallOffer.wait_seconds < settings.short_abandon_seconds
        ),
        "answered_wait_known": and_(answered, wait_known),
    }


def bucket_contribution_columns() -> dict[str, ColumnElement]:
    """``bucket_contribution`` as SQL over ``CallOffer`` rows, field by field, so the figures
    of many requests are summed by the database (the wall sums the last hour's every second).
    The two must agree; tests hold them to it."""
    when = offer_conditions()

    def one_if(condition: ColumnElement[bool]) -> ColumnElement:
        return case((condition, 1), else_=0)

    return {
        "offered": case((CallOffer.outcome == "waiting", 0), else_=1),
        "answered": one_if(when["answered"]),
        "answered_within": one_if(when["answered_within"]),
        "abandoned": one_if(when["abandoned"]),
        "short_abandoned": one_if(when["short_abandoned"]),
        "wait_sum": case((when["answered_wait_known"], CallOffer.wait_seconds), else_=0.0),
        "talk_sum": func.coalesce(CallOffer.talk_seconds, 0.0),
        "talk_count": one_if(CallOffer.talk_seconds.is_not(None)),
    }


# On PostgreSQL concurrent intakes pick one of these rows per (queue, hour) at random, so two
# of them wait on each other's bucket lock only one time in this many. SQLite serialises
# writers anyway; there a single row keeps the table small.
POSTGRES_BUCKET_SHARDS = 16


_STAGED_BUCKETS = "hotline.kpi_bucket_deltas"  # session.info key


def _apply_bucket_deltas(session: Session, deltas: dict[tuple[str, datetime, int], dict]) -> None:
    """Add ``deltas`` to the KPI buckets when the transaction commits (see write_staged_buckets).

    Staged, not written now: the upsert locks its bucket row until the commit, and an intake
    that locked it early held it through the rest of its statements, each waiting for the
    process's GIL. Under the typhoon load the intakes then queued on the bucket rows, which
    made them slower, which made them hold the locks longer, until latency ran away.
    """
    staged = session.info.setdefault(_STAGED_BUCKETS, {})
    for key, values in deltas.items():
        bucket = staged.setdefault(key, {})
        for name, value in values.items():
            bucket[name] = bucket.get(name, 0) + value


def write_staged_buckets(session: Session) -> None:
    """Write the staged bucket deltas now: before the commit, or before reading the buckets
    in the same transaction."""
    deltas = session.info.pop(_STAGED_BUCKETS, None)
    if not deltas:
        return
    if ensure_bucket_basis(session):
        return  # recounted from the requests, this transaction's own included
    dialect = session.get_bind().dialect.name
    shard = random.randrange(POSTGRES_BUCKET_SHARDS) if dialect == "postgresql" else 0
    # Key order: two intakes touching the same hours lock them in the same order, never
    # crosswise into a deadlock.
    rows = [
        {"queue": queue, "hour": hour, "shard": layer + shard, **values}
        for (queue, hour, layer), values in sorted(deltas.items(), key=lambda item: item[0])
        if any(values.values())
    ]
    if not rows:
        return
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(KpiBucket)
    columns = [c for c in rows[0] if c not in ("queue", "hour", "shard")]
    statement = statement.on_conflict_do_update(
        index_elements=["queue", "hour", "shard"],
        set_={c: getattr(KpiBucket, c) + getattr(statement.excluded, c) for c in columns},
    )
    session.execute(statement, rows)


def discard_staged_buckets(session: Session) -> None:
    """Forget the staged deltas (the buckets are being rebuilt from the requests)."""
    session.info.pop(_STAGED_BUCKETS, None)


@orm_events.listens_for(Session, "before_commit")
def _write_staged_buckets_before_commit(session: Session) -> None:
    write_staged_buckets(session)


@orm_events.listens_for(Session, "after_rollback")
def _forget_staged_buckets(session: Session) -> None:
    discard_staged_buckets(session)


# -- what the buckets were counted under ---------------------------------------------------------

# Raise when derive_offers or bucket_contribution change what they make of the same events:
# stored requests and buckets are then derived again on the next start or read.
# 2: same-instant order by legs, re-entry after a transfer, transfers while waiting, repeats
#    by content, clock skew, waiting requests kept out of the buckets.
DERIVATION_VERSION = 2
# Raise when the bucket rows kept change (the requests stay as derived): only a recount.
# 2: first-queue correction rows (FIRST_QUEUE_SHARD).
BUCKET_LAYOUT = 2
_BASIS = {
    "kpi_basis.answer_threshold_seconds": lambda s: s.answer_threshold_seconds,
    "kpi_basis.short_abandon_seconds": lambda s: s.short_abandon_seconds,
    "kpi_basis.derivation": lambda s: DERIVATION_VERSION,
    "kpi_basis.bucket_layout": lambda s: BUCKET_LAYOUT,
}
_BASIS_LOCK_KEY = 0x6B706962  # any constant; shared by every process of one database
_basis_lock = threading.Lock()
_basis_checked: tuple[int, ...] | None = None


def bucket_basis() -> dict[str, int]:
    settings = get_settings()
    return {name: int(value(settings)) for name, value in _BASIS.items()}


def ensure_bucket_basis(session: Session) -> bool:
    """Make the stored hourly sums agree with the settings that decide what counts (the answer
    threshold, the short-abandon limit) and with the derivation's rules; True if it recounted.

    The settings the sums were built with are kept beside them (``counters``). When they
    differ from this process's, every bucket is recounted from the requests (and the requests
    derived again from their events if the rules changed), with a log line: a changed
    setting takes effect at the next start or read, without ``hotline kpi rebuild``.
    Checked once per process and settings, so the cost is one dictionary lookup afterwards.
    """
    global _basis_checked
    wanted = bucket_basis()
    key = tuple(wanted.values())
    if _basis_checked == key:
        return False
    with _basis_lock:
        if session.get_bind().dialect.name == "postgresql":
            # Two processes started with the same new settings recount once, not twice.
            session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _BASIS_LOCK_KEY})
        stored = dict(
            session.execute(
                select(Counter.name, Counter.value).where(Counter.name.in_(list(wanted)))
            ).all()
        )
        recounted = False
        if stored != wanted:
            has_data = session.scalar(select(CallOffer.id).limit(1)) is not None
            if has_data:
                rules = stored.get("kpi_basis.derivation")
                log.warning(
                    "the answer-rate sums were counted under %s, the settings now say %s: "
                    "recounting them%s",
                    stored or "unknown settings",
                    wanted,
                    " and deriving the requests again" if rules != DERIVATION_VERSION else "",
                )
                started = time.monotonic()
                if rules != DERIVATION_VERSION:
                    rederive_all(session)
                count = recount_buckets(session)
                log.warning(
                    "recounted the answer-rate sums from %d requests in %.1f s",
                    count,
                    time.monotonic() - started,
                )
                recounted = True
            _store_basis(session, wanted)
        _basis_checked = key
        return recounted


def _store_basis(session: Session, basis: dict[str, int]) -> None:
    insert_ = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert_(Counter)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["name"], set_={"value": statement.excluded.value}
        ),
        [{"name": name, "value": value} for name, value in basis.items()],
    )


def store_bucket_thresholds(session: Session) -> None:
    """Record that the buckets were just counted under this process's thresholds."""
    wanted = bucket_basis()
    _store_basis(session, {k: v for k, v in wanted.items() if k != "kpi_basis.derivation"})


def forget_bucket_basis() -> None:
    """Check the stored basis again at the next read or write (tests that empty the tables)."""
    global _basis_checked
    with _basis_lock:
        _basis_checked = None


def rederive_all(session: Session, *, chunk: int = 500) -> int:
    """Derive every call's requests again from its stored events (after a rules change)."""
    call_ids = list(session.scalars(select(CallEvent.call_id).distinct()))
    for start in range(0, len(call_ids), chunk):
        _rederive(session, call_ids[start : start + chunk])
    return len(call_ids)


def recount_buckets(session: Session) -> int:
    """Recompute every bucket from the requests under the current settings; how many
    requests were counted."""
    discard_staged_buckets(session)  # recounted from the requests below
    session.execute(delete(KpiBucket))
    sums: dict[tuple[str, datetime, int], dict[str, float]] = {}
    count = 0
    columns = (
        CallOffer.queue,
        CallOffer.offered_at,
        CallOffer.answered_at,
        CallOffer.abandoned_at,
        CallOffer.outcome,
        CallOffer.wait_seconds,
        CallOffer.talk_seconds,
        CallOffer.overflowed_from,
    )
    for offer in session.execute(select(*columns).execution_options(yield_per=5000)):
        for key, values in _contributions(offer):
            bucket = sums.setdefault(key, dict.fromkeys(BUCKET_FIELDS, 0))
            for name, value in values.items():
                bucket[name] += value
        count += 1
    rows = [
        {"queue": queue, "hour": hour, "shard": layer, **values}
        for (queue, hour, layer), values in sums.items()
        if any(values.values())
    ]
    for start in range(0, len(rows), 5000):
        session.execute(insert(KpiBucket), rows[start : start + 5000])
    return count


# -- ingestion ---------------------------------------------------------------------------------


@dataclass
class IngestResult:
    results: list[dict[str, Any]] = field(default_factory=list)
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0


def _lock_calls(session: Session, call_ids: list[str]) -> None:
    """Serialise work on one call across processes (PostgreSQL); SQLite writers are serial."""
    if session.get_bind().dialect.name != "postgresql":
        return
    # One statement for the whole batch rather than a round trip per call, taking the locks
    # in key order so that two batches sharing calls cannot deadlock.
    keys = sorted({zlib.crc32(call_id.encode()) for call_id in call_ids})
    session.execute(
        text(
            "SELECT count(pg_advisory_xact_lock(k)) FROM "
            "(SELECT k FROM unnest(CAST(:keys AS bigint[])) AS k ORDER BY k) AS ordered"
        ),
        {"keys": keys},
    )


def known_queues(session: Session) -> set[str]:
    return set(session.scalars(select(HotlineQueue.code).where(HotlineQueue.active)))


def ingest(
    session: Session, raw_events: list[dict[str, Any]], *, follow_agents: bool = True
) -> IngestResult:
    """Store new events, ignore repeats, refuse bad ones one by one, re-derive touched calls.

    Returns one result per input event, in order: accepted, duplicate or rejected (with why).
    ``follow_agents=False`` is for history (a PBX log import): it must not change agents'
    live states or pop screens for calls long over.
    """
    outcome = IngestResult()
    queues = known_queues(session)
    valid: dict[str, CallEventIn] = {}
    positions: list[tuple[int, str | None]] = []
    for index, raw in enumerate(raw_events):
        try:
            event = CallEventIn.model_validate(raw)
            event.check()
            if (
                event.queue
                and event.type in ("offered", "transferred")
                and event.queue not in queues
            ):
                raise ValueError(f"unknown queue {event.queue!r}; known: {sorted(queues)}")
        except (ValidationError, ValueError) as exc:
            message = _first_error(exc)
            event_id = raw.get("event_id") if isinstance(raw, dict) else None
            outcome.results.append(
                {"index": index, "event_id": event_id, "status": "rejected", "error": message}
            )
            outcome.rejected += 1
            positions.append((index, None))
            continue
        outcome.results.append({"index": index, "event_id": event.event_id, "status": "pending"})
        positions.append((index, event.event_id))
        valid.setdefault(event.event_id, event)
    existing = set()
    if valid:
        existing = set(
            session.scalars(select(CallEvent.event_id).where(CallEvent.event_id.in_(list(valid))))
        )
    fresh: dict[str, CallEventIn] = {}
    for result in outcome.results:
        if result["status"] != "pending":
            continue
        event_id = result["event_id"]
        if event_id in existing or event_id in fresh:
            result["status"] = "duplicate"
            outcome.duplicates += 1
        else:
            fresh[event_id] = valid[event_id]
            result["status"] = "accepted"
            outcome.accepted += 1
    if fresh:
        call_ids = sorted({e.call_id for e in fresh.values()})
        _lock_calls(session, call_ids)
        received_at = utcnow()
        # A bulk INSERT, not one ORM object per event: nothing reads these objects back.
        # render_nulls: by default None values are left out, which splits the batch into a
        # statement per run of rows missing the same columns (370 for 500 events, not one).
        session.execute(
            insert(CallEvent).execution_options(render_nulls=True),
            [
                {
                    "event_id": e.event_id,
                    "call_id": e.call_id,
                    "type": e.type,
                    "at": e.at,
                    "queue": e.queue,
                    "agent": e.agent,
                    "caller": e.caller,
                    "data": {
                        k: v for k, v in {"option": e.option, "reason": e.reason}.items() if v
                    },
                    "received_at": received_at,
                }
                for e in fresh.values()
            ],
        )
        _rederive(session, call_ids)
        if follow_agents:
            _follow_agents(session, list(fresh.values()))
    return outcome


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err.get("loc", ())) or "event"
        return f"{where}: {err.get('msg')}"
    return str(exc)


_EVENT_COLUMNS = (
    CallEvent.call_id,
    CallEvent.event_id,
    CallEvent.type,
    CallEvent.at,
    CallEvent.queue,
    CallEvent.agent,
    CallEvent.caller,
    CallEvent.data,
)
_OFFER_FIELDS = tuple(DerivedOffer(0, "", datetime.min, None).columns())
_OFFER_COLUMNS = (CallOffer.id, CallOffer.call_id) + tuple(
    getattr(CallOffer, name) for name in _OFFER_FIELDS
)


def _rederive(session: Session, call_ids: list[str]) -> None:
    # Plain rows and bulk statements rather than ORM objects: a batch of 500 events touches
    # some 400 calls, and loading, diffing and flushing their objects one by one was most of
    # the cost of intake outside the agents' states.
    events_by_call: dict[str, list[Row]] = defaultdict(list)
    for event in session.execute(select(*_EVENT_COLUMNS).where(CallEvent.call_id.in_(call_ids))):
        events_by_call[event.call_id].append(event)
    old_by_call: dict[str, list[Row]] = defaultdict(list)
    for offer in session.execute(select(*_OFFER_COLUMNS).where(CallOffer.call_id.in_(call_ids))):
        old_by_call[offer.call_id].append(offer)

    deltas: dict[tuple[str, datetime, int], dict] = defaultdict(lambda: defaultdict(float))
    changed_queues: set[str] = set()
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    stale_ids: list[int] = []
    for call_id in call_ids:
        old = {o.seq: o for o in old_by_call.get(call_id, [])}
        for derived in derive_offers(events_by_call[call_id]):
            changed_queues.add(derived.queue)
            columns = derived.columns()
            row = old.pop(derived.seq, None)
            if row is not None:
                if all(getattr(row, name) == value for name, value in columns.items()):
                    continue  # this request is as it was: nothing to write, no delta
                _subtract(deltas, row)
                updates.append({"id": row.id, **columns})
            else:
                inserts.append({"call_id": call_id, **columns})
            for key, values in _contributions(derived):
                for name, value in values.items():
                    deltas[key][name] += value
        for stale in old.values():
            _subtract(deltas, stale)
            stale_ids.append(stale.id)
    if stale_ids:
        session.execute(delete(CallOffer).where(CallOffer.id.in_(stale_ids)))
    if updates:
        session.execute(update(CallOffer), updates)
    if inserts:
        session.execute(insert(CallOffer).execution_options(render_nulls=True), inserts)
    _apply_bucket_deltas(
        session,
        {
            key: {n: (int(v) if n not in ("wait_sum", "talk_sum") else v) for n, v in vals.items()}
            for key, vals in deltas.items()
        },
    )
    if changed_queues:
        publish_after_commit(
            session, "calls.queues", "calls.changed", {"queues": sorted(changed_queues)}
        )


def _subtract(deltas: dict[tuple[str, datetime, int], dict], offer: Row) -> None:
    for key, values in _contributions(offer):
        for name, value in values.items():
            deltas[key][name] -= value


# -- agents ------------------------------------------------------------------------------------


def _follow_agents(session: Session, events: list[CallEventIn]) -> None:
    """An answer puts the agent on the call and pops the caller's screen; a transfer or the
    end of the call puts the agent on it into after-call work.

    The whole batch at once: the agents, the callers and their histories are read up front and
    the state changes are written in one statement, instead of a lookup, a flush and up to
    three queries per event.
    """
    relevant = sorted(
        (
            e
            for e in events
            if (e.type == "answered" and e.agent) or e.type in ("ended", "transferred")
        ),
        key=lambda e: (e.at, _ORDER[e.type]),
    )
    if not relevant:
        return
    answered = [e for e in relevant if e.type == "answered"]
    named = {e.agent for e in answered}
    ended = {e.call_id for e in relevant if e.type != "answered"}
    statuses = {
        s.username: s
        for s in session.scalars(
            select(AgentStatus).where(
                or_(AgentStatus.username.in_(named), AgentStatus.current_call_id.in_(ended))
            )
        )
    }
    callers: dict[str, str | None] = {}
    unknown = {e.call_id for e in answered if not e.caller}
    if unknown:
        for call_id, caller in session.execute(
            select(CallOffer.call_id, CallOffer.caller)
            .where(CallOffer.call_id.in_(unknown))
            .order_by(CallOffer.call_id, CallOffer.seq)
        ):
            callers.setdefault(call_id, caller)
    histories = ticket_service.caller_histories(
        session, (e.caller or callers.get(e.call_id) or "" for e in answered), limit=10
    )
    changes: list[dict[str, Any]] = []

    def change(username: str, state: str, at: datetime, call_id: str | None = None) -> None:
        status = statuses.get(username)
        if status is None:
            status = statuses[username] = AgentStatus(username=username, skills=["general"])
            session.add(status)
        status.state, status.since = state, at
        status.current_call_id = call_id if state == "on_call" else None
        changes.append({"username": username, "state": state, "at": at})
        publish_after_commit(
            session,
            f"calls.agents.{username}",
            "agent.state",
            {"username": username, "state": state},
        )

    for event in relevant:
        if event.type == "answered":
            change(event.agent, "on_call", event.at, event.call_id)
            caller = event.caller or callers.get(event.call_id)
            publish_after_commit(
                session,
                f"agent.{event.agent}",
                "call.answered",
                {"call_id": event.call_id, "caller": caller, "history": histories.get(caller, [])},
            )
        else:
            for status in [s for s in statuses.values() if s.current_call_id == event.call_id]:
                change(status.username, "after_call_work", event.at)
    if changes:
        session.execute(insert(AgentStateChange), changes)
    session.flush()


def set_state(
    session: Session,
    username: str,
    state: str,
    *,
    call_id: str | None = None,
    at: datetime | None = None,
) -> AgentStatus:
    if state not in AGENT_STATES:
        raise AppError("agent.bad_state", f"state must be one of {list(AGENT_STATES)}")
    at = at or utcnow()
    status = session.get(AgentStatus, username)
    if status is None:
        status = AgentStatus(username=username, skills=["general"])
        session.add(status)
    status.state, status.since = state, at
    status.current_call_id = call_id if state == "on_call" else None
    session.add(AgentStateChange(username=username, state=state, at=at))
    session.flush()
    publish_after_commit(
        session, f"calls.agents.{username}", "agent.state", {"username": username, "state": state}
    )
    return status


def agents_by_state(session: Session) -> dict[str, int]:
    """How many agents are in each state (the wall), counted by the database."""
    rows = session.execute(
        select(AgentStatus.state, func.count()).group_by(AgentStatus.state)
    ).all()
    return {state: count for state, count in rows}


def agents(session: Session) -> list[AgentStatus]:
    return list(session.scalars(select(AgentStatus).order_by(AgentStatus.username)))


def require_known_agent(session: Session, username: str) -> None:
    """404 unless ``username`` is a user with the agent role or an agent the telephony system
    has already reported: a state or skills for a made-up name would be a phantom agent on
    the wall and in the staffing figures."""
    if session.get(AgentStatus, username) is not None:
        return
    is_agent = session.scalar(
        select(UserRole.user_id)
        .join(User, User.id == UserRole.user_id)
        .where(User.username == username, UserRole.role == "agent")
        .limit(1)
    )
    if is_agent is None:
        raise NotFound("agent.not_found", f"no agent {username!r}")


def set_skills(session: Session, username: str, skills: list[str]) -> AgentStatus:
    unknown = set(skills) - known_queues(session)
    if unknown:
        raise AppError("agent.unknown_queue", f"unknown queue(s) {sorted(unknown)}")
    status = session.get(AgentStatus, username) or AgentStatus(username=username)
    status.skills = sorted(set(skills))
    session.add(status)
    session.flush()
    return status


# -- queues ------------------------------------------------------------------------------------


def seed_queues(session: Session) -> str:
    """The general desk, the social-security seat and one queue per merged hotline."""
    existing = set(session.scalars(select(HotlineQueue.code)))
    rows = list(DEFAULT_QUEUES)
    for number in get_settings().merged_hotlines:
        rows.append(
            {
                "code": f"h{number}",
                "name": f"{number}热线（一号接听）",
                "number": number,
                "overflow_to": "general",
                "overflow_after_seconds": 60,
            }
        )
    added = [HotlineQueue(**row) for row in rows if row["code"] not in existing]
    session.add_all(added)
    session.flush()
    return f"hotline queues: {len(added)} added" if added else "hotline queues: already loaded"


def queue_state(session: Session, now: datetime | None = None) -> list[dict[str, Any]]:
    """Calls waiting now per queue, each one's wait, and the longest wait."""
    now = now or utcnow()
    # A request waiting longer than this lost its end event: nobody waits for days.
    lost_before = now - timedelta(seconds=get_settings().lost_waiting_seconds)
    waiting: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for offer in session.execute(
        select(CallOffer.call_id, CallOffer.caller, CallOffer.queue, CallOffer.offered_at)
        .where(CallOffer.outcome == "waiting", CallOffer.offered_at > lost_before)
        .order_by(CallOffer.offered_at)
    ):
        waiting[offer.queue].append(
            {
                "call_id": offer.call_id,
                "caller": offer.caller,
                "wait_seconds": max(0.0, (now - offer.offered_at).total_seconds()),
            }
        )
    result = []
    for queue in session.scalars(select(HotlineQueue).order_by(HotlineQueue.code)):
        calls = waiting.get(queue.code, [])
        result.append(
            {
                "queue": queue.code,
                "name": queue.name,
                "number": queue.number,
                "overflow_to": queue.overflow_to,
                "waiting": len(calls),
                "longest_wait_seconds": max((c["wait_seconds"] for c in calls), default=0.0),
                "calls": calls,
            }
        )
    return result


def offers_query(start: datetime, end: datetime, queue: str | None = None) -> Select:
    """The requests offered in [start, end), in order, with the columns of ``CallOffer``;
    callers may narrow it further (``where``, ``limit``) before running it."""
    query = select(*_OFFER_COLUMNS).where(CallOffer.offered_at >= start, CallOffer.offered_at < end)
    if queue:
        query = query.where(CallOffer.queue == queue)
    return query.order_by(CallOffer.offered_at, CallOffer.id)


def offers_in(
    session: Session, start: datetime, end: datetime, queue: str | None = None
) -> list[Row]:
    """The requests offered in [start, end), in order, as read-only rows with the columns of
    ``CallOffer``: the figures read hundreds of them per window, and building ORM objects
    for that cost several times the query."""
    return list(session.execute(offers_query(start, end, queue)))
