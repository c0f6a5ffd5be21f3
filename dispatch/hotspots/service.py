"""Hot spots kept in the database: detection as tickets arrive, listing, merging (并单).

``observe`` runs in the intake's own transaction, right after the ticket is flushed: a
rolled-back intake leaves no hot spot behind, a committed one is seen by the next intake.
It reads the last hour's tickets at the ticket's place (one range scan on
``ix_tickets_received_at``), the open hot spots there, and a per-process cache of the
baselines (two grouped counts over ``BASELINE_DAYS`` days, once an hour) and of the text
model (the corpus plus the last 2,000 tickets, every ``MODEL_REFRESH``). Two intakes
committing at the same moment do not see each other; the next intake there sees both.

Merging: a dispatcher puts a hot spot's open tickets under one parent (``tickets.parent_id``).
The children leave the departments' inboxes (their clocks stop); the department handles the
parent once, and its reply and closing flow to every child (``ticket_service`` follows the
parent), so each caller gets the answer and the follow-up visit. Unmerging gives each child
back its own place in the inbox with the deadline it had.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dispatch.hotspots import detector
from dispatch.hotspots.models import Hotspot, HotspotTicket
from dispatch.routing import service as routing_service
from dispatch.tickets import service as ticket_service
from dispatch.tickets.models import Ticket
from hotline.core.auth import Principal
from hotline.core.db import utcnow
from hotline.core.errors import AppError, Conflict, Forbidden, NotFound
from hotline.core.events import publish_after_commit
from hotline.core.models import AuditEntry
from hotline.core.settings import get_settings

TOPIC = "hotspots.city"
MODEL_REFRESH = timedelta(minutes=10)
RECENT_TEXTS = 2000
STATUSES = ("open", "merged", "dismissed")
MERGE_ROLES = frozenset({"dispatcher", "supervisor", "admin"})

_lock = threading.Lock()
_cache: dict[str, Any] = {}


def _text(ticket: Ticket) -> str:
    return f"{ticket.content} {ticket.address}"


def _request(ticket: Ticket) -> detector.Request:
    return detector.Request(
        ticket.id,
        ticket.received_at,
        ticket.matter_code,
        ticket.town_code,
        ticket.area_code,
        _text(ticket),
        ticket.address,
    )


def forget_cache() -> None:
    """Tests: start from a fresh text model and baseline."""
    with _lock:
        _cache.clear()


def text_model(session: Session) -> detector.TextModel:
    """The corpus and the recent traffic's document frequencies, rebuilt every MODEL_REFRESH."""
    now = time.monotonic()
    with _lock:
        cached = _cache.get("model")
        if cached and now - cached[0] < MODEL_REFRESH.total_seconds():
            return cached[1]
    ruleset = routing_service.current_routing(session).ruleset
    recent = session.execute(
        select(Ticket.content, Ticket.address).order_by(Ticket.id.desc()).limit(RECENT_TEXTS)
    ).all()
    model = detector.TextModel.from_texts(
        [t for t, _ in detector.corpus_texts()] + [f"{c} {a}" for c, a in recent],
        detector.admin_names(ruleset),
        detector.place_names(ruleset),
    )
    with _lock:
        _cache["model"] = (now, model)
    return model


def warm_up(session: Session) -> None:
    """Build the text model and this hour's baselines now (at start-up), not in an intake."""
    text_model(session)
    _baseline(session, utcnow())


def _baseline(session: Session, now: datetime) -> tuple[Counter, Counter, int]:
    """(cell counts, hour-of-week counts, total) over the BASELINE_DAYS days before ``now``.

    The cells are one grouped count, taken again every hour; the city's hour-of-week profile
    reads every ticket's time (for the local hour), so it is taken once a day: it changes
    slowly. Both per process, keyed by the clock, not by the tickets' times (a backfill of
    past hours must not recount for each of them)."""
    hour = now.replace(minute=0, second=0, microsecond=0)
    day = hour.date()
    with _lock:
        cells_cached = _cache.get("cells")
        hours_cached = _cache.get("hours")
    if cells_cached and cells_cached[0] == hour:
        cells = cells_cached[1]
    else:
        cells = Counter()
        for matter, town, area, n in session.execute(
            select(Ticket.matter_code, Ticket.town_code, Ticket.area_code, func.count())
            .where(
                Ticket.received_at >= hour - timedelta(days=detector.BASELINE_DAYS),
                Ticket.received_at < hour,
            )
            .group_by(Ticket.matter_code, Ticket.town_code, Ticket.area_code)
        ):
            if town:
                cells[(matter, ("town", town))] += n
            elif area:
                cells[(matter, ("area", area))] += n
        with _lock:
            _cache["cells"] = (hour, cells)
    if hours_cached and hours_cached[0] == day:
        hours = hours_cached[1]
    else:
        midnight = hour.replace(hour=0)
        tz = get_settings().tz
        hours = Counter()
        for (at,) in session.execute(
            select(Ticket.received_at).where(
                Ticket.received_at >= midnight - timedelta(days=detector.BASELINE_DAYS),
                Ticket.received_at < midnight,
            )
        ):
            hours[detector.hour_of_week(at.astimezone(tz))] += 1
        with _lock:
            _cache["hours"] = (day, hours)
    return cells, hours, sum(hours.values())


def expected_count(session: Session, matter: str, place: tuple[str, str], at: datetime) -> float:
    cells, hours, total = _baseline(session, utcnow())
    local = (at - timedelta(minutes=30)).astimezone(get_settings().tz)
    # Without a week of history the city's hours are unknown: a flat day.
    weeks = total and len(hours) >= 24 * 7
    share = hours[detector.hour_of_week(local)] / total * 7 if weeks else 1 / 24
    days = detector.BASELINE_DAYS
    return detector.expected_count(cells[(matter, place)] / days, share)


def _place_filter(place: tuple[str, str]):
    kind, code = place
    if kind == "town":
        return Ticket.town_code == code
    return (Ticket.town_code.is_(None)) & (Ticket.area_code == code)


def _spot(row: Hotspot, members: set[int]) -> detector.Spot:
    place = ("town", row.town_code) if row.town_code else ("area", row.area_code or "")
    return detector.Spot(
        row.id, row.kind, row.matter_code, place, row.first_at, row.last_at, members
    )


def observe(session: Session, ticket: Ticket) -> Hotspot | None:
    """Detect for a new ticket (flushed, uncommitted); returns the hot spot it opened or joined."""
    new = _request(ticket)
    if new.place is None:
        return None
    horizon = new.at - max(detector.INCIDENT_WINDOW, detector.SURGE_WINDOW)
    pool = [
        _request(t)
        for t in session.scalars(
            select(Ticket).where(
                Ticket.received_at >= horizon,
                Ticket.received_at <= new.at,
                Ticket.id != ticket.id,
                _place_filter(new.place),
            )
        )
    ]
    open_rows = session.scalars(
        select(Hotspot).where(
            Hotspot.status == "open",
            Hotspot.last_at >= new.at - detector.OPEN_FOR,
            (Hotspot.town_code == new.town_code)
            if new.town_code
            else (Hotspot.town_code.is_(None) & (Hotspot.area_code == new.area_code)),
        )
    ).all()
    members: dict[int, set[int]] = {row.id: set() for row in open_rows}
    if open_rows:
        for spot_id, ticket_id in session.execute(
            select(HotspotTicket.hotspot_id, HotspotTicket.ticket_id).where(
                HotspotTicket.hotspot_id.in_(list(members))
            )
        ):
            members[spot_id].add(ticket_id)
    spots = [_spot(row, members[row.id]) for row in open_rows]
    outcome = detector.assess(
        text_model(session),
        new,
        pool,
        spots,
        expected_count(session, new.matter_code, new.place, new.at),
    )
    if outcome is None:
        return None
    now = utcnow()
    if outcome.spot_id is None:
        matter = Counter(r.matter_code for r in outcome.members).most_common(1)[0][0]
        row = Hotspot(
            kind=outcome.kind,
            matter_code=matter,
            town_code=ticket.town_code,
            area_code=ticket.area_code,
            status="open",
            first_at=min(r.at for r in outcome.members),
            last_at=new.at,
            score=round(outcome.score, 2),
            expected=None if outcome.expected is None else round(outcome.expected, 4),
            summary="",
            created_at=now,
            updated_at=now,
        )
        session.add(row)
        session.flush()
        event = "hotspot.opened"
    else:
        row = next(r for r in open_rows if r.id == outcome.spot_id)
        row.last_at = max(row.last_at, new.at)
        row.updated_at = now
        event = "hotspot.grown"
    fresh = {r.key for r in outcome.members} - members.get(row.id, set())
    for key in sorted(fresh):
        session.add(HotspotTicket(hotspot_id=row.id, ticket_id=key))
    session.flush()
    size = len(members.get(row.id, set()) | fresh)
    if outcome.spot_id is not None and row.kind == "incident":
        row.score = float(size)
    row.summary = summarise(session, row, size)
    session.flush()
    publish_after_commit(session, TOPIC, event, {"id": row.id, "kind": row.kind, "size": size})
    return row


def summarise(session: Session, row: Hotspot, size: int) -> str:
    ruleset = routing_service.current_routing(session).ruleset
    matter = ruleset.matter_by_code.get(row.matter_code)
    matter_name = matter.name if matter else row.matter_code
    where = place_name(session, row)
    if row.kind == "incident":
        return f"{where}「{matter_name}」聚集诉求：{size}件相似来电，疑为同一事件"[:200]
    usual = row.expected if row.expected is not None else 0.0
    return f"{where}「{matter_name}」诉求突增：{size}件，平时同一时段约{usual:.1f}件"[:200]


# -- reading ---------------------------------------------------------------------------------


def _require_staff(principal: Principal) -> None:
    if not principal.roles & ticket_service.HOTLINE_ROLES:
        raise Forbidden("auth.forbidden", "hot spots are for hotline staff")


def _numbers(session: Session, ids: list[int]) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {i: [] for i in ids}
    if not ids:
        return found
    for spot_id, number in session.execute(
        select(HotspotTicket.hotspot_id, Ticket.number)
        .join(Ticket, Ticket.id == HotspotTicket.ticket_id)
        .where(HotspotTicket.hotspot_id.in_(ids))
        .order_by(Ticket.received_at, Ticket.id)
    ):
        found[spot_id].append(number)
    return found


def place_name(session: Session, row: Hotspot) -> str:
    ruleset = routing_service.current_routing(session).ruleset
    if row.town_code and row.town_code in ruleset.town_by_code:
        return ruleset.town_by_code[row.town_code].name
    if row.area_code and row.area_code in ruleset.area_by_code:
        return ruleset.area_by_code[row.area_code].name
    return row.town_code or row.area_code or ""


def view(
    row: Hotspot, numbers: list[str], parent: str | None = None, place: str = ""
) -> dict[str, Any]:
    return {
        "id": row.id,
        "kind": row.kind,
        "status": row.status,
        "matter_code": row.matter_code,
        "town_code": row.town_code,
        "area_code": None if row.town_code else row.area_code,
        "place_name": place,
        "ticket_numbers": numbers,
        "first_at": row.first_at,
        "last_at": row.last_at,
        "score": row.score,
        "expected": row.expected,
        "summary": row.summary,
        "parent": parent,
    }


def list_hotspots(
    session: Session,
    principal: Principal,
    *,
    since: datetime | None = None,
    status: str = "open",
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Hot spots of ``status`` first seen at or after ``since`` (default: the last day),
    newest activity first."""
    _require_staff(principal)
    if status not in STATUSES:
        raise AppError("hotspot.bad_status", f"status must be one of {list(STATUSES)}")
    since = since or utcnow() - timedelta(days=1)
    rows = session.scalars(
        select(Hotspot)
        .where(Hotspot.status == status, Hotspot.last_at >= since)
        .order_by(Hotspot.last_at.desc(), Hotspot.id.desc())
        .limit(limit)
    ).all()
    numbers = _numbers(session, [r.id for r in rows])
    parents = _parents(session, rows)
    return [view(r, numbers[r.id], parents.get(r.id), place_name(session, r)) for r in rows]


def _parents(session: Session, rows) -> dict[int, str]:
    ids = {r.parent_ticket_id for r in rows if r.parent_ticket_id}
    if not ids:
        return {}
    by_id = dict(session.execute(select(Ticket.id, Ticket.number).where(Ticket.id.in_(ids))).all())
    return {r.id: by_id[r.parent_ticket_id] for r in rows if r.parent_ticket_id in by_id}


def _get(session: Session, hotspot_id: int, *, for_update: bool = False) -> Hotspot:
    # Two dispatchers merging one hot spot: the second waits here, then finds it merged.
    row = session.get(Hotspot, hotspot_id, with_for_update=for_update) if hotspot_id > 0 else None
    if row is None:
        raise NotFound("hotspot.not_found", f"no hot spot {hotspot_id}")
    return row


def detail(session: Session, principal: Principal, hotspot_id: int) -> dict[str, Any]:
    _require_staff(principal)
    row = _get(session, hotspot_id)
    tickets = session.scalars(
        select(Ticket)
        .join(HotspotTicket, HotspotTicket.ticket_id == Ticket.id)
        .where(HotspotTicket.hotspot_id == row.id)
        .order_by(Ticket.received_at, Ticket.id)
    ).all()
    parent = next((t.number for t in tickets if t.id == row.parent_ticket_id), None)
    return {
        **view(row, [t.number for t in tickets], parent, place_name(session, row)),
        "tickets": [
            {
                "number": t.number,
                "status": t.status,
                "content": t.content,
                "address": t.address,
                "matter_code": t.matter_code,
                "lead_department": t.lead_department,
                "received_at": t.received_at,
                "parent": parent if t.parent_id and t.parent_id == row.parent_ticket_id else None,
            }
            for t in tickets
        ],
    }


# -- merging ---------------------------------------------------------------------------------


def _require_merger(principal: Principal) -> None:
    if not principal.roles & MERGE_ROLES:
        raise Forbidden("auth.forbidden", "only dispatchers and supervisors merge tickets")


def _audit(session: Session, actor: str, action: str, row: Hotspot, detail: dict) -> None:
    session.add(
        AuditEntry(
            actor=actor, action=action, entity="hotspot", entity_id=str(row.id), detail=detail
        )
    )


def merge(
    session: Session, principal: Principal, hotspot_id: int, *, parent: str | None = None
) -> dict[str, Any]:
    """Put the hot spot's open tickets under ``parent`` (one of them; default the earliest
    open one). Tickets already answered or linked elsewhere are left as they are."""
    _require_merger(principal)
    row = _get(session, hotspot_id, for_update=True)
    if row.status != "open":
        raise Conflict("hotspot.not_open", f"the hot spot is {row.status}", status=row.status)
    tickets = session.scalars(
        select(Ticket)
        .join(HotspotTicket, HotspotTicket.ticket_id == Ticket.id)
        .where(HotspotTicket.hotspot_id == row.id)
        .order_by(Ticket.received_at, Ticket.id)
    ).all()
    open_ = [t for t in tickets if t.status in ticket_service.OPEN_STATUSES and t.parent_id is None]
    if parent is None:
        chosen = next(iter(open_), None)
    else:
        chosen = next((t for t in open_ if t.number == parent), None)
    if chosen is None:
        raise Conflict("hotspot.bad_parent", "the parent must be an open ticket of the hot spot")
    children = [t for t in open_ if t.id != chosen.id and t.status in ticket_service.INBOX_STATUSES]
    if not children:
        raise Conflict("hotspot.nothing_to_merge", "no other open ticket to merge")
    if session.scalar(select(func.count()).where(Ticket.parent_id.in_([c.id for c in children]))):
        raise Conflict("hotspot.bad_parent", "a ticket of the hot spot has duplicates of its own")
    for child in children:
        ticket_service.merge_into(session, principal, child, chosen)
    row.status = "merged"
    row.parent_ticket_id = chosen.id
    row.updated_at = utcnow()
    numbers = [c.number for c in children]
    _audit(
        session,
        principal.username,
        "hotspot.merged",
        row,
        {"parent": chosen.number, "children": numbers},
    )
    session.flush()
    publish_after_commit(
        session,
        TOPIC,
        "hotspot.merged",
        {"id": row.id, "parent": chosen.number, "children": numbers},
    )
    return detail(session, principal, row.id)


def unmerge(session: Session, principal: Principal, hotspot_id: int) -> dict[str, Any]:
    """Undo ``merge``: every child still open gets its own place in the inbox back."""
    _require_merger(principal)
    row = _get(session, hotspot_id, for_update=True)
    if row.status != "merged" or row.parent_ticket_id is None:
        raise Conflict("hotspot.not_merged", "the hot spot is not merged", status=row.status)
    children = session.scalars(
        select(Ticket)
        .join(HotspotTicket, HotspotTicket.ticket_id == Ticket.id)
        .where(HotspotTicket.hotspot_id == row.id, Ticket.parent_id == row.parent_ticket_id)
    ).all()
    for child in children:
        ticket_service.unmerge_from(session, principal, child)
    row.status = "open"
    row.parent_ticket_id = None
    row.updated_at = utcnow()
    numbers = [c.number for c in children]
    _audit(session, principal.username, "hotspot.unmerged", row, {"children": numbers})
    session.flush()
    publish_after_commit(session, TOPIC, "hotspot.unmerged", {"id": row.id, "children": numbers})
    return detail(session, principal, row.id)


def dismiss(session: Session, principal: Principal, hotspot_id: int, note: str) -> dict[str, Any]:
    _require_merger(principal)
    row = _get(session, hotspot_id, for_update=True)
    if row.status != "open":
        raise Conflict("hotspot.not_open", f"the hot spot is {row.status}", status=row.status)
    row.status = "dismissed"
    row.updated_at = utcnow()
    _audit(session, principal.username, "hotspot.dismissed", row, {"note": note})
    session.flush()
    publish_after_commit(session, TOPIC, "hotspot.dismissed", {"id": row.id})
    return detail(session, principal, row.id)
