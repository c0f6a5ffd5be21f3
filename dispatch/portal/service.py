"""The citizens' portal (市民端): submit a request, follow it, rate the reply (回访).

Terms owned here: 登记诉求 submit a request · 查询办理情况 follow its progress · 跟踪链接 private
tracking link · 手机验证 phone verification · 合并重复 merging a repeated submission.

Every request becomes a ticket of the ``app`` channel through ``tickets.service.create``, the
one intake of every channel: routed, dispatched and given deadlines exactly as an agent's. The
citizen proves the phone with a code sent by text message (``hotline.core.sms``) and gets the
ticket's number and a private tracking link: whoever holds the link sees the ticket's public
view (status, a public timeline, the department's reply, deadlines) and may rate the reply,
and nothing else: no trail entry but those listed in ``_PUBLIC_STEPS``, no notes, no names.
The same view is opened again with the number plus a newly verified phone.

Rate limits (``hotline.core.limits``): codes per phone, submissions per verified phone, both
per client address, and all of them together per minute; a limit met is a 429 with the scope
(phone, address, global) and Retry-After. A second submission of the same text from the same
phone within ``portal_duplicate_minutes`` is merged into the first ticket.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import jwt
import redis
from sqlalchemy import select
from sqlalchemy.orm import Session, lazyload

from dispatch.portal import photos as photo_rules
from dispatch.portal.models import Photo, TrackingLink
from dispatch.routing import service as routing_service
from dispatch.tickets import service as tickets_service
from dispatch.tickets.models import Ticket, TicketAction
from hotline.core import privacy, sms
from hotline.core.db import utcnow
from hotline.core.errors import AppError, Conflict, NotFound
from hotline.core.limits import RateLimit, hit
from hotline.core.phones import normalise_phone
from hotline.core.settings import get_settings

CHANNEL = "app"
ACTOR = f"citizen:{CHANNEL}"
SUBMITTED_NOTE = "portal_submitted"  # the trail entry with what the trail row has no column for
RESUBMITTED_NOTE = "portal_resubmitted"

MIN_CONTENT = 5
MAX_CONTENT = 2000
MAX_ADDRESS = 200
MAX_NAME = 32
CODE_TTL_SECONDS = 600
CODE_ATTEMPTS = 5
PHONE_TOKEN_MINUTES = 30
PHONE_TOKEN_AUDIENCE = "portal-phone"
SUGGESTIONS = 4

_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_NUMBER = re.compile(r"^[A-Z0-9]{1,32}$")
_SPACE = re.compile(r"\s+")

STATUS_TEXT = {
    "pending_dispatch": "已受理，正在分派",
    "dispatched": "已派单，等待承办单位签收",
    "accepted": "承办单位办理中",
    "replied": "承办单位已答复，请您评价",
    "visited": "已评价",
    "closed": "已办结",
}
SATISFACTION_TEXT = {
    "satisfied": "满意",
    "basically_satisfied": "基本满意",
    "unsatisfied": "不满意",
}


# -- limits ------------------------------------------------------------------------------------


def _limits() -> dict[str, RateLimit]:
    s = get_settings()
    return {
        "code_phone": RateLimit(
            "phone", s.portal_codes_per_phone_hour, 3600, "too many codes for this phone"
        ),
        "address": RateLimit(
            "address", s.portal_requests_per_address_hour, 3600, "too many requests from here"
        ),
        "submit_phone": RateLimit(
            "phone", s.portal_requests_per_phone_day, 86400, "too many requests from this phone"
        ),
        "global": RateLimit(
            "global", s.portal_requests_global_minute, 60, "the portal is busy; try again soon"
        ),
        "lookup": RateLimit(
            "address", s.portal_lookups_per_address_minute, 60, "too many lookups from here"
        ),
    }


def limit_lookups(client: redis.Redis, address: str) -> None:
    """Count one read of a ticket's view (tracking link or photo) from ``address``."""
    hit(client, "portal-read", address, _limits()["lookup"])


# -- phone verification ----------------------------------------------------------------------------


def check_mobile(phone: str) -> str:
    """The canonical mainland mobile number, or ``portal.bad_phone``: codes go by SMS."""
    canonical = normalise_phone(phone or "")
    if not _MOBILE.match(canonical):
        raise AppError("portal.bad_phone", "enter a mainland mobile number (11 digits)")
    return canonical


def _code_digest(phone: str, code: str) -> str:
    key = get_settings().secret_key.get_secret_value().encode()
    return hmac.new(key, f"{phone}:{code}".encode(), hashlib.sha256).hexdigest()


def send_code(client: redis.Redis, *, phone: str, address: str) -> dict[str, Any]:
    """Text a 6-digit code to ``phone`` (valid ``CODE_TTL_SECONDS``; a new one replaces it).

    Limited per phone, per client address and globally; the code is stored only as an HMAC."""
    phone = check_mobile(phone)
    limits = _limits()
    hit(client, "portal-code", phone, limits["code_phone"])
    hit(client, "portal", address, limits["address"], limits["global"])
    code = f"{secrets.randbelow(1_000_000):06d}"
    try:
        pipe = client.pipeline()
        pipe.set(f"portal:code:{phone}", _code_digest(phone, code), ex=CODE_TTL_SECONDS)
        pipe.delete(f"portal:code-tries:{phone}")
        pipe.execute()
    except (redis.RedisError, OSError) as exc:
        raise sms.SmsUnavailable() from exc
    sms.sender().send(phone, f"【珠海12345】您的验证码是{code}，10分钟内有效。如非本人操作请忽略。")
    return {"phone": privacy.mask_phone(phone), "expires_in": CODE_TTL_SECONDS}


def verify_code(client: redis.Redis, *, phone: str, code: str) -> str:
    """A phone token (30 minutes) for the right code; ``portal.bad_code`` otherwise. After
    ``CODE_ATTEMPTS`` wrong codes the code is void and a new one must be sent."""
    phone = check_mobile(phone)
    key, tries = f"portal:code:{phone}", f"portal:code-tries:{phone}"
    try:
        stored = client.get(key)
        if stored is None:
            raise AppError("portal.bad_code", "the code has expired or was never sent; ask again")
        stored = stored.decode() if isinstance(stored, bytes) else stored
        if not hmac.compare_digest(stored, _code_digest(phone, (code or "").strip())):
            pipe = client.pipeline()
            pipe.incr(tries)
            pipe.expire(tries, CODE_TTL_SECONDS)
            if int(pipe.execute()[0]) >= CODE_ATTEMPTS:
                client.delete(key, tries)
            raise AppError("portal.bad_code", "the code is wrong")
        client.delete(key, tries)  # a code is used once
    except (redis.RedisError, OSError) as exc:
        raise sms.SmsUnavailable() from exc
    return issue_phone_token(phone)


def issue_phone_token(phone: str) -> str:
    now = utcnow()
    claims = {
        "sub": phone,
        "aud": PHONE_TOKEN_AUDIENCE,
        "iat": now,
        "exp": now + timedelta(minutes=PHONE_TOKEN_MINUTES),
    }
    return jwt.encode(claims, get_settings().secret_key.get_secret_value(), algorithm="HS256")


def phone_from_token(token: str | None) -> str:
    """The phone a phone token proves; ``portal.phone_unverified`` (401) if none or expired."""
    try:
        claims = jwt.decode(
            token or "",
            get_settings().secret_key.get_secret_value(),
            algorithms=["HS256"],
            audience=PHONE_TOKEN_AUDIENCE,
        )
    except jwt.PyJWTError as exc:
        raise AppError(
            "portal.phone_unverified", "verify your phone first", status_code=401
        ) from exc
    return str(claims["sub"])


# -- what the citizen picks ----------------------------------------------------------------------


def places(session: Session) -> list[dict[str, Any]]:
    """Districts and functional areas with their towns in force today, for the pickers
    (built once a day per revision of the reference data)."""
    routing = routing_service.current_routing(session)
    today = routing_service.local_today()
    cached = routing.derived.get("portal_places")
    if cached is None or cached[0] != today:
        cached = routing.derived["portal_places"] = (today, _places(routing.ruleset, today))
    return cached[1]


def _places(ruleset, today) -> list[dict[str, Any]]:
    towns = ruleset.towns_on(today)
    out = []
    for area in ruleset.areas:
        # A town run by a functional area is listed there and under its district: citizens
        # know 唐家湾镇 as 香洲区 as often as 高新区.
        inside = [
            {"code": t.code, "name": t.name} for t in towns if area.code in (t.district, t.run_by)
        ]
        if inside:
            out.append({"code": area.code, "name": area.name, "towns": inside})
    return out


def suggest(session: Session, text: str) -> dict[str, Any]:
    """The matters the console's understanding suggests for ``text`` (a short list for the
    citizen to confirm or pick from); low confidence includes the catch-all matter."""
    understanding = routing_service.current_routing(session).suggester.understand(
        text[:MAX_CONTENT], limit=SUGGESTIONS
    )
    return {
        "low_confidence": understanding.low_confidence,
        "matters": [{"code": s.code, "name": s.name} for s in understanding.suggestions],
    }


# -- submitting ----------------------------------------------------------------------------------


@dataclass
class Submission:
    """What the citizen sent, as the router read it (sizes already bounded by the schema)."""

    content: str
    name: str = ""
    matter_code: str | None = None
    area_code: str | None = None
    town_code: str | None = None
    address: str = ""
    lat: float | None = None
    long: float | None = None
    keep_photo_location: bool = False
    photos: list[bytes] = field(default_factory=list)


def _fingerprint(content: str) -> str:
    text = _SPACE.sub("", unicodedata.normalize("NFKC", content)).lower()
    return hashlib.sha256(text.encode()).hexdigest()


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _new_link(session: Session, ticket: Ticket, phone: str, fingerprint: str = "") -> str:
    token = secrets.token_urlsafe(24)
    session.add(
        TrackingLink(
            token_hash=_hash_token(token), ticket_id=ticket.id, phone=phone, fingerprint=fingerprint
        )
    )
    return token


def _address(session: Session, sub: Submission) -> str:
    ruleset = routing_service.current_routing(session).ruleset
    parts = []
    if sub.area_code:
        area = ruleset.area_by_code.get(sub.area_code)
        if area is None:
            raise AppError("portal.bad_place", "unknown district")
        parts.append(area.name)
    if sub.town_code:
        town = ruleset.town_by_code.get(sub.town_code)
        if town is None or (sub.area_code and sub.area_code not in (town.district, town.run_by)):
            raise AppError("portal.bad_place", "the town is not in the district chosen")
        if not sub.area_code:
            parts.append(ruleset.area_by_code[town.district].name)
        parts.append(town.name)
    address = "".join(parts) + sub.address.strip()
    if not address:
        raise AppError("portal.place_required", "say where: pick the district or describe it")
    return address


def _check(sub: Submission) -> None:
    content = sub.content.strip()
    if len(content) < MIN_CONTENT:
        raise AppError("portal.content_too_short", f"describe the matter in {MIN_CONTENT}+ chars")
    if len(content) > MAX_CONTENT or len(sub.address) > MAX_ADDRESS or len(sub.name) > MAX_NAME:
        raise AppError("portal.too_long", "a field is longer than allowed")
    if len(sub.photos) > get_settings().portal_max_photos:
        raise AppError("portal.too_many_photos", "too many photos")
    if (sub.lat is None) != (sub.long is None):
        raise AppError("portal.bad_location", "latitude and longitude go together")


def submit(
    session: Session, client: redis.Redis, *, phone: str, address: str, sub: Submission
) -> dict[str, Any]:
    """Create the ticket (``channel: app``, routed and dispatched as any other), keep its
    photos, and return the number and a private tracking token.

    ``phone`` is the verified phone (``phone_from_token``), ``address`` the client's address
    for the limits. The same text from the same phone within ``portal_duplicate_minutes``
    returns the first ticket (``merged: true``) with a new link, its new photos added."""
    settings = get_settings()
    _check(sub)
    limits = _limits()
    hit(client, "portal-submit", phone, limits["submit_phone"])
    hit(client, "portal", address, limits["address"], limits["global"])
    cleaned = [
        photo_rules.clean(
            raw, max_bytes=settings.portal_max_photo_bytes, keep_location=sub.keep_photo_location
        )
        for raw in sub.photos
    ]
    content = sub.content.strip()
    fingerprint = _fingerprint(content)
    now = utcnow()
    earlier = None
    if settings.portal_duplicate_minutes:
        earlier = session.scalar(
            select(Ticket)
            .options(lazyload(Ticket.departments))
            .join(TrackingLink, TrackingLink.ticket_id == Ticket.id)
            .where(
                TrackingLink.phone == phone,
                TrackingLink.fingerprint == fingerprint,
                TrackingLink.created_at
                >= now - timedelta(minutes=settings.portal_duplicate_minutes),
            )
            .order_by(TrackingLink.id)
            .limit(1)
        )
    if earlier is not None:
        room = settings.portal_max_photos - _photo_count(session, earlier)
        photo_ids = _keep_photos(session, earlier, cleaned[: max(0, room)])
        session.add(
            TicketAction(
                ticket_id=earlier.id,
                action=RESUBMITTED_NOTE,
                actor=ACTOR,
                from_status=earlier.status,
                to_status=earlier.status,
                department_code=earlier.lead_department,
                detail={"photos": photo_ids},
            )
        )
        token = _new_link(session, earlier, phone, fingerprint)
        session.flush()
        return {"number": earlier.number, "token": token, "merged": True}

    ticket, _duplicates = tickets_service.create(
        session,
        actor=ACTOR,
        channel=CHANNEL,
        content=content,
        address=_address(session, sub),
        caller_name=sub.name.strip(),
        caller_phone=phone,
        matter_code=sub.matter_code or None,
    )
    photo_ids = _keep_photos(session, ticket, cleaned)
    session.add(
        TicketAction(
            ticket_id=ticket.id,
            action=SUBMITTED_NOTE,
            actor=ACTOR,
            from_status=None,
            to_status=ticket.status,
            department_code=ticket.lead_department,
            detail={
                "lat": sub.lat,
                "long": sub.long,
                "located_by": "address",
                "phone_verified": True,
                "photos": photo_ids,
            },
        )
    )
    token = _new_link(session, ticket, phone, fingerprint)
    session.flush()
    return {"number": ticket.number, "token": token, "merged": False}


def _photo_count(session: Session, ticket: Ticket) -> int:
    return len(session.scalars(select(Photo.id).where(Photo.ticket_id == ticket.id)).all())


def _keep_photos(session: Session, ticket: Ticket, cleaned) -> list[int]:
    rows = [
        Photo(
            ticket_id=ticket.id,
            content_type=p.content_type,
            width=p.width,
            height=p.height,
            size=len(p.data),
            location_kept=p.location_kept,
            data=p.data,
        )
        for p in cleaned
    ]
    session.add_all(rows)
    session.flush()
    return [row.id for row in rows]


# -- following -----------------------------------------------------------------------------------


def _ticket_for(session: Session, token: str | None) -> Ticket:
    """The ticket a tracking token opens; a wrong token and a missing one answer the same."""
    ticket = None
    if 20 <= len(token or "") <= 64:
        ticket = session.scalar(
            select(Ticket)
            .options(lazyload(Ticket.departments))
            .join(TrackingLink, TrackingLink.ticket_id == Ticket.id)
            .where(TrackingLink.token_hash == _hash_token(token))
        )
    if ticket is None:
        raise NotFound("portal.not_found", "no request behind this link")
    return ticket


def lookup(session: Session, client: redis.Redis, *, number: str, phone: str, address: str):
    """A new tracking token for ticket ``number`` if ``phone`` (verified) is its caller's;
    any channel (a phone caller follows a call's ticket here too). A wrong number and another
    person's number answer the same 404."""
    limit_lookups(client, address)
    number = (number or "").strip().upper()
    ticket = None
    if _NUMBER.match(number):
        ticket = session.scalar(
            select(Ticket).options(lazyload(Ticket.departments)).where(Ticket.number == number)
        )
    if ticket is None or not hmac.compare_digest(ticket.caller_phone or "", phone):
        raise NotFound("portal.not_found", "no request with this number for this phone")
    token = _new_link(session, ticket, phone)
    session.flush()
    return {"number": ticket.number, "token": token}


def _local(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(get_settings().tz).isoformat(timespec="seconds")


def _department_name(routing: routing_service.Routing, code: str | None) -> str:
    department = routing.ruleset.department_by_code.get(code or "")
    if code == tickets_service.DESK or department is None:
        return "12345热线"
    return department.name


def _timeline(session: Session, ticket: Ticket, routing, mask) -> list[dict[str, Any]]:
    """The public steps of the trail: what was done and by which department, never who,
    never a note, a return's reason or a supervisor's instruction."""
    actions = session.scalars(
        select(TicketAction).where(TicketAction.ticket_id == ticket.id).order_by(TicketAction.id)
    ).all()
    steps: list[dict[str, Any]] = []

    def step(kind: str, action: TicketAction, text: str, **extra: Any) -> None:
        steps.append({"step": kind, "at": _local(action.at), "text": text, **extra})

    for a in actions:
        d = a.detail or {}
        name = _department_name(routing, a.department_code)
        if a.action == "create":
            step("received", a, "诉求已登记受理")
            if a.to_status == "dispatched":
                step("dispatched", a, f"已派至{name}办理")
        elif a.action == "dispatch":
            step("dispatched", a, f"已派至{_department_name(routing, d.get('to'))}办理")
        elif a.action == "accept":
            step("accepted", a, f"{name}已签收，正在办理")
        elif a.action == "decide-extension" and d.get("approved"):
            step("extended", a, "办理期限已延长")
        elif a.action in ("reply", "answer-directly", "follow_parent"):
            step("replied", a, f"{name}已答复", reply=mask(ticket.reply or ""))
        elif a.action == "visit":
            verdict = SATISFACTION_TEXT.get(d.get("satisfaction"), "")
            by = "您的评价" if d.get("source") == CHANNEL else "回访结果"
            text = f"{by}：{verdict}"
            if d.get("satisfaction") == "unsatisfied":
                text += "，已转承办单位重新办理（重办）"
            step("visited", a, text, reopened=d.get("satisfaction") == "unsatisfied")
        elif a.action == "close":
            step("closed", a, "已办结")
    return steps


def view(session: Session, token: str | None) -> dict[str, Any]:
    """The ticket behind a tracking token, as its citizen may see it (see the module's doc)."""
    ticket = _ticket_for(session, token)
    routing = routing_service.current_routing(session)
    known = privacy.known_caller(ticket.caller_phone, ticket.caller_name)

    def mask(text: str) -> str:
        return privacy.mask_text(text, known)

    matter = routing.ruleset.matter_by_code.get(ticket.matter_code)
    photo_ids = session.scalars(
        select(Photo.id).where(Photo.ticket_id == ticket.id).order_by(Photo.id)
    ).all()
    return {
        "number": ticket.number,
        "status": ticket.status,
        "status_text": STATUS_TEXT.get(ticket.status, ticket.status),
        "open": ticket.status in tickets_service.OPEN_STATUSES,
        "matter": matter.name if matter else ticket.matter_code,
        "department": _department_name(routing, ticket.lead_department),
        "content": mask(ticket.content),
        "address": mask(ticket.address),
        "received_at": _local(ticket.received_at),
        "accept_deadline": _local(ticket.accept_deadline),
        "finish_deadline": _local(ticket.finish_deadline),
        "reply": mask(ticket.reply) if ticket.reply else None,
        "satisfaction": ticket.satisfaction,
        "can_rate": ticket.status == "replied",
        "reopen_count": ticket.reopen_count,
        "photos": list(photo_ids),
        "timeline": _timeline(session, ticket, routing, mask),
    }


def photo_for_link(session: Session, token: str | None, photo_id: int) -> Photo:
    ticket = _ticket_for(session, token)
    photo = session.get(Photo, photo_id)
    if photo is None or photo.ticket_id != ticket.id:
        raise NotFound("portal.not_found", "no such photo")
    return photo


def photo_for_staff(session: Session, principal, photo_id: int) -> Photo:
    """A photo for hotline staff, or for a department that may see its ticket."""
    photo = session.get(Photo, photo_id)
    ticket = session.get(Ticket, photo.ticket_id) if photo else None
    if photo is None or ticket is None or not tickets_service.can_see(principal, ticket):
        raise NotFound("portal.not_found", "no such photo")
    return photo


def rate(
    session: Session, *, token: str | None, satisfaction: str, resolved: bool | None
) -> dict[str, Any]:
    """The citizen's 回访 of the reply: the same action as an agent's visit (unsatisfied
    reopens the ticket as 重办), recorded with the source ``app``."""
    if satisfaction not in tickets_service.SATISFACTION:
        raise AppError("portal.bad_satisfaction", "choose satisfied, basically or unsatisfied")
    ticket = _ticket_for(session, token)
    if ticket.status != "replied":
        raise Conflict("portal.not_ratable", "the request can be rated once it has been answered")
    tickets_service.visit_by_citizen(
        session,
        ticket=ticket,
        satisfaction=satisfaction,
        resolved=satisfaction != "unsatisfied" if resolved is None else resolved,
        source=CHANNEL,
    )
    return view(session, token)
