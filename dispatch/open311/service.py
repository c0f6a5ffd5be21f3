"""Citizen channels over HTTP: Open311 GeoReport v2 requests and the public progress lookup.

Open311 GeoReport v2 is the open standard through which city apps and partner sites post
service requests and read their progress. Here a *service* is a matter of the catalogue
(事项目录) and a *service request* is a ticket (工单) of the ``open311`` channel, routed like a
ticket from any other channel.

What the public may see: status, the department's reply (答复), the matter, the responsible
department and the deadlines. Never the caller's name or phone, the trail or internal notes.
Only tickets that came in through Open311 are readable through it (``PUBLIC_CHANNELS``): a
phone caller's ticket is private, and its caller checks its progress with the number plus the
last four digits of the phone (``progress``), behind a rate limit.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session, lazyload

from dispatch.open311.models import Open311ApiKey
from dispatch.routing import service as routing_service
from dispatch.tickets import service as tickets_service
from dispatch.tickets.models import Ticket, TicketAction
from hotline.core import privacy
from hotline.core.db import utcnow
from hotline.core.errors import AppError, NotFound
from hotline.core.models import AuditEntry
from hotline.core.moments import check_day
from hotline.core.settings import get_settings

CHANNEL = "open311"
# Tickets readable through GET requests. Other channels stay private: opening them here would
# let anyone read a phone caller's ticket without the phone check of the progress lookup.
PUBLIC_CHANNELS = (CHANNEL,)
MAX_DATE_RANGE = timedelta(days=90)
MAX_RESULTS = 1000
MAX_REQUEST_IDS = 100
MAX_DESCRIPTION = 4000  # the specification's limit
MAX_ATTRIBUTES = 50
SUBMITTED_NOTE = "open311_submitted"  # the trail entry that keeps what the client sent

KEY_PREFIX_LENGTH = 8
STATUS_TEXT = {
    "pending_dispatch": "已受理，等待派单",
    "dispatched": "已派单，等待承办单位签收",
    "accepted": "承办单位办理中",
    "replied": "承办单位已答复",
    "visited": "已回访",
    "closed": "已办结",
}

PROGRESS_LOOKUPS_PER_IP = 10
PROGRESS_IP_WINDOW_SECONDS = 600
PROGRESS_FAILURES_PER_NUMBER = 5
PROGRESS_FAILURE_WINDOW_SECONDS = 3600


class Open311Error(AppError):
    """A refusal that the Open311 routes answer in the specification's error format.

    ``status_code`` is 400 (bad parameter), 403 (missing, unknown or revoked api_key) or 404
    (unknown service or request); it is also the ``code`` the client sees.
    """

    def __init__(self, status_code: int, description: str) -> None:
        super().__init__(f"open311.{status_code}", description, status_code=status_code)


# -- API keys --------------------------------------------------------------------------------------


def _hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(session: Session, *, name: str, actor: str) -> tuple[Open311ApiKey, str]:
    """Issue a key for client ``name``; returns the row and the key, which is never shown again.

    The key is ``secrets.token_urlsafe(32)``; only its SHA-256 and its first eight characters
    (the prefix that identifies it for people) are stored. Audited as ``open311.key_created``.
    """
    name = name.strip()
    if not name or len(name) > 100:
        raise AppError("open311.bad_key_name", "a key needs a name of 1 to 100 characters")
    while True:
        key = secrets.token_urlsafe(32)
        prefix = key[:KEY_PREFIX_LENGTH]
        # A prefix starting with "-" would read as an option on the command line.
        if prefix[0] == "-":
            continue
        taken = session.scalar(select(Open311ApiKey.id).where(Open311ApiKey.prefix == prefix))
        if taken is None:
            break
    row = Open311ApiKey(prefix=prefix, key_hash=_hash_key(key), name=name, created_by=actor)
    session.add(row)
    session.flush()
    _audit(session, actor, "open311.key_created", prefix, {"name": name})
    return row, key


def revoke_key(session: Session, *, prefix: str, actor: str) -> Open311ApiKey:
    """Revoke the key with ``prefix`` at once (audited); revoking it again changes nothing."""
    row = session.scalar(select(Open311ApiKey).where(Open311ApiKey.prefix == prefix))
    if row is None:
        raise NotFound("open311.unknown_key", f"no Open311 API key with prefix {prefix!r}")
    if row.revoked_at is None:
        row.revoked_at, row.revoked_by = utcnow(), actor
        session.flush()
        _audit(session, actor, "open311.key_revoked", prefix, {"name": row.name})
    return row


def list_keys(session: Session) -> list[Open311ApiKey]:
    """Every key ever issued, newest first, revoked ones included."""
    return list(session.scalars(select(Open311ApiKey).order_by(Open311ApiKey.id.desc())))


def authenticate(session: Session, key: str | None) -> Open311ApiKey:
    """The active key matching ``key``; a missing, unknown or revoked key is a 403."""
    if not key:
        raise Open311Error(403, "api_key is required to post a service request")
    row = session.scalar(select(Open311ApiKey).where(Open311ApiKey.key_hash == _hash_key(key)))
    if row is None or row.revoked_at is not None:
        raise Open311Error(403, "api_key is not valid or has been revoked")
    row.last_used_at = utcnow()
    return row


def _audit(session: Session, actor: str, action: str, prefix: str, detail: dict) -> None:
    session.add(
        AuditEntry(
            actor=actor, action=action, entity="open311_api_key", entity_id=prefix, detail=detail
        )
    )


# -- services --------------------------------------------------------------------------------------


def _service(matter: Any) -> dict[str, Any]:
    return {
        "service_code": matter.code,
        "service_name": matter.name,
        "description": f"{matter.name}（{matter.category}，{matter.kind}）",
        "metadata": False,
        "type": "realtime",
        "keywords": ",".join(matter.keywords),
        "group": matter.category,
    }


def services(session: Session) -> list[dict[str, Any]]:
    """GET services: one service per matter of the catalogue in force."""
    return [_service(m) for m in routing_service.current_routing(session).ruleset.matters]


def service_definition(session: Session, code: str) -> dict[str, Any]:
    """GET services/{code}: no matter asks for extra attributes, so the list is empty."""
    if code not in routing_service.current_routing(session).ruleset.matter_by_code:
        raise Open311Error(404, f"no service with service_code {code!r}")
    return {"service_code": code, "attributes": []}


# -- posting a request -----------------------------------------------------------------------------

_ATTRIBUTE = re.compile(r"^attribute\[([^\[\]]{1,64})\](\[\])?$")
_PHONE_NOISE = re.compile(r"[\s\-().]")
_PHONE = re.compile(r"^\+?\d{3,20}$")
_CJK = re.compile(r"^[\u3400-\u9fff·]+$")


@dataclass
class Submission:
    """The fields of a POST requests form, checked; ``lat``/``long`` are floats when given."""

    service_code: str = ""
    description: str = ""
    address: str = ""
    lat: float | None = None
    long: float | None = None
    phone: str = ""
    name: str = ""
    email: str = ""
    media_url: str | None = None
    attributes: dict[str, str | list[str]] = field(default_factory=dict)


def _full_name(first: str, last: str, name: str) -> str:
    if name:
        return name
    if first and last:
        # Chinese names are written family name first and without a space.
        if _CJK.match(first) and _CJK.match(last):
            return last + first
        return f"{first} {last}"
    return first or last


def _coordinate(value: str, name: str, bound: float) -> float:
    try:
        number = float(value)
    except ValueError:
        raise Open311Error(400, f"{name} must be a decimal number of degrees") from None
    if not -bound <= number <= bound:
        raise Open311Error(400, f"{name} must lie between -{bound:g} and {bound:g}")
    return number


def parse_submission(items: Iterable[tuple[str, str]]) -> Submission:
    """Read a POST requests form (repeated ``attribute[code][]`` fields become lists)."""
    fields: dict[str, str] = {}
    attributes: dict[str, str | list[str]] = {}
    for key, value in items:
        match = _ATTRIBUTE.match(key)
        if match:
            code, many = match.group(1), match.group(2)
            if len(value) > 500:
                raise Open311Error(400, f"attribute[{code}] is longer than 500 characters")
            if many:
                existing = attributes.setdefault(code, [])
                if isinstance(existing, list):
                    existing.append(value)
            else:
                attributes[code] = value
            if len(attributes) > MAX_ATTRIBUTES:
                raise Open311Error(400, f"at most {MAX_ATTRIBUTES} attributes are accepted")
        else:
            fields.setdefault(key, value.strip())
    sub = Submission(attributes=attributes)
    sub.service_code = fields.get("service_code", "")
    if not sub.service_code:
        raise Open311Error(400, "service_code is required")
    sub.description = fields.get("description", "")
    if len(sub.description) > MAX_DESCRIPTION:
        raise Open311Error(400, f"description is longer than {MAX_DESCRIPTION} characters")
    sub.address = fields.get("address_string", "")
    if len(sub.address) > 500:
        raise Open311Error(400, "address_string is longer than 500 characters")
    lat, long = fields.get("lat", ""), fields.get("long", "")
    if bool(lat) != bool(long):
        raise Open311Error(400, "lat and long must be given together")
    if lat:
        sub.lat = _coordinate(lat, "lat", 90)
        sub.long = _coordinate(long, "long", 180)
    if not sub.address and sub.lat is None:
        if fields.get("address_id"):
            raise Open311Error(
                400, "address_id is not supported here; send address_string or lat and long"
            )
        raise Open311Error(400, "a location is required: address_string, or lat and long")
    phone = _PHONE_NOISE.sub("", fields.get("phone", ""))
    if phone and not _PHONE.match(phone):
        raise Open311Error(400, "phone must be a telephone number (digits, optionally a +)")
    sub.phone = phone
    sub.name = _full_name(
        fields.get("first_name", ""), fields.get("last_name", ""), fields.get("name", "")
    )
    if len(sub.name) > 64:
        raise Open311Error(400, "the name is longer than 64 characters")
    sub.email = fields.get("email", "")
    if sub.email and (len(sub.email) > 254 or "@" not in sub.email):
        raise Open311Error(400, "email is not an e-mail address")
    media_url = fields.get("media_url", "")
    if media_url:
        if len(media_url) > 1000 or not re.match(r"^https?://", media_url):
            raise Open311Error(400, "media_url must be an http(s) URL")
        sub.media_url = media_url
    return sub


def submit(session: Session, items: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """POST requests: create, route and dispatch a ticket of the ``open311`` channel.

    ``items`` are the form's fields in order. The api_key is checked before anything else, so
    a client without a valid key learns nothing. Returns the item of the answer
    (``service_request_id``, ``service_notice``, ``account_id``). There is no geocoder: with
    only lat/long the ticket is located from the description text, the notice says so, and
    the coordinates are kept in the trail note.
    """
    items = list(items)
    key = authenticate(session, next((v for k, v in items if k == "api_key" and v), None))
    sub = parse_submission(items)
    routing = routing_service.current_routing(session)
    matter = routing.ruleset.matter_by_code.get(sub.service_code)
    if matter is None:
        raise Open311Error(400, f"unknown service_code {sub.service_code!r}")
    located_by = "address" if sub.address else "text"
    try:
        ticket, _duplicates = tickets_service.create(
            session,
            actor=f"open311:{key.prefix}",
            channel=CHANNEL,
            content=sub.description or matter.name,
            address=sub.address,
            caller_name=sub.name,
            caller_phone=sub.phone,
            matter_code=matter.code,
        )
    except Open311Error:
        raise
    except AppError as exc:
        raise Open311Error(400, exc.message) from exc
    # A trail note, not a change of the ticket row: a second UPDATE would move the ticket's
    # version past the one its "created" event announced.
    session.add(
        TicketAction(
            ticket_id=ticket.id,
            action=SUBMITTED_NOTE,
            actor=f"open311:{key.prefix}",
            from_status=None,
            to_status=ticket.status,
            department_code=ticket.lead_department,
            detail={
                "api_key": key.prefix,
                "client": key.name,
                "lat": sub.lat,
                "long": sub.long,
                "located_by": located_by,
                "email": sub.email or None,
                "media_url": sub.media_url,
                "attributes": sub.attributes,
            },
        )
    )
    session.flush()
    notice = _notice(ticket, routing)
    if located_by == "text":
        notice += "。本热线暂无地理编码：已按诉求描述文字定位，坐标已随工单保存"
    return {"service_request_id": ticket.number, "service_notice": notice, "account_id": None}


# -- reading requests ------------------------------------------------------------------------------


def _notice(ticket: Ticket, routing: routing_service.Routing) -> str:
    department = routing.ruleset.department_by_code.get(ticket.lead_department)
    name = department.name if department else ticket.lead_department
    if ticket.status == "pending_dispatch":
        return f"工单{ticket.number}已受理，等待人工派单"
    if ticket.status == "dispatched":
        return f"工单{ticket.number}已派往{name}，等待签收"
    if ticket.status == "accepted":
        return f"{name}正在办理"
    return f"{STATUS_TEXT.get(ticket.status, ticket.status)}（{name}）"


def _without_personal_data(text: str, ticket: Ticket) -> str:
    """Mask the caller's own name and phone, and every phone number, ID number and e-mail
    address, in public text: the public sees no more than a department does."""
    known = privacy.known_caller(ticket.caller_phone)
    if ticket.caller_name and len(ticket.caller_name) >= 2:
        known[ticket.caller_name] = "*" * len(ticket.caller_name)
    return privacy.mask_text(text, known)


def _local(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(get_settings().tz).isoformat(timespec="seconds")


def _public_request(
    ticket: Ticket, note: dict[str, Any] | None, routing: routing_service.Routing
) -> dict[str, Any]:
    matter = routing.ruleset.matter_by_code.get(ticket.matter_code)
    department = routing.ruleset.department_by_code.get(ticket.lead_department)
    note = note or {}
    return {
        "service_request_id": ticket.number,
        "status": "open" if ticket.status in tickets_service.OPEN_STATUSES else "closed",
        "status_notes": _without_personal_data(ticket.reply, ticket) if ticket.reply else None,
        "service_name": matter.name if matter else ticket.matter_code,
        "service_code": ticket.matter_code,
        "description": _without_personal_data(ticket.content, ticket),
        "agency_responsible": department.name if department else ticket.lead_department,
        "service_notice": _notice(ticket, routing),
        "requested_datetime": _local(ticket.received_at),
        "updated_datetime": _local(ticket.updated_at),
        "expected_datetime": _local(ticket.finish_deadline or ticket.accept_deadline),
        "address": _without_personal_data(ticket.address, ticket) or None,
        "address_id": None,
        "zipcode": None,
        "lat": note.get("lat"),
        "long": note.get("long"),
        # A link with a phone number in it is broken rather than published.
        "media_url": note.get("media_url") and _without_personal_data(note["media_url"], ticket),
    }


def _render(session: Session, tickets: list[Ticket]) -> list[dict[str, Any]]:
    routing = routing_service.current_routing(session)
    notes: dict[int, dict[str, Any]] = {}
    if tickets:
        rows = session.execute(
            select(TicketAction.ticket_id, TicketAction.detail).where(
                TicketAction.ticket_id.in_([t.id for t in tickets]),
                TicketAction.action == SUBMITTED_NOTE,
            )
        )
        notes = {ticket_id: detail for ticket_id, detail in rows}
    return [_public_request(t, notes.get(t.id), routing) for t in tickets]


def _split(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def parse_datetime(value: str, name: str) -> datetime:
    """An ISO 8601 / W3C date-time; without an offset it is read in the hotline's time zone."""
    text = value.strip()
    # An unencoded "+08:00" in a query string arrives as " 08:00".
    text = re.sub(r" (\d{2}:?\d{2})$", r"+\1", text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise Open311Error(
            400, f"{name} must be an ISO 8601 date-time such as 2026-01-01T00:00:00Z"
        ) from None
    try:
        check_day(moment)
    except ValueError as exc:
        raise Open311Error(400, f"{name} {exc}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=get_settings().tz)
    return moment


def date_range(
    start_date: str | None, end_date: str | None, now: datetime | None = None
) -> tuple[datetime, datetime]:
    """The requested_datetime window: at most 90 days; by default the last 90 days."""
    start = parse_datetime(start_date, "start_date") if start_date else None
    end = parse_datetime(end_date, "end_date") if end_date else None
    if start is None and end is None:
        end = now or utcnow()
    if start is None:
        assert end is not None
        start = end - MAX_DATE_RANGE
    if end is None:
        end = start + MAX_DATE_RANGE
    if end < start:
        raise Open311Error(400, "end_date lies before start_date")
    if end - start > MAX_DATE_RANGE:
        raise Open311Error(400, "start_date and end_date may be at most 90 days apart")
    return start, end


def find_requests(
    session: Session,
    *,
    service_request_id: str | None = None,
    service_code: str | None = None,
    start_date: str | None = None,
    end_date: str | None = None,
    status: str | None = None,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """GET requests, newest first, at most ``MAX_RESULTS``.

    ``service_request_id`` (a comma list) overrides every other filter, as the specification
    says. ``service_code`` and ``status`` take comma lists; unknown values are a 400.
    """
    query = (
        select(Ticket)
        .options(lazyload(Ticket.departments))
        .where(Ticket.channel.in_(PUBLIC_CHANNELS))
    )
    numbers = _split(service_request_id)
    if numbers:
        if len(numbers) > MAX_REQUEST_IDS:
            raise Open311Error(400, f"at most {MAX_REQUEST_IDS} service_request_id at once")
        query = query.where(Ticket.number.in_(numbers))
    else:
        codes = _split(service_code)
        if codes:
            known = routing_service.current_routing(session).ruleset.matter_by_code
            unknown = [c for c in codes if c not in known]
            if unknown:
                raise Open311Error(400, f"unknown service_code {', '.join(unknown)}")
            query = query.where(Ticket.matter_code.in_(codes))
        statuses = set(_split(status))
        if statuses - {"open", "closed"}:
            raise Open311Error(400, "status must be open, closed or both (comma separated)")
        if statuses == {"open"}:
            query = query.where(Ticket.status.in_(tickets_service.OPEN_STATUSES))
        elif statuses == {"closed"}:
            query = query.where(Ticket.status.not_in(tickets_service.OPEN_STATUSES))
        start, end = date_range(start_date, end_date, now)
        query = query.where(Ticket.received_at >= start, Ticket.received_at <= end)
    query = query.order_by(Ticket.received_at.desc(), Ticket.id.desc()).limit(MAX_RESULTS)
    return _render(session, list(session.scalars(query)))


def get_request(session: Session, number: str) -> dict[str, Any]:
    """GET requests/{id}: one request, or a 404 (also for tickets of private channels)."""
    ticket = session.scalar(
        select(Ticket)
        .options(lazyload(Ticket.departments))
        .where(Ticket.number == number, Ticket.channel.in_(PUBLIC_CHANNELS))
    )
    if ticket is None:
        raise Open311Error(404, f"no service request {number!r}")
    return _render(session, [ticket])[0]


# -- public progress lookup ------------------------------------------------------------------------


class RateLimited(AppError):
    """Too many lookups; ``retry_after`` is in seconds."""

    status_code = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__("public.rate_limited", message)
        self.retry_after = max(1, retry_after)


class LookupUnavailable(AppError):
    status_code = 503


_NOT_FOUND = "no ticket matches this number and these phone digits"


def _retry_after(client: redis.Redis, key: str, fallback: int) -> int:
    ttl = client.ttl(key)
    return int(ttl) if ttl and ttl > 0 else fallback


def _count(client: redis.Redis, key: str, window: int) -> int:
    """Count one event in a fixed window that starts with the first event."""
    pipe = client.pipeline()
    pipe.set(key, 0, ex=window, nx=True)
    pipe.incr(key)
    return int(pipe.execute()[1])


def progress(
    session: Session, client: redis.Redis, *, number: str, phone_last4: str, client_ip: str
) -> dict[str, Any]:
    """A ticket's status and public reply for whoever knows its number and phone's last 4 digits.

    Limits: ``PROGRESS_LOOKUPS_PER_IP`` lookups per IP per 10 minutes, and
    ``PROGRESS_FAILURES_PER_NUMBER`` wrong guesses per number per hour (then even the right
    digits wait), so the 10 000 possible endings cannot be tried. A wrong ending and an unknown
    number give the same ``NotFound``, so numbers cannot be enumerated.
    """
    number = number.strip().upper()
    ip_key = f"progress:ip:{client_ip}"
    failures_key = f"progress:fail:{number}"
    try:
        if _count(client, ip_key, PROGRESS_IP_WINDOW_SECONDS) > PROGRESS_LOOKUPS_PER_IP:
            raise RateLimited(
                "too many lookups from this address; try again later",
                _retry_after(client, ip_key, PROGRESS_IP_WINDOW_SECONDS),
            )
        failures = int(client.get(failures_key) or 0)
        if failures >= PROGRESS_FAILURES_PER_NUMBER:
            raise RateLimited(
                "too many failed lookups of this number; try again later",
                _retry_after(client, failures_key, PROGRESS_FAILURE_WINDOW_SECONDS),
            )
    except redis.RedisError as exc:
        # Without the limiter the phone check could be brute-forced: refuse rather than degrade.
        raise LookupUnavailable(
            "public.unavailable", "the progress lookup is unavailable; try again later"
        ) from exc
    ticket = session.scalar(
        select(Ticket).options(lazyload(Ticket.departments)).where(Ticket.number == number)
    )
    digits = re.sub(r"\D", "", ticket.caller_phone) if ticket else ""
    # Compared in constant time, and a ticket without a phone can never match.
    if ticket is None or len(digits) < 4 or not hmac.compare_digest(digits[-4:], phone_last4):
        # If Redis fails here the IP limit still holds; the caller gets the same answer.
        with contextlib.suppress(redis.RedisError):
            _count(client, failures_key, PROGRESS_FAILURE_WINDOW_SECONDS)
        raise NotFound("public.not_found", _NOT_FOUND)
    routing = routing_service.current_routing(session)
    matter = routing.ruleset.matter_by_code.get(ticket.matter_code)
    department = routing.ruleset.department_by_code.get(ticket.lead_department)
    return {
        "number": ticket.number,
        "status": ticket.status,
        "status_text": STATUS_TEXT.get(ticket.status, ticket.status),
        "open": ticket.status in tickets_service.OPEN_STATUSES,
        "service_name": matter.name if matter else ticket.matter_code,
        "agency_responsible": department.name if department else ticket.lead_department,
        "received_at": _local(ticket.received_at),
        "expected_at": _local(ticket.finish_deadline or ticket.accept_deadline),
        "replied_at": _local(ticket.replied_at),
        "closed_at": _local(ticket.closed_at),
        "reply": _without_personal_data(ticket.reply, ticket) if ticket.reply else None,
    }
