"""Deadline policy for tickets (工单): when one must be accepted and finished, reminders, colours.

A ticket is first accepted (签收) by the department it was sent to, which starts the clock
for finishing it (办结). Normal tickets count working days (see :mod:`dispatch.tickets.calendar`)
and end at 23:59:59 Zhuhai time of the last one; urgent tickets count clock hours, holidays
included. Every result is an aware datetime in Asia/Shanghai; naive inputs are refused, since
the calendar day a ticket was received on decides its deadline.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, field_validator

from dispatch.tickets.calendar import WorkingCalendar

# The deadline rules are China's working days, so the zone is fixed rather than a setting.
HOTLINE_TZ = ZoneInfo("Asia/Shanghai")

# A working-day deadline ends with the last second of its day.
END_OF_WORKING_DAY = time(23, 59, 59)

# Past this share of the time allowed, a ticket is shown as due soon (yellow) and reminded.
DUE_SOON_PERCENT = 80


class TicketKind(StrEnum):
    """What a request is; the values are the matter catalogue's ``kind`` strings."""

    ENQUIRY = "咨询"
    HELP = "求助"
    COMPLAINT = "投诉"
    REPORT = "举报"
    SUGGESTION = "建议"


class Urgency(StrEnum):
    NORMAL = "normal"
    URGENT = "urgent"


class DeadlineStatus(StrEnum):
    """How a running ticket stands against its deadline (the consoles' green/yellow/red)."""

    OK = "ok"
    DUE_SOON = "due_soon"
    OVERDUE = "overdue"


# Reminder labels returned by reminder_times().
REMINDER_DUE_SOON = "due_soon"
REMINDER_ONE_HOUR_LEFT = "one_hour_left"

DEFAULT_FINISH_WORKING_DAYS: Mapping[TicketKind, int] = MappingProxyType(
    {
        TicketKind.ENQUIRY: 3,
        TicketKind.HELP: 5,
        TicketKind.COMPLAINT: 10,
        TicketKind.REPORT: 10,
        TicketKind.SUGGESTION: 15,
    }
)


class DeadlinePolicy(BaseModel):
    """The time allowed for accepting and finishing tickets; the defaults are the hotline's.

    ``finish_working_days`` may name only some kinds: the others keep their defaults.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    urgent_accept_hours: PositiveInt = 1
    urgent_finish_hours: PositiveInt = 24
    accept_working_days: PositiveInt = 1
    finish_working_days: dict[TicketKind, PositiveInt] = Field(
        default_factory=lambda: dict(DEFAULT_FINISH_WORKING_DAYS)
    )

    @field_validator("finish_working_days", mode="before")
    @classmethod
    def _keep_defaults_for_kinds_not_given(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            return {**DEFAULT_FINISH_WORKING_DAYS, **value}
        return value


def accept_deadline(
    policy: DeadlinePolicy,
    calendar: WorkingCalendar,
    kind: TicketKind | str,
    urgent: bool | Urgency,
    received_at: datetime,
) -> datetime:
    """When a ticket received at ``received_at`` must have been accepted.

    Urgent: ``policy.urgent_accept_hours`` clock hours after receipt. Otherwise: 23:59:59 of
    the ``policy.accept_working_days``-th working day after the day of receipt in Zhuhai.
    """
    _ticket_kind(kind)  # the same for every kind today, but a wrong kind is still a bug
    received_at = _in_hotline_time(received_at, "received_at")
    if _is_urgent(urgent):
        return _clock_hours_after(received_at, policy.urgent_accept_hours)
    return _end_of_working_day(calendar, received_at.date(), policy.accept_working_days)


def finish_deadline(
    policy: DeadlinePolicy,
    calendar: WorkingCalendar,
    kind: TicketKind | str,
    urgent: bool | Urgency,
    started_at: datetime,
) -> datetime:
    """When a ticket must be finished; ``started_at`` is when it was accepted.

    Urgent: ``policy.urgent_finish_hours`` clock hours after acceptance. Otherwise: 23:59:59
    of the N-th working day after the day of acceptance, N depending on the kind.
    """
    working_days = policy.finish_working_days[_ticket_kind(kind)]
    started_at = _in_hotline_time(started_at, "started_at")
    if _is_urgent(urgent):
        return _clock_hours_after(started_at, policy.urgent_finish_hours)
    return _end_of_working_day(calendar, started_at.date(), working_days)


def extend(
    deadline: datetime,
    *,
    working_days: int | None = None,
    hours: int | None = None,
    calendar: WorkingCalendar | None = None,
) -> datetime:
    """The deadline after an approved extension (延期), given either in working days or hours.

    Normal tickets are extended in ``working_days`` (needs ``calendar``): the new deadline is
    23:59:59 of the N-th working day after the old deadline's day. Urgent tickets are extended
    by ``hours`` clock hours.
    """
    deadline = _in_hotline_time(deadline, "deadline")
    if (working_days is None) == (hours is None):
        raise ValueError("give exactly one of working_days (normal tickets) or hours (urgent)")
    if hours is not None:
        if hours < 1:
            raise ValueError(f"an extension must be at least 1 hour, got {hours}")
        return _clock_hours_after(deadline, hours)
    if calendar is None:
        raise ValueError("extending by working days needs the working calendar")
    return _end_of_working_day(calendar, deadline.date(), working_days)


def due_soon_at(start: datetime, deadline: datetime) -> datetime:
    """The moment a ticket becomes due soon: when 80 % of the time from start to deadline
    has passed."""
    start = _in_hotline_time(start, "start")
    deadline = _in_hotline_time(deadline, "deadline")
    if deadline <= start:
        raise ValueError(f"deadline {deadline.isoformat()} is not after start {start.isoformat()}")
    start_utc = start.astimezone(UTC)
    allowed = deadline.astimezone(UTC) - start_utc
    return (start_utc + allowed * DUE_SOON_PERCENT / 100).astimezone(HOTLINE_TZ)


def reminder_times(start: datetime, deadline: datetime) -> list[tuple[str, datetime]]:
    """The reminders for a clock running from ``start`` to ``deadline``, sorted by time.

    One when the ticket becomes due soon (``REMINDER_DUE_SOON``, at 80 %) and one an hour
    before the deadline (``REMINDER_ONE_HOUR_LEFT``). A reminder at or before ``start`` is
    left out (it would arrive with the ticket itself); when both fall on the same moment only
    the due-soon one is kept.
    """
    start = _in_hotline_time(start, "start")
    deadline = _in_hotline_time(deadline, "deadline")
    candidates = [
        (REMINDER_DUE_SOON, due_soon_at(start, deadline)),
        (REMINDER_ONE_HOUR_LEFT, _clock_hours_after(deadline, -1)),
    ]
    reminders: list[tuple[str, datetime]] = []
    for label, moment in candidates:
        if moment > start and all(moment != kept for _, kept in reminders):
            reminders.append((label, moment))
    return sorted(reminders, key=lambda reminder: reminder[1])


def classify(now: datetime, start: datetime, deadline: datetime) -> DeadlineStatus:
    """``OVERDUE`` after the deadline, ``DUE_SOON`` from the 80 % point up to and including the
    deadline, else ``OK``. A ``DeadlineStatus`` compares equal to its string value."""
    now = _in_hotline_time(now, "now")
    if now > _in_hotline_time(deadline, "deadline"):
        return DeadlineStatus.OVERDUE
    if now >= due_soon_at(start, deadline):
        return DeadlineStatus.DUE_SOON
    return DeadlineStatus.OK


def _in_hotline_time(moment: datetime, name: str) -> datetime:
    if not isinstance(moment, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(moment).__name__}")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(
            f"{name}={moment.isoformat()} is a naive datetime (no time zone): it cannot tell "
            "which calendar day it was in Zhuhai, and that day decides the deadline; pass an "
            "aware datetime, e.g. datetime.now(ZoneInfo('Asia/Shanghai')) or one in UTC"
        )
    return moment.astimezone(HOTLINE_TZ)


def _clock_hours_after(moment: datetime, hours: int) -> datetime:
    # Add in UTC so that elapsed time is exact whatever zone (and DST rules) the input had.
    return (moment.astimezone(UTC) + timedelta(hours=hours)).astimezone(HOTLINE_TZ)


def _end_of_working_day(calendar: WorkingCalendar, day: date, working_days: int) -> datetime:
    last_day = calendar.add_working_days(day, working_days)
    return datetime.combine(last_day, END_OF_WORKING_DAY, tzinfo=HOTLINE_TZ)


def _ticket_kind(kind: TicketKind | str) -> TicketKind:
    try:
        return TicketKind(kind)
    except ValueError:
        known = ", ".join(member.value for member in TicketKind)
        raise ValueError(f"unknown ticket kind {kind!r}; expected one of {known}") from None


def _is_urgent(urgent: bool | Urgency) -> bool:
    if isinstance(urgent, bool):
        return urgent
    return Urgency(urgent) is Urgency.URGENT
