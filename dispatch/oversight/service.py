"""效能监察 oversight: departments compared over a period, their trends, where requests come from.

Terms owned here: 效能监察 oversight of the departments' performance · 综合得分 composite score ·
按时签收 accepted on time · 按时办结 finished on time · 退回 returned · 延期 extended ·
重办 reopened · 超期 overdue · 满意 / 基本满意 / 不满意 the verdicts of a follow-up visit (回访).

Every figure is over a cohort: the tickets received in the period (local days, end inclusive),
optionally in one area (district or functional area, ``tickets.area_code``). A figure is
counted for a department as follows, and its drill-down (``drill``) lists exactly the rows it
counts, because both are built from the same ``FIGURES`` definition:

  received          tickets it leads now (主办)
  accepted          … whose acceptance was decided (on time or late)
  accepted_on_time  … accepted by the accept deadline
  finished          … replied to with a verdict on the finish deadline
  finished_on_time  … replied by the finish deadline (a reopened ticket counts its last reply)
  reopened          … reopened at least once (重办, after an unsatisfied visit)
  overdue_now       … open and past the deadline running now
  returned          tickets it returned to the desk (counted for the department that returned)
  extended          tickets it was granted more time on (an approved 延期 request)
  visits, satisfied, basically_satisfied, unsatisfied
                    follow-up visits (one row each; a reopened ticket may be visited twice),
                    counted for the department whose handling was judged, of every source
                    (the hotline's call back, a portal's rating …) unless one is chosen

The desk (``DESK``) is not a department: tickets waiting there are in no department's row.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import String, and_, case, cast, func, literal, select, text
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from dispatch.routing import service as routing_service
from dispatch.tickets.models import ExtensionRequest, FollowUp, Ticket, TicketAction
from dispatch.tickets.rollup import FollowUpDay, TicketDay
from dispatch.tickets.service import DESK, OPEN_STATUSES, SATISFACTION
from hotline.core.db import utcnow
from hotline.core.errors import AppError
from hotline.core.settings import get_settings

# The parts of the composite score, each a rate from 0 (worst) to 1 (best).
PARTS: dict[str, str] = {
    "accept_on_time": "按时签收率",
    "finish_on_time": "按时办结率",
    "satisfaction": "满意率（满意+基本满意）",
    "returns": "未退回率",
    "reopens": "未重办率",
    "overdue": "未超期率",
}
# Who asked the citizen for a verdict (follow_ups.source): a new source is a new entry here.
SOURCES: dict[str, str] = {"hotline": "热线回访", "app": "市民门户（手机）"}
NO_AREA = "none"  # the area filter's value for tickets no place was found for
MAX_DAYS = 400  # a period of at most about a year (a report, not a data dump)
TREND_MONTHS = 12
TREND_WEEKS = 13
DRILL_LIMIT = 1000


# -- periods ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """Local days ``first`` to ``last`` (inclusive), and the UTC moments bounding them."""

    first: date
    last: date

    @property
    def start(self) -> datetime:
        return _local_midnight(self.first)

    @property
    def end(self) -> datetime:
        return _local_midnight(self.last + timedelta(days=1))

    @property
    def whole_months(self) -> int:
        """How many calendar months the period is, when it is whole months (else 0)."""
        if self.first.day != 1 or self.last.day != _month_length(self.last):
            return 0
        return (self.last.year - self.first.year) * 12 + self.last.month - self.first.month + 1

    @property
    def label(self) -> str:
        if self.whole_months == 1:
            return f"{self.first.year}年{self.first.month}月"
        return f"{self.first.isoformat()} 至 {self.last.isoformat()}"

    def previous(self) -> Period:
        """The period just before: the months before for whole months, else as many days."""
        months = self.whole_months
        if months:
            first = _add_months(self.first, -months)
            return Period(first, self.first - timedelta(days=1))
        days = (self.last - self.first).days + 1
        return Period(self.first - timedelta(days=days), self.first - timedelta(days=1))

    def as_dict(self) -> dict[str, str]:
        return {"first": self.first.isoformat(), "last": self.last.isoformat(), "label": self.label}


def _local_midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=get_settings().tz).astimezone(UTC)


def _month_length(day: date) -> int:
    return calendar.monthrange(day.year, day.month)[1]


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def period(
    *, month: str | None = None, first: date | None = None, last: date | None = None
) -> Period:
    """The period asked for: ``month`` (YYYY-MM), or ``first`` to ``last``; default: last month."""
    if month:
        try:
            year, number = (int(part) for part in month.split("-"))
            first = date(year, number, 1)
        except ValueError as exc:
            raise AppError("oversight.bad_month", "month is YYYY-MM, e.g. 2026-11") from exc
        return Period(first, first.replace(day=_month_length(first)))
    if first is None and last is None:
        this_month = utcnow().astimezone(get_settings().tz).date().replace(day=1)
        first = _add_months(this_month, -1)
        return Period(first, this_month - timedelta(days=1))
    if first is None or last is None:
        raise AppError("oversight.bad_range", "give both start and end, or a month")
    if last < first:
        raise AppError("oversight.bad_range", "end must not be before start")
    if (last - first).days + 1 > MAX_DAYS:
        raise AppError("oversight.bad_range", f"a period is at most {MAX_DAYS} days")
    return Period(first, last)


# -- figures ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """Where a family of figures is counted: its table, how it joins the cohort's tickets,
    which column names the department, and what one counted row is (a ticket or a visit)."""

    name: str
    table: Any
    department: Any
    where: Callable[[], ColumnElement[bool]] | None = None
    per_visit: bool = False


TICKETS = Source("tickets", Ticket, Ticket.lead_department)
RETURNS = Source(
    "returns",
    TicketAction,
    TicketAction.department_code,
    where=lambda: TicketAction.action == "return",
)
EXTENSIONS = Source(
    "extensions",
    ExtensionRequest,
    ExtensionRequest.department_code,
    where=lambda: ExtensionRequest.status == "approved",
)
FOLLOW_UPS = Source("follow_ups", FollowUp, FollowUp.department_code, per_visit=True)


@dataclass(frozen=True)
class Figure:
    name: str
    label: str
    source: Source
    condition: Callable[[datetime], ColumnElement[bool] | None] = lambda now: None


FIGURES: dict[str, Figure] = {
    f.name: f
    for f in (
        Figure("received", "受理量", TICKETS),
        Figure("accepted", "已签收", TICKETS, lambda now: Ticket.accepted_on_time.is_not(None)),
        Figure(
            "accepted_on_time", "按时签收", TICKETS, lambda now: Ticket.accepted_on_time.is_(True)
        ),
        Figure("finished", "已办结", TICKETS, lambda now: Ticket.finished_on_time.is_not(None)),
        Figure(
            "finished_on_time", "按时办结", TICKETS, lambda now: Ticket.finished_on_time.is_(True)
        ),
        Figure("returned", "退回", RETURNS),
        Figure("extended", "延期", EXTENSIONS),
        Figure("reopened", "重办", TICKETS, lambda now: Ticket.reopen_count > 0),
        Figure(
            "overdue_now",
            "当前超期",
            TICKETS,
            lambda now: and_(Ticket.status.in_(OPEN_STATUSES), Ticket.due_at < now),
        ),
        Figure("visits", "回访", FOLLOW_UPS),
        Figure("satisfied", "满意", FOLLOW_UPS, lambda now: FollowUp.satisfaction == "satisfied"),
        Figure(
            "basically_satisfied",
            "基本满意",
            FOLLOW_UPS,
            lambda now: FollowUp.satisfaction == "basically_satisfied",
        ),
        Figure(
            "unsatisfied", "不满意", FOLLOW_UPS, lambda now: FollowUp.satisfaction == "unsatisfied"
        ),
    )
}
COUNTS = tuple(FIGURES)


@dataclass(frozen=True)
class Filters:
    """What narrows the cohort: the period's tickets, in an area, of a matter, for a
    department, and the follow-ups of one source."""

    period: Period
    area: str | None = None
    matter: str | None = None
    department: str | None = None
    source: str | None = None


def _cohort(
    filters: Filters, source: Source, *, with_desk: bool = False
) -> list[ColumnElement[bool]]:
    return _ticket_cohort(filters) + _source_cohort(filters, source, with_desk=with_desk)


def _ticket_cohort(filters: Filters) -> list[ColumnElement[bool]]:
    """The conditions on the ticket: received in the period, in the area, of the matter."""
    conditions = [
        Ticket.received_at >= filters.period.start,
        Ticket.received_at < filters.period.end,
    ]
    if filters.area == NO_AREA:
        conditions.append(Ticket.area_code.is_(None))
    elif filters.area:
        conditions.append(Ticket.area_code == filters.area)
    if filters.matter:
        conditions.append(Ticket.matter_code == filters.matter)
    return conditions


def _source_cohort(
    filters: Filters, source: Source, *, with_desk: bool = False
) -> list[ColumnElement[bool]]:
    """The conditions on the counted row: its department, its kind, its source."""
    conditions: list[ColumnElement[bool]] = []
    if filters.department:
        conditions.append(source.department == filters.department)
    elif not with_desk:
        conditions.append(source.department != DESK)
    if source is FOLLOW_UPS and filters.source:
        conditions.append(FollowUp.source == filters.source)
    if source is TICKETS:
        # A ticket merged under another (并单) or linked to it as a duplicate is one piece of
        # work for the department: its parent counts. Its caller's visit still counts (above).
        conditions.append(Ticket.parent_id.is_(None))
    if source.where is not None:
        conditions.append(source.where())
    return conditions


def _from(source: Source):
    query = select()
    if source is TICKETS:
        return query.select_from(Ticket)
    return query.select_from(source.table).join(Ticket, Ticket.id == source.table.ticket_id)


def _counted(source: Source, condition: ColumnElement[bool] | None):
    """count(…) of the rows ``condition`` picks: visits one by one, else distinct tickets."""
    if source is TICKETS:
        counted = func.count()
        return counted.filter(condition) if condition is not None else counted
    if source.per_visit:
        counted = func.count(FollowUp.id)
        return counted.filter(condition) if condition is not None else counted
    # A ticket once per department however often it was returned or extended; summed over
    # departments (a month's trend, the totals) a ticket two departments returned counts twice.
    pair = source.department + literal(":") + cast(source.table.ticket_id, String)
    return func.count(func.distinct(case((condition, pair)) if condition is not None else pair))


def _tune(session: Session) -> None:
    """PostgreSQL settings for the reports' queries, for this transaction only."""
    if session.get_bind().dialect.name != "postgresql":
        return
    # Months of rows grouped by period and department: with the default 4 MB PostgreSQL
    # sorts them on disk; in memory they are hashed.
    session.execute(text("SET LOCAL work_mem = '64MB'"))
    # A big estimate makes PostgreSQL compile the query with LLVM (jit_above_cost): no gain
    # was measured on these queries, and a compile can only add to a short one.
    session.execute(text("SET LOCAL jit = off"))


# The figures the daily roll-up (ticket_days) holds, by the name a figure has here.
_ROLLED = {
    "received": TicketDay.received,
    "accepted": TicketDay.accepted,
    "accepted_on_time": TicketDay.accepted_on_time,
    "finished": TicketDay.finished,
    "finished_on_time": TicketDay.finished_on_time,
    "reopened": TicketDay.reopened,
    "returned": TicketDay.returned,
    "extended": TicketDay.extended,
    "satisfied": TicketDay.visits_satisfied,
    "basically_satisfied": TicketDay.visits_basically_satisfied,
    "unsatisfied": TicketDay.visits_unsatisfied,
}
_VISITS = ("visits", "satisfied", "basically_satisfied", "unsatisfied")


def counts(
    session: Session,
    filters: Filters,
    *,
    buckets: list[Period],
    by_department: bool,
    now: datetime | None = None,
) -> dict[tuple[Any, ...], dict[str, int]]:
    """Every figure per bucket (consecutive periods, which replace the filters' period) and,
    if asked, per department: {(bucket index[, department]): counts}.

    Everything but ``overdue_now`` is summed from the daily roll-up (``ticket_days``, kept in
    step by every ticket change), so a year is read as days, not as a million tickets;
    overdue depends on the moment and is counted on the open tickets, and the visits of one
    source (``source``) on the follow-ups."""
    if filters.matter:
        raise ValueError("the roll-up has no matters: counts() is per department and area")
    now = now or utcnow()
    _tune(session)
    span = Period(buckets[0].first, buckets[-1].last)
    filters = Filters(span, area=filters.area, department=filters.department, source=filters.source)
    grouped: dict[tuple[Any, ...], dict[str, int]] = {}

    def collect(query, groups: int, names: list[str]) -> None:
        for row in session.execute(query):
            values = grouped.setdefault(tuple(row[:groups]), dict.fromkeys(COUNTS, 0))
            for name, value in zip(names, row[groups:], strict=True):
                values[name] = int(value or 0)

    # The roll-up: whole local days, so a bucket is a range of days.
    day_bucket = case(
        *((TicketDay.day <= b.last, literal(i)) for i, b in enumerate(buckets)),
        else_=literal(len(buckets)),
    )
    groups = [day_bucket] + ([TicketDay.department_code] if by_department else [])
    rolled = {n: c for n, c in _ROLLED.items() if not (filters.source and n in _VISITS)}
    conditions = [TicketDay.day >= span.first, TicketDay.day <= span.last]
    if filters.area:
        conditions.append(TicketDay.area_code == ("" if filters.area == NO_AREA else filters.area))
    if filters.department:
        conditions.append(TicketDay.department_code == filters.department)
    else:
        conditions.append(TicketDay.department_code != DESK)
    query = (
        select(*groups, *(func.sum(c) for c in rolled.values()))
        .where(*conditions)
        .group_by(*groups)
    )
    collect(query, len(groups), list(rolled))
    if not filters.source:
        for values in grouped.values():
            values["visits"] = (
                values["satisfied"] + values["basically_satisfied"] + values["unsatisfied"]
            )

    # The tickets: a bucket is a range of moments of receipt.
    def received_bucket(received_at):
        return case(
            *((received_at < b.end, literal(i)) for i, b in enumerate(buckets)),
            else_=literal(len(buckets)),
        )

    # Overdue now: the open tickets, found by their deadline's index.
    groups = [received_bucket(Ticket.received_at)]
    if by_department:
        groups.append(Ticket.lead_department)
    overdue = FIGURES["overdue_now"]
    query = (
        _from(TICKETS)
        .add_columns(*groups, _counted(TICKETS, overdue.condition(now)))
        .where(*_cohort(filters, TICKETS), overdue.condition(now))
        .group_by(*groups)
    )
    collect(query, len(groups), [overdue.name])

    if filters.source:  # the visits of one source, from their own roll-up
        day_bucket = case(
            *((FollowUpDay.day <= b.last, literal(i)) for i, b in enumerate(buckets)),
            else_=literal(len(buckets)),
        )
        groups = [day_bucket] + ([FollowUpDay.department_code] if by_department else [])
        query = (
            select(*groups, FollowUpDay.satisfaction, func.sum(FollowUpDay.visits))
            .where(*_visit_days(filters), FollowUpDay.source == filters.source)
            .group_by(*groups, FollowUpDay.satisfaction)
        )
        for *key, verdict, n in session.execute(query):
            values = grouped.setdefault(tuple(key), dict.fromkeys(COUNTS, 0))
            values[verdict] = values.get(verdict, 0) + int(n)
            values["visits"] += int(n)
    return grouped


def _visit_days(filters: Filters) -> list[ColumnElement[bool]]:
    """The follow-up roll-up's rows of the filters' period, area and department."""
    conditions = [
        FollowUpDay.day >= filters.period.first,
        FollowUpDay.day <= filters.period.last,
    ]
    if filters.area:
        area = "" if filters.area == NO_AREA else filters.area
        conditions.append(FollowUpDay.area_code == area)
    if filters.department:
        conditions.append(FollowUpDay.department_code == filters.department)
    else:
        conditions.append(FollowUpDay.department_code != DESK)
    return conditions


def by_source(session: Session, filters: Filters) -> dict[str, dict[str, dict[str, int]]]:
    """Follow-up verdicts per department and source: {department: {source: {verdict: n}}}."""
    conditions = _visit_days(filters)
    if filters.source:
        conditions.append(FollowUpDay.source == filters.source)
    columns = (FollowUpDay.department_code, FollowUpDay.source, FollowUpDay.satisfaction)
    query = select(*columns, func.sum(FollowUpDay.visits)).where(*conditions).group_by(*columns)
    found: dict[str, dict[str, dict[str, int]]] = {}
    for department, source, verdict, n in session.execute(query):
        per_source = found.setdefault(department, {}).setdefault(
            source, dict.fromkeys(SATISFACTION, 0)
        )
        per_source[verdict] = per_source.get(verdict, 0) + int(n)
    return found


# -- rates and the composite score -----------------------------------------------------------------


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def rates(c: dict[str, int]) -> dict[str, float | None]:
    """The rates of one row of counts; None where there is nothing to divide by."""
    came = c["received"] + c["returned"]
    return {
        "accept_on_time": _ratio(c["accepted_on_time"], c["accepted"]),
        "finish_on_time": _ratio(c["finished_on_time"], c["finished"]),
        "satisfaction": _ratio(c["satisfied"] + c["basically_satisfied"], c["visits"]),
        "returns": _ratio(c["returned"], came),
        "reopens": _ratio(c["reopened"], c["received"]),
        "overdue": _ratio(c["overdue_now"], c["received"]),
    }


_INVERTED = ("returns", "reopens", "overdue")  # shares of what went wrong: 1 − share scores


def weights() -> dict[str, float]:
    """The score's weights from HOTLINE_OVERSIGHT_SCORE_WEIGHTS (parts left out weigh 0)."""
    configured = get_settings().oversight_score_weights
    unknown = sorted(set(configured) - set(PARTS))
    if unknown or any(w < 0 for w in configured.values()):
        raise AppError(
            "oversight.bad_weights",
            f"HOTLINE_OVERSIGHT_SCORE_WEIGHTS: parts are {list(PARTS)}, weights ≥ 0 "
            f"(unknown: {unknown})",
            status_code=500,
        )
    return {part: float(configured.get(part, 0)) for part in PARTS}


def score(row_rates: dict[str, float | None], part_weights: dict[str, float]) -> float | None:
    """100 × the weighted mean of the parts the department has figures for (0-100)."""
    total = weighted = 0.0
    for part, weight in part_weights.items():
        rate = row_rates[part]
        if rate is None or weight <= 0:
            continue
        value = 1 - rate if part in _INVERTED else rate
        total += weight
        weighted += weight * value
    return round(100 * weighted / total, 2) if total else None


def _ranked(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Best score first (no score last); equal scores share a rank (1, 2, 2, 4)."""
    rows.sort(
        key=lambda r: (r["score"] is None, -(r["score"] or 0), -r["counts"]["received"], r["key"])
    )
    for position, r in enumerate(rows, start=1):
        before = rows[position - 2] if position > 1 else None
        same = before is not None and before["score"] == r["score"] and r["score"] is not None
        r["rank"] = before["rank"] if same else position
    return rows


# -- the reports -----------------------------------------------------------------------------------


def _names(session: Session) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    ruleset = routing_service.current_routing(session).ruleset
    return (
        {d.code: d.name for d in ruleset.departments},
        {m.code: m.name for m in ruleset.matters},
        {a.code: a.name for a in ruleset.areas},
    )


def check_area(session: Session, area: str | None) -> None:
    if area and area != NO_AREA and area not in _names(session)[2]:
        raise AppError("oversight.unknown_area", f"unknown area {area!r}")


def _rows(
    departments: dict[str, str],
    grouped: dict[str, dict[str, int]],
    part_weights: dict[str, float],
    sources: dict[str, dict[str, dict[str, int]]] | None,
) -> list[dict[str, Any]]:
    rows = []
    for code, c in grouped.items():
        row_rates = rates(c)
        row = {
            "key": code,
            "name": departments.get(code, code),
            "counts": c,
            "rates": row_rates,
            "score": score(row_rates, part_weights),
        }
        if sources is not None:
            row["satisfaction_by_source"] = sources.get(code, {})
        rows.append(row)
    return _ranked(rows)


def departments_report(
    session: Session,
    *,
    the_period: Period,
    area: str | None = None,
    source: str | None = None,
    with_sources: bool = False,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Each department's figures, rates and composite score over the period, ranked, with the
    change from the previous period (score, rank and tickets received). ``with_sources``:
    each department's verdicts per source of follow-ups too (``satisfaction_by_source``)."""
    now = now or utcnow()
    check_area(session, area)
    departments, _, areas = _names(session)
    part_weights = weights()
    before = the_period.previous()

    # Both periods in one pass over their rows.
    both = counts(
        session,
        Filters(the_period, area=area, source=source),
        buckets=[before, the_period],
        by_department=True,
        now=now,
    )
    split: list[dict[str, dict[str, int]]] = [{}, {}]
    for (index, code), c in both.items():
        split[index][code] = c
    sources = (
        by_source(session, Filters(the_period, area=area, source=source)) if with_sources else None
    )
    current = _rows(departments, split[1], part_weights, sources)
    previous = {r["key"]: r for r in _rows(departments, split[0], part_weights, None)}
    for r in current:
        was = previous.get(r["key"])
        r["previous"] = (
            None
            if was is None
            else {"rank": was["rank"], "score": was["score"], "received": was["counts"]["received"]}
        )
        r["change"] = {
            "score": (
                round(r["score"] - was["score"], 2)
                if was and r["score"] is not None and was["score"] is not None
                else None
            ),
            # positive: moved up the ranking
            "rank": was["rank"] - r["rank"] if was else None,
            "received": r["counts"]["received"] - was["counts"]["received"] if was else None,
        }
    totals = dict.fromkeys(COUNTS, 0)
    for r in current:
        for name in COUNTS:
            totals[name] += r["counts"][name]
    return {
        "period": the_period.as_dict(),
        "previous_period": before.as_dict(),
        "area": area,
        "areas": [{"key": code, "name": name} for code, name in areas.items()],
        "source": source,
        "sources": SOURCES,
        "weights": part_weights,
        "parts": PARTS,
        "figures": {name: f.label for name, f in FIGURES.items()},
        "rows": current,
        "totals": {"counts": totals, "rates": rates(totals)},
        "generated_at": now.isoformat(),
    }


def _buckets(unit: str, last_day: date) -> list[Period]:
    if unit == "month":
        first_month = _add_months(last_day.replace(day=1), -(TREND_MONTHS - 1))
        months = [_add_months(first_month, i) for i in range(TREND_MONTHS)]
        return [Period(m, m.replace(day=_month_length(m))) for m in months]
    if unit == "week":
        monday = last_day - timedelta(days=last_day.weekday())
        mondays = [monday - timedelta(weeks=TREND_WEEKS - 1 - i) for i in range(TREND_WEEKS)]
        return [Period(m, m + timedelta(days=6)) for m in mondays]
    raise AppError("oversight.bad_unit", "unit is week or month")


def trends(
    session: Session,
    *,
    unit: str,
    the_period: Period,
    area: str | None = None,
    department: str | None = None,
    source: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The figures and score per week (the 13 weeks up to the period's last day) or per month
    (the 12 months up to it), for every department together or for one."""
    now = now or utcnow()
    check_area(session, area)
    buckets = _buckets(unit, the_period.last)
    span = Period(buckets[0].first, buckets[-1].last)

    filters = Filters(span, area=area, department=department, source=source)
    grouped = counts(session, filters, buckets=buckets, by_department=False, now=now)
    part_weights = weights()
    points = []
    for i, b in enumerate(buckets):
        c = grouped.get((i,), dict.fromkeys(COUNTS, 0))
        bucket_rates = rates(c)
        points.append(
            {
                **b.as_dict(),
                "label": f"{b.first.month}月" if unit == "month" else f"{b.first:%m-%d}周",
                "counts": c,
                "rates": bucket_rates,
                "score": score(bucket_rates, part_weights),
            }
        )
    return {"unit": unit, "area": area, "department": department, "points": points}


def matters_by_area(
    session: Session, *, the_period: Period, area: str | None = None
) -> dict[str, Any]:
    """Tickets received per matter and area (where requests come from), busiest matter first;
    the desk's tickets included: a request counts where it came from, handled or not."""
    check_area(session, area)
    _tune(session)
    _, matters, areas = _names(session)
    query = (
        select(Ticket.matter_code, Ticket.area_code, func.count())
        .where(*_cohort(Filters(the_period, area=area), TICKETS, with_desk=True))
        .group_by(Ticket.matter_code, Ticket.area_code)
    )
    cells: dict[str, dict[str, int]] = {}
    for matter, area_code, n in session.execute(query):
        cells.setdefault(matter, {})[area_code or NO_AREA] = n
    used_areas = {a for row in cells.values() for a in row}
    columns = [{"key": code, "name": name} for code, name in areas.items() if code in used_areas]
    if NO_AREA in used_areas:
        columns.append({"key": NO_AREA, "name": "未定位"})
    rows = [
        {
            "key": matter,
            "name": matters.get(matter, matter),
            "cells": {c["key"]: row.get(c["key"], 0) for c in columns},
            "total": sum(row.values()),
        }
        for matter, row in cells.items()
    ]
    rows.sort(key=lambda r: (-r["total"], r["key"]))
    column_totals = {c["key"]: sum(r["cells"][c["key"]] for r in rows) for c in columns}
    return {
        "period": the_period.as_dict(),
        "area": area,
        "columns": columns,
        "rows": rows,
        "totals": column_totals,
        "total": sum(column_totals.values()),
    }


@dataclass
class Drill:
    figure: str
    total: int
    items: list[dict[str, Any]] = field(default_factory=list)


def drill(
    session: Session,
    *,
    figure: str,
    filters: Filters,
    all_departments: bool = False,
    now: datetime | None = None,
    limit: int = DRILL_LIMIT,
) -> Drill:
    """The rows behind one figure: tickets (or visits), newest first, at most ``limit`` of them
    and how many there are in all. ``all_departments``: the matter × area table's cells, which
    count the desk's tickets too."""
    if figure not in FIGURES:
        raise AppError("oversight.unknown_figure", f"figure is one of {list(FIGURES)}")
    check_area(session, filters.area)
    _tune(session)
    now = now or utcnow()
    f = FIGURES[figure]
    source = f.source
    conditions = _cohort(filters, source, with_desk=all_departments)
    condition = f.condition(now)
    if condition is not None:
        conditions.append(condition)
    columns = [
        Ticket.number,
        Ticket.received_at,
        Ticket.status,
        Ticket.matter_code,
        Ticket.area_code,
        Ticket.lead_department,
    ]
    if source.per_visit:
        extra = [FollowUp.at, FollowUp.satisfaction, FollowUp.source, FollowUp.department_code]
        order = [FollowUp.at.desc(), FollowUp.id.desc()]
    else:
        extra = [source.department.label("department_code")] if source is not TICKETS else []
        order = [Ticket.received_at.desc(), Ticket.id.desc()]
    base = _from(source).where(*conditions)
    if source is TICKETS or source.per_visit:
        total = session.scalar(base.add_columns(func.count()))
        query = base.add_columns(*columns, *extra).order_by(*order).limit(limit)
    else:  # one row per ticket and department, however often it was returned or extended
        total = session.scalar(base.add_columns(_counted(source, None)))
        query = (
            base.add_columns(*columns, *extra)
            .distinct()
            .order_by(Ticket.received_at.desc(), Ticket.number.desc())
            .limit(limit)
        )
    items = []
    for row in session.execute(query):
        item = dict(row._mapping)
        item["received_at"] = item["received_at"].isoformat()
        if "at" in item:
            item["at"] = item["at"].isoformat()
        items.append(item)
    return Drill(figure=figure, total=total or 0, items=items)
