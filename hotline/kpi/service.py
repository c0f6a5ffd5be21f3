"""The wall's figures: the 15-second answer rate (15秒接通率) and its companions.

Definition: requests answered by an agent within the threshold (a wait of exactly 15 s counts)
of entering the agent queue, over all requests offered to agent queues in the window —
abandoned and timed-out ones included, a transfer counting as a new request, abandons shorter
than the short-abandon limit left out. A request still waiting and not yet past the threshold
is not counted either way.

Whole hours of a window come from the hourly buckets the intake keeps in step; only the ragged
edges (and the last minutes, where requests may still be waiting) are read request by request.
Both use the same contribution function, so the two paths agree to the call.
"""

from __future__ import annotations

import math
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    bindparam,
    case,
    func,
    not_,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from dispatch.tickets import service as ticket_service
from hotline.calls import service as calls_service
from hotline.calls.models import AlertState, CallOffer, KpiBucket
from hotline.core.db import utcnow
from hotline.core.errors import AppError
from hotline.core.events import publish_after_commit
from hotline.core.models import Event
from hotline.core.settings import get_settings

_FIELDS = calls_service.BUCKET_FIELDS
# How a request moved while waiting (overflow, transfer before answer) is placed in a queue's
# figures: in the queue that finally handled it (the default), or in the one the caller first
# entered (a specialist seat such as 社保专席, social-insurance desk, sees its own shortfall).
BASES = ("answering_queue", "first_queue")
# Buckets are trusted only for hours that ended this long ago: later, calls may still wait.
_SETTLED_AFTER = timedelta(minutes=5)
MAX_WINDOW = timedelta(days=800)


def _empty() -> dict[str, float]:
    return dict.fromkeys(_FIELDS, 0)


def _ceil_hour(moment: datetime) -> datetime:
    floor = moment.replace(minute=0, second=0, microsecond=0)
    return floor if floor == moment else floor + timedelta(hours=1)


def _pending(offer: CallOffer | Row, now: datetime) -> bool:
    threshold = get_settings().answer_threshold_seconds
    return offer.outcome == "waiting" and now - offer.offered_at < timedelta(seconds=threshold)


def _lost(offer: CallOffer | Row, now: datetime) -> bool:
    limit = timedelta(seconds=get_settings().lost_waiting_seconds)
    return offer.outcome == "waiting" and now - offer.offered_at >= limit


def _check_window(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    if start.tzinfo is None or end.tzinfo is None:
        raise AppError("kpi.naive_time", "start and end need a time zone offset")
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if end <= start:
        raise AppError("kpi.bad_window", "end must be after start")
    if end - start > MAX_WINDOW:
        raise AppError("kpi.window_too_long", "a window may span at most 800 days")
    return start, end


def _plan(
    start: datetime, end: datetime, now: datetime
) -> tuple[tuple[datetime, datetime] | None, list[tuple[datetime, datetime]]]:
    """Which settled whole hours of [start, end) come from the buckets, and which ranges from
    the requests themselves (the ragged edges, and hours that may still change)."""
    first_hour = _ceil_hour(start)
    last_hour = min(end, now - _SETTLED_AFTER).replace(minute=0, second=0, microsecond=0)
    if first_hour < last_hour:
        edges = [(start, first_hour), (last_hour, end)]
        return (first_hour, last_hour), [(a, b) for a, b in edges if a < b]
    return None, [(start, end)]


def _bucket_totals(
    session: Session, hours: tuple[datetime, datetime], queue: str | None, by: str
) -> dict[str, float]:
    calls_service.ensure_bucket_basis(session)
    calls_service.write_staged_buckets(session)  # this transaction's own intake counts too
    query = select(*[func.coalesce(func.sum(getattr(KpiBucket, f)), 0) for f in _FIELDS]).where(
        KpiBucket.hour >= hours[0], KpiBucket.hour < hours[1]
    )
    if queue:
        query = query.where(KpiBucket.queue == queue)
        if by == "answering_queue":
            query = query.where(KpiBucket.shard < calls_service.FIRST_QUEUE_SHARD)
    # Over all queues the first-queue correction rows cancel out: both bases agree.
    return dict(zip(_FIELDS, session.execute(query).one(), strict=True))


def bucket_sums(session: Session) -> dict[tuple[str, datetime], dict[str, float]]:
    """Every (queue, hour) bucket, its shards summed: what the figures are read from."""
    calls_service.ensure_bucket_basis(session)
    calls_service.write_staged_buckets(session)
    query = select(
        KpiBucket.queue,
        KpiBucket.hour,
        *[func.sum(getattr(KpiBucket, f)).label(f) for f in _FIELDS],
    ).where(KpiBucket.shard < calls_service.FIRST_QUEUE_SHARD)
    query = query.group_by(KpiBucket.queue, KpiBucket.hour)
    return {
        (row.queue, row.hour): {f: getattr(row, f) for f in _FIELDS}
        for row in session.execute(query)
    }


def _merged(ranges: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """The same instants as ``ranges``, as few ranges as possible (overlaps joined)."""
    merged: list[tuple[datetime, datetime]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _offered_within(ranges: list[tuple[datetime, datetime]]) -> ColumnElement[bool]:
    return or_(*(and_(CallOffer.offered_at >= a, CallOffer.offered_at < b) for a, b in ranges))


def _windows_figures(
    session: Session,
    windows: dict[str, tuple[datetime, datetime]],
    queue: str | None,
    now: datetime,
    by: str = "answering_queue",
) -> dict[str, dict[str, Any]]:
    """The figures of several windows: settled hours from the buckets, the rest summed by the
    database over the requests themselves, the edges of every window in one statement, and
    the few requests still open (waiting or talking) counted as of ``now``.

    The wall asks for its four windows every second or so at a peak, and their unsettled
    tail is up to an hour of requests: reading them into Python and summing there took a
    fifth of a second of the API's CPU per snapshot.
    """
    plans = {name: _plan(start, end, now) for name, (start, end) in windows.items()}
    ranges = [r for _hours, edges in plans.values() for r in edges]
    edge_totals: dict[str, dict[str, float]] = {}
    if ranges:
        columns = calls_service.bucket_contribution_columns()
        sums = []
        with_edges = [name for name, (_hours, edges) in plans.items() if edges]
        for name in with_edges:
            inside = _offered_within(plans[name][1])
            sums.extend(func.sum(case((inside, columns[f]), else_=0)) for f in _FIELDS)
        # Only the edges' requests: a ragged window of months has two short edges and
        # months of settled hours between them, which the buckets hold.
        query = select(*sums).where(_offered_within(_merged(ranges)))
        if queue:
            query = query.where(_queue_column(by) == queue)
        values = iter(session.execute(query).one())
        for name in with_edges:
            edge_totals[name] = {f: next(values) or 0 for f in _FIELDS}
    open_counts = _open_requests(session, windows, queue, now, by)
    figures = {}
    for name, (hours, _edges) in plans.items():
        totals = _bucket_totals(session, hours, queue, by) if hours else _empty()
        for field, value in edge_totals.get(name, {}).items():
            totals[field] += value
        totals["offered"] += open_counts[name]["missed"]
        figures[name] = _figures(totals, open_counts[name])
    return figures


def _queue_column(by: str) -> ColumnElement:
    if by == "first_queue":
        return func.coalesce(CallOffer.overflowed_from, CallOffer.queue)
    return CallOffer.queue


def _open_requests(
    session: Session,
    windows: dict[str, tuple[datetime, datetime]],
    queue: str | None,
    now: datetime,
    by: str = "answering_queue",
) -> dict[str, dict[str, int]]:
    """Per window, the requests whose end has not come, as they count at ``now``: waiting
    and still within the threshold (``waiting``: not counted yet), waiting past it
    (``missed``), waiting past the lost limit (``lost``: left out of the rate), and answered
    but talking past the lost limit (``lost_talking``: the answer counts; the missing end is
    a data-quality figure).

    Read through the outcome index: there are only ever a few of them, however long the
    window. The buckets hold no waiting request, since how one counts changes with time."""
    settings = get_settings()
    threshold = timedelta(seconds=settings.answer_threshold_seconds)
    lost_waiting = timedelta(seconds=settings.lost_waiting_seconds)
    lost_talking = timedelta(seconds=settings.lost_talking_seconds)
    kinds = ("waiting", "missed", "lost", "lost_talking")
    counts = {name: dict.fromkeys(kinds, 0) for name in windows}
    first = min(start for start, _end in windows.values())
    last = max(end for _start, end in windows.values())
    columns = (
        CallOffer.offered_at,
        CallOffer.answered_at,
        CallOffer.outcome,
        CallOffer.queue,
        CallOffer.overflowed_from,
    )
    if session.get_bind().dialect.name == "sqlite":
        # SQLite's planner otherwise walks the offered_at index over a year's window (50 ms
        # instead of 1); the queue is filtered below for the same reason.
        query = (
            text(
                "SELECT offered_at, answered_at, outcome, queue, overflowed_from FROM call_offers "
                "INDEXED BY ix_call_offers_outcome_offered_at "
                "WHERE outcome IN ('waiting', 'talking') AND offered_at >= :first "
                "AND offered_at < :last"
            )
            .bindparams(
                bindparam("first", first, type_=CallOffer.offered_at.type),
                bindparam("last", last, type_=CallOffer.offered_at.type),
            )
            .columns(*columns)
        )
    else:
        query = select(*columns).where(
            CallOffer.outcome.in_(("waiting", "talking")),
            CallOffer.offered_at >= first,
            CallOffer.offered_at < last,
        )
    for offered_at, answered_at, outcome, offer_queue, first_queue in session.execute(query):
        if by == "first_queue":
            offer_queue = first_queue or offer_queue
        if queue and offer_queue != queue:
            continue
        if outcome == "waiting":
            waited = now - offered_at
            if waited < threshold:
                kind = "waiting"
            elif waited >= lost_waiting:
                kind = "lost"
            else:
                kind = "missed"
        elif now - answered_at >= lost_talking:
            kind = "lost_talking"
        else:
            continue
        for name, (start, end) in windows.items():
            if start <= offered_at < end:
                counts[name][kind] += 1
    return counts


def answer_rate(
    session: Session,
    start: datetime,
    end: datetime,
    queue: str | None = None,
    *,
    now: datetime | None = None,
    by: str = "answering_queue",
) -> dict[str, Any]:
    """The answer rate and companions over [start, end), for one queue or all of them, a
    moved request counted in the queue that answered it or the one first entered (``by``)."""
    if by not in BASES:
        raise AppError("kpi.bad_basis", f"by must be one of {', '.join(BASES)}")
    start, end = _check_window(start, end)
    return _windows_figures(session, {"window": (start, end)}, queue, now or utcnow(), by)["window"]


def _figures(totals: dict[str, float], open_counts: dict[str, int]) -> dict[str, Any]:
    threshold = get_settings().answer_threshold_seconds
    denominator = int(totals["offered"] - totals["short_abandoned"])
    answered = int(totals["answered"])
    abandoned = int(totals["abandoned"] - totals["short_abandoned"])
    return {
        "offered": denominator,
        "answered": answered,
        "answered_within_threshold": int(totals["answered_within"]),
        "abandoned": abandoned,
        "short_abandoned": int(totals["short_abandoned"]),
        "waiting": open_counts["waiting"],
        # Data quality: requests whose end never came (see docs/kpi.md), not in the rate.
        "lost": open_counts["lost"],
        "lost_talking": open_counts["lost_talking"],
        "rate": round(totals["answered_within"] / denominator, 6) if denominator else None,
        "threshold_seconds": threshold,
        "average_speed_of_answer_seconds": (
            round(totals["wait_sum"] / answered, 2) if answered else None
        ),
        "average_handle_seconds": (
            round(totals["talk_sum"] / totals["talk_count"], 2) if totals["talk_count"] else None
        ),
        "abandon_rate": round(abandoned / denominator, 6) if denominator else None,
    }


def classify(offer: CallOffer | Row) -> str:
    """How one request counts: within / late / abandoned / short_abandon / unanswered."""
    settings = get_settings()
    if offer.answered_at is not None:
        within = offer.wait_seconds is not None and offer.wait_seconds <= (
            settings.answer_threshold_seconds
        )
        return "answered_within" if within else "answered_late"
    if offer.abandoned_at is not None:
        short = offer.wait_seconds is not None and offer.wait_seconds < (
            settings.short_abandon_seconds
        )
        return "short_abandon" if short else "abandoned"
    return "unanswered"


def _counted_as(category: str, now: datetime) -> ColumnElement[bool]:
    """``classify`` (and ``_pending``) as SQL, so a window of a year is filtered and paged by
    the database instead of in memory."""
    within = get_settings().answer_threshold_seconds
    when = calls_service.offer_conditions()
    waiting = and_(
        CallOffer.outcome == "waiting", CallOffer.offered_at > now - timedelta(seconds=within)
    )
    lost = and_(
        CallOffer.outcome == "waiting",
        CallOffer.offered_at <= now - timedelta(seconds=get_settings().lost_waiting_seconds),
    )
    return {
        "waiting": waiting,
        "lost": lost,
        "answered_within": when["answered_within"],
        "answered_late": and_(when["answered"], not_(when["answered_within"])),
        "short_abandon": when["short_abandoned"],
        "abandoned": and_(when["abandoned"], not_(when["short_abandoned"])),
        "unanswered": and_(
            CallOffer.answered_at.is_(None),
            CallOffer.abandoned_at.is_(None),
            not_(waiting),
            not_(lost),
        ),
    }[category]


def calls_behind(
    session: Session,
    start: datetime,
    end: datetime,
    queue: str | None = None,
    *,
    category: str | None = None,
    limit: int = 500,
    offset: int = 0,
) -> dict[str, Any]:
    """Every request behind a figure, with how it counted, so any number can be checked."""
    start, end = _check_window(start, end)
    now = utcnow()
    query = calls_service.offers_query(start, end, queue)
    if category:
        query = query.where(_counted_as(category, now))
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    rows = [
        {
            "call_id": offer.call_id,
            "seq": offer.seq,
            "queue": offer.queue,
            "caller": offer.caller,
            "offered_at": offer.offered_at.isoformat(),
            "answered_at": offer.answered_at.isoformat() if offer.answered_at else None,
            "agent": offer.agent,
            "wait_seconds": offer.wait_seconds,
            "outcome": offer.outcome,
            "counted_as": (
                "waiting"
                if _pending(offer, now)
                else "lost"
                if _lost(offer, now)
                else classify(offer)
            ),
        }
        for offer in session.execute(query.limit(limit).offset(offset))
    ]
    return {"total": total or 0, "calls": rows}


def rolling(session: Session, queue: str | None = None, *, now: datetime | None = None) -> dict:
    """The wall's rolling windows: last 15 minutes, last hour, today, this quarter."""
    now = now or utcnow()
    local = now.astimezone(get_settings().tz)
    today = local.replace(hour=0, minute=0, second=0, microsecond=0)
    quarter = today.replace(month=3 * ((local.month - 1) // 3) + 1, day=1)
    end = now + timedelta(microseconds=1)
    starts = {
        "last_15_minutes": now - timedelta(minutes=15),
        "last_hour": now - timedelta(hours=1),
        "today": today.astimezone(UTC),
        "quarter": quarter.astimezone(UTC),
    }
    return _windows_figures(session, {n: (s, end) for n, s in starts.items()}, queue, now)


_wall_lock = threading.Lock()
_wall_cache: dict[str, Any] = {}


def wall(session: Session, *, now: datetime | None = None) -> dict[str, Any]:
    """Everything the supervisors' wall shows, in one snapshot.

    Every wall asks for the same snapshot whenever events arrive, and computing it reads the
    last hour of requests: at a typhoon peak, ten walls recomputing it made half the API's
    CPU. The snapshot is therefore shared until something happens (a newer event id in the
    log) or a second has passed (waits grow and windows slide by themselves).
    """
    key = (_newest_event(session), int(time.time())) if now is None else None
    with _wall_lock:
        if key is not None and _wall_cache.get("key") == key:
            return _wall_cache["snapshot"]
    snapshot = _wall_snapshot(session, now=now)
    if key is not None:
        with _wall_lock:
            _wall_cache.update(key=key, snapshot=snapshot)
    return snapshot


def _newest_event(session: Session) -> tuple[int, datetime | None] | None:
    # The id alone could repeat after the log is emptied (tests, a restored backup).
    return session.execute(
        select(Event.id, Event.created_at).order_by(Event.id.desc()).limit(1)
    ).first()


def forget_wall_snapshot() -> None:
    """Drop the shared snapshot (tests that empty the database between themselves)."""
    with _wall_lock:
        _wall_cache.clear()


def _wall_snapshot(session: Session, *, now: datetime | None = None) -> dict[str, Any]:
    queues = calls_service.queue_state(session, now)
    by_state = calls_service.agents_by_state(session)
    alert = session.get(AlertState, "answer_rate_15m")
    figures = rolling(session, now=now)
    return {
        "target": get_settings().answer_rate_target,
        # Which queue a moved request counts in (see BASES); the wall shows it in small text.
        "basis": "answering_queue",
        "rolling": figures,
        "queues": [{k: v for k, v in q.items() if k != "calls"} for q in queues],
        "waiting": sum(q["waiting"] for q in queues),
        "longest_wait_seconds": max((q["longest_wait_seconds"] for q in queues), default=0.0),
        # Data quality: today's requests whose end never came (waiting or talking too long).
        "lost_calls": figures["today"]["lost"] + figures["today"]["lost_talking"],
        "agents_by_state": by_state,
        "alert": {"active": bool(alert and alert.active), "since": alert.since if alert else None},
        "overdue_by_department": ticket_service.overdue_by_department(session),
        # Today's requests by channel: how much the app and other channels take off the phones.
        "tickets_by_channel": ticket_service.received_by_channel(session, _local_midnight(now)),
    }


def _local_midnight(now: datetime | None) -> datetime:
    tz = get_settings().tz
    local = (now or utcnow()).astimezone(tz)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


_ALERT = "answer_rate_15m"
_alert_checked_at = -float("inf")


def alert_check_due() -> bool:
    """Whether this process should re-evaluate the alert now (at most every
    ``alert_check_seconds``): the alert looks at 15 minutes, so checking it for every batch of
    call events only re-read those 15 minutes of requests dozens of times a second."""
    global _alert_checked_at
    with _wall_lock:
        now = time.monotonic()
        if now - _alert_checked_at < get_settings().alert_check_seconds:
            return False
        _alert_checked_at = now
        return True


def evaluate_alert(session: Session, *, now: datetime | None = None, minimum_calls: int = 10):
    """Raise the alert when the last 15 minutes fall below target; clear it only 2 points
    above target, so a rate hovering at the line does not flap.

    The state row is written only when the alert flips, and the flip is a conditional UPDATE:
    of several processes evaluating at once exactly one raises (or clears) it and tells the
    walls, and a quiet evaluation locks nothing.
    """
    settings = get_settings()
    now = now or utcnow()
    figures = answer_rate(session, now - timedelta(minutes=15), now, now=now)
    rate, offered = figures["rate"], figures["offered"]
    state = session.get(AlertState, _ALERT)
    if state is None:
        _create_alert_state(session, now)
        state = session.get(AlertState, _ALERT)
    if rate is None or offered < minimum_calls:
        return state
    target = settings.answer_rate_target
    if not state.active and rate < target:
        flip, event = True, "kpi.answer_rate_low"
        data = {"rate": rate, "target": target, "offered": offered}
    elif state.active and rate >= target + 0.02:
        flip, event = False, "kpi.answer_rate_recovered"
        data = {"rate": rate, "target": target}
    else:
        return state
    flipped = session.execute(
        update(AlertState)
        .where(AlertState.name == _ALERT, AlertState.active.is_(not flip))
        .values(active=flip, since=now, last_rate=rate)
        .execution_options(synchronize_session=False)
    )
    if flipped.rowcount:
        publish_after_commit(session, "kpi.alerts", event, data)
    session.expire(state)
    return state


def _create_alert_state(session: Session, now: datetime) -> None:
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    session.execute(
        insert(AlertState)
        .values(name=_ALERT, active=False, since=now)
        .on_conflict_do_nothing(index_elements=["name"])
    )


def rebuild_buckets(session: Session) -> int:
    """Recompute every bucket from the requests (``hotline kpi rebuild``; a changed threshold
    setting also triggers this by itself, see ``calls_service.ensure_bucket_basis``)."""
    count = calls_service.recount_buckets(session)
    calls_service.store_bucket_thresholds(session)
    session.flush()
    return count


ON_DUTY_STATES = ("ready", "on_call", "after_call_work")


def _after_call_work_seconds(changes: list, start: datetime, end: datetime, handled: int) -> float:
    """Average after-call work (话后整理, wrap-up) per handled call: the time agents spent in
    ``after_call_work`` from entries in [start, end), each until the agent's next state
    change, over the calls handled in the window. A wrap-up not yet closed is left out."""
    if not handled:
        return 0.0
    entered: dict[str, datetime] = {}
    total = 0.0
    for change in changes:
        began = entered.pop(change.username, None)
        if began is not None:
            total += (change.at - began).total_seconds()
        if change.state == "after_call_work" and start <= change.at < end:
            entered[change.username] = change.at
    return total / handled


def staffing_plan(
    session: Session, day: datetime, queue: str | None = None
) -> list[dict[str, Any]]:
    """Per half hour of ``day`` (local midnight): measured arrivals, handle time (talk plus the
    day's average after-call work) and patience, agents needed for the staffing target by
    Erlang C and Erlang A, those grossed up for shrinkage into agents on the roster, and
    agents on duty at mid-slot."""
    from hotline.calls.models import AgentStateChange
    from hotline.kpi import staffing

    settings = get_settings()
    start = day.astimezone(UTC)
    day_end = start + timedelta(days=1)
    offers = calls_service.offers_in(session, start, day_end, queue)
    # An hour past the day closes the wrap-ups of its last calls.
    changes = session.scalars(
        select(AgentStateChange)
        .where(AgentStateChange.at < day_end + timedelta(hours=1))
        .order_by(AgentStateChange.at, AgentStateChange.id)
    ).all()
    handled = sum(1 for o in offers if o.answered_at is not None)
    wrap_up = _after_call_work_seconds(changes, start, day_end, handled)
    target = settings.staffing_target
    shrinkage = settings.staffing_shrinkage
    threshold = settings.answer_threshold_seconds

    def roster(needed: int | None) -> int | None:
        # A small epsilon keeps 0.3 shrinkage on 7 agents at 10, not 10.000000000000002 → 11.
        return None if needed is None else math.ceil(needed / (1 - shrinkage) - 1e-9)

    slots = []
    for index in range(48):
        slot_start = start + timedelta(minutes=30 * index)
        slot_end = slot_start + timedelta(minutes=30)
        in_slot = [o for o in offers if slot_start <= o.offered_at < slot_end]
        talks = [o.talk_seconds for o in in_slot if o.talk_seconds]
        waits = [o.wait_seconds for o in in_slot if o.wait_seconds is not None]
        abandons = sum(1 for o in in_slot if o.abandoned_at and not o.answered_at)
        aht = sum(talks) / len(talks) if talks else 180.0
        # Exponential patience, censored by answers: total waiting time over abandons (MLE).
        patience = (sum(waits) / abandons) if abandons else None
        middle = slot_start + timedelta(minutes=15)
        state: dict[str, str] = {}
        for change in changes:
            if change.at > middle:
                break
            state[change.username] = change.state
        on_duty = sum(1 for s in state.values() if s in ON_DUTY_STATES)
        row: dict[str, Any] = {
            "start": slot_start.astimezone(settings.tz).isoformat(),
            "arrivals": len(in_slot),
            "average_handle_seconds": round(aht, 1),
            "after_call_work_seconds": round(wrap_up, 1),
            "workload_seconds": round(aht + wrap_up, 1),
            "patience_seconds": round(patience, 1) if patience else None,
            "staffing_target": target,
            "shrinkage": shrinkage,
            "on_duty": on_duty,
            "erlang_c_agents": 0,
            "erlang_a_agents": None,
        }
        if in_slot:
            rate = len(in_slot) / 1800
            row["erlang_c_agents"] = staffing.agents_for_service_level(
                rate, aht + wrap_up, threshold, target
            ).agents
            if patience:
                row["erlang_a_agents"] = staffing.agents_for_service_level(
                    rate,
                    aht + wrap_up,
                    threshold,
                    target,
                    model="erlang_a",
                    patience_s=patience,
                ).agents
        row["erlang_c_roster"] = roster(row["erlang_c_agents"])
        row["erlang_a_roster"] = roster(row["erlang_a_agents"])
        slots.append(row)
    return slots
