"""What-if replay: re-route past tickets under a draft rule set and report what would move.

The draft is a YAML file in the shape of the shipped ``matters.yaml`` / ``departments.yaml``,
holding only what changes:

    matters:                      # each replaces that matter's rule (level and type)
      - {code: JT-02, level: area, type: transport}
    departments:                  # each is added or replaces the department with that code
      - {code: GX-MARKET, name: 珠海市市场监督管理局高新分局, level: area, area: GX,
         types: [market], active: false}

Every ticket received since the given day is routed again with its own text, address and
matter under the draft, and compared with the department the ticket was routed to.
"""

from __future__ import annotations

import dataclasses
from collections import Counter as Tally
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from dispatch.routing import ruleset as rs
from dispatch.routing import service as routing_service
from dispatch.routing.engine import route
from dispatch.routing.resolver import LocationResolver
from dispatch.tickets.models import Ticket
from hotline.core.errors import AppError
from hotline.core.settings import get_settings


@dataclass
class ReplayReport:
    tickets: int = 0
    moved: int = 0
    per_department: dict[str, dict[str, int]] = field(default_factory=dict)
    moves: Tally = field(default_factory=Tally)
    names: dict[str, str] = field(default_factory=dict)
    # The first tickets that would move, for a person to look at (the tallies count them all).
    moved_tickets: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "tickets": self.tickets,
            "moved": self.moved,
            "per_department": self.per_department,
            "moves": [{"from": a, "to": b, "tickets": n} for (a, b), n in self.moves.most_common()],
            "moved_tickets": self.moved_tickets,
        }


def load_draft(path: Path) -> dict[str, Any]:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise AppError("replay.bad_file", f"cannot read the draft rules {path}: {exc}") from exc
    if not isinstance(document, dict) or not set(document) <= {"matters", "departments"}:
        raise AppError("replay.bad_file", "the draft holds only `matters:` and `departments:`")
    return document


def draft_ruleset(current: rs.RuleSet, draft: dict[str, Any]) -> rs.RuleSet:
    """The current rules with the draft's changes applied (checked like any rule set)."""
    matters = {m.code: m for m in current.matters}
    for row in draft.get("matters") or []:
        code = row.get("code")
        if code not in matters:
            raise AppError("replay.unknown_matter", f"the draft names an unknown matter {code!r}")
        # One undated version: the draft applies to every replayed ticket, whatever its day.
        rule = rs.MatterRuleVersion(version=1, level=row["level"], type=row["type"])
        matters[code] = dataclasses.replace(matters[code], versions=(rule,))
    departments = {d.code: d for d in current.departments}
    for row in draft.get("departments") or []:
        if row.get("active", True) is False:
            departments.pop(row["code"], None)
            continue
        departments[row["code"]] = rs.Department(
            code=row["code"],
            name=row.get("name", row["code"]),
            level=row["level"],
            area=row.get("area"),
            town=row.get("town"),
            types=tuple(row.get("types", ())),
        )
    try:
        return dataclasses.replace(
            current, matters=tuple(matters.values()), departments=tuple(departments.values())
        )
    except (rs.RuleSetError, KeyError, ValueError) as exc:
        raise AppError("replay.inconsistent", f"the draft rules are inconsistent: {exc}") from exc


MOVED_TICKETS_LISTED = 200


def replay(
    session: Session, draft: dict[str, Any], since: date, *, list_moved: int = MOVED_TICKETS_LISTED
) -> ReplayReport:
    """Route every ticket received since ``since`` under the draft; tally who gains and loses,
    and list the first ``list_moved`` tickets that would go elsewhere."""
    current = routing_service.current_routing(session).ruleset
    rules = draft_ruleset(current, draft)
    resolver = LocationResolver(rules)
    tz = get_settings().tz
    start = datetime.combine(since, time.min, tzinfo=tz)
    report = ReplayReport(
        names={d.code: d.name for d in (*current.departments, *rules.departments)}
    )
    rows = session.execute(
        select(
            Ticket.number,
            Ticket.content,
            Ticket.address,
            Ticket.matter_code,
            Ticket.received_at,
            Ticket.major,
            Ticket.routing,
        )
        .where(Ticket.received_at >= start)
        .order_by(Ticket.id)
        .execution_options(yield_per=2000)
    )
    for number, content, address, matter_code, received_at, major, taken in rows:
        was = taken["department"]["code"]
        decision = route(
            rules,
            resolver,
            matter_code=matter_code,
            text=content,
            address=address,
            received_on=received_at.astimezone(tz).date(),
            major=major,
        )
        now = decision.department.code
        report.tickets += 1
        for code in {was, now}:
            report.per_department.setdefault(code, {"before": 0, "after": 0, "lose": 0, "gain": 0})
        report.per_department[was]["before"] += 1
        report.per_department[now]["after"] += 1
        if now != was:
            report.moved += 1
            report.per_department[was]["lose"] += 1
            report.per_department[now]["gain"] += 1
            report.moves[(was, now)] += 1
            if len(report.moved_tickets) < list_moved:
                report.moved_tickets.append(
                    {
                        "number": number,
                        "matter_code": matter_code,
                        "from": was,
                        "to": now,
                        "received_at": received_at.astimezone(tz).isoformat(),
                    }
                )
    return report


def format_report(report: ReplayReport, since: date) -> str:
    lines = [
        f"{report.tickets} tickets received since {since.isoformat()}; "
        f"{report.moved} would go to another department under the draft",
        "",
        f"{'department':<14}{'before':>8}{'after':>8}{'lose':>7}{'gain':>7}  name",
    ]
    changed = sorted(
        (c for c, row in report.per_department.items() if row["lose"] or row["gain"]),
        key=lambda c: (-(report.per_department[c]["lose"] + report.per_department[c]["gain"]), c),
    )
    for code in changed:
        row = report.per_department[code]
        lines.append(
            f"{code:<14}{row['before']:>8}{row['after']:>8}{row['lose']:>7}{row['gain']:>7}  "
            f"{report.names.get(code, '')}"
        )
    if not changed:
        lines.append("(no department would change)")
    if report.moves:
        lines += ["", "moves:"]
        lines += [f"  {a} → {b}: {n}" for (a, b), n in report.moves.most_common(20)]
    return "\n".join(lines)
