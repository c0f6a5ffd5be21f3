"""A generated history of tickets for the oversight reports' tests and benchmark.

Tickets are written straight into the tables in bulk (not through the lifecycle, which would
take hours for a year of a city's tickets), with everything the reports read: receipt,
area, matter, lead department, the on-time verdicts, reopenings, open tickets' deadlines,
returns (trail rows), extension requests and follow-up visits of two sources. The generated
rows are returned too, so that a test can count them by itself.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session

from dispatch.routing import service as routing_service
from dispatch.tickets import rollup
from dispatch.tickets.models import ExtensionRequest, FollowUp, Ticket, TicketAction
from dispatch.tickets.service import DESK

VERDICTS = ("satisfied", "basically_satisfied", "unsatisfied")


@dataclass
class History:
    tickets: list[dict[str, Any]] = field(default_factory=list)
    returns: list[dict[str, Any]] = field(default_factory=list)
    extensions: list[dict[str, Any]] = field(default_factory=list)
    follow_ups: list[dict[str, Any]] = field(default_factory=list)


def _ticket(
    rng: random.Random,
    ticket_id: int,
    received_at: datetime,
    now: datetime,
    departments: list[str],
    areas: list[str],
    matters: list[str],
) -> dict[str, Any]:
    at_desk = rng.random() < 0.03
    department = DESK if at_desk else rng.choice(departments)
    accepted = None if at_desk or rng.random() < 0.12 else rng.random() < 0.9
    finished = None if accepted is None or rng.random() < 0.15 else rng.random() < 0.85
    reopened = finished is not None and rng.random() < 0.06
    if at_desk:
        status = "pending_dispatch"
    elif accepted is None:
        status = "dispatched"
    elif finished is None:
        status = "accepted"
    else:
        status = rng.choice(("replied", "visited", "closed", "closed", "closed"))
    open_ = status in ("dispatched", "accepted")
    due_at = now + timedelta(hours=rng.uniform(-240, 240)) if open_ else None
    return {
        "id": ticket_id,
        "number": f"SY{ticket_id:012d}",
        "channel": "phone",
        "content": "生成的工单",
        "area_code": None if rng.random() < 0.08 else rng.choice(areas),
        "matter_code": rng.choice(matters),
        "kind": "投诉",
        "rule_version": "synthetic",
        "routing": {},
        "lead_department": department,
        "status": status,
        "received_at": received_at,
        "accepted_at": received_at + timedelta(hours=5) if accepted is not None else None,
        "accepted_on_time": accepted,
        "finished_on_time": finished,
        "reopen_count": 1 if reopened else 0,
        "due_at": due_at,
        "created_by": "synthetic",
        "created_at": received_at,
        "updated_at": received_at,
        "ruled_departments": [],
        "visits_satisfied": 0,
        "visits_basically_satisfied": 0,
        "visits_unsatisfied": 0,
    }


def _text(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, dict | list) else value


def _copy(session: Session, model: Any, rows: list[dict[str, Any]]) -> None:
    """Rows into a PostgreSQL table by COPY (several times faster than INSERTs for a million
    tickets), with the model's Python-side defaults the INSERT would have added."""
    table = model.__table__
    defaults = {
        c.name: c.default.arg
        for c in table.columns
        if c.default is not None and c.name not in rows[0] and not c.primary_key
    }
    names = [*rows[0], *defaults]
    fixed = [_text(arg(None) if callable(arg) else arg) for arg in defaults.values()]
    cursor = session.connection().connection.driver_connection.cursor()
    with cursor.copy(f"COPY {table.name} ({', '.join(names)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([*(_text(v) for v in row.values()), *fixed])


def generate(
    session: Session,
    *,
    tickets: int,
    start: datetime,
    end: datetime,
    now: datetime,
    seed: int = 12345,
    departments: int = 40,
    batch: int = 20_000,
) -> History:
    """Insert ``tickets`` tickets received between ``start`` and ``end`` (in receipt order, as
    a real history grows) and what the reports read of them. Needs the seeded reference data.
    Keeps everything in memory only for small runs (under 200,000 tickets)."""
    rng = random.Random(seed)
    ruleset = routing_service.current_routing(session).ruleset
    codes = sorted(d.code for d in ruleset.departments if d.code != DESK)
    chosen = rng.sample(codes, min(departments, len(codes)))
    areas = sorted(a.code for a in ruleset.areas)
    matters = sorted(m.code for m in ruleset.matters)[:120]
    keep = tickets < 200_000
    history = History()
    first_id = (session.scalar(select(func.max(Ticket.id))) or 0) + 1
    span = (end - start).total_seconds()
    offsets = sorted(rng.random() * span for _ in range(tickets))
    pending: dict[str, list[dict[str, Any]]] = {
        "tickets": [],
        "returns": [],
        "extensions": [],
        "follow_ups": [],
    }

    copy = session.get_bind().dialect.name == "postgresql"

    def flush() -> None:
        for name, model in (
            ("tickets", Ticket),
            ("returns", TicketAction),
            ("extensions", ExtensionRequest),
            ("follow_ups", FollowUp),
        ):
            if pending[name]:
                if copy:
                    _copy(session, model, pending[name])
                else:
                    session.execute(insert(model), pending[name])
                if keep:
                    getattr(history, name).extend(pending[name])
                pending[name] = []

    for i, offset in enumerate(offsets):
        received_at = (start + timedelta(seconds=offset)).astimezone(UTC)
        t = _ticket(rng, first_id + i, received_at, now, chosen, areas, matters)
        pending["tickets"].append(t)
        lead = t["lead_department"]
        if rng.random() < 0.05:  # returned by one or two departments before reaching its lead
            for _ in range(rng.choice((1, 1, 2))):
                pending["returns"].append(
                    {
                        "ticket_id": t["id"],
                        "action": "return",
                        "actor": "synthetic",
                        "at": received_at + timedelta(hours=1),
                        "department_code": rng.choice(chosen),
                        "detail": {"reason": "不属本部门"},
                    }
                )
        if lead != DESK and t["accepted_on_time"] is not None and rng.random() < 0.05:
            pending["extensions"].append(
                {
                    "ticket_id": t["id"],
                    "department_code": lead,
                    "requested_by": "synthetic",
                    "requested_at": received_at + timedelta(days=1),
                    "working_days": 3,
                    "reason": "需现场核查",
                    "status": rng.choice(("approved", "approved", "rejected", "pending")),
                }
            )
        if t["finished_on_time"] is not None:
            visits = ["unsatisfied"] if t["reopen_count"] else []
            if rng.random() < 0.75:
                visits.append(rng.choices(VERDICTS, weights=(70, 20, 10))[0])
            for verdict in visits:
                t[f"visits_{verdict}"] += 1
                pending["follow_ups"].append(
                    {
                        "ticket_id": t["id"],
                        "department_code": lead,
                        "source": "app" if rng.random() < 0.15 else "hotline",
                        "satisfaction": verdict,
                        "resolved": verdict != "unsatisfied",
                        "actor": "synthetic",
                        "at": received_at + timedelta(days=3),
                    }
                )
        if len(pending["tickets"]) >= batch:
            flush()
    flush()
    # Written around the ORM, so the daily roll-up's hook saw none of it.
    rollup.rebuild(session)
    if session.get_bind().dialect.name == "postgresql":
        # Explicit ids leave the sequence behind; the next ticket taken by the API needs it.
        session.execute(
            text(
                "SELECT setval(pg_get_serial_sequence('tickets', 'id'), "
                "(SELECT max(id) FROM tickets))"
            )
        )
    return history
