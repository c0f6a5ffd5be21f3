"""The daily roll-up (ticket_days) kept by the ticket changes equals a count from scratch,
after every lifecycle action and the deadline job."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select

from dispatch.tickets import jobs, rollup
from dispatch.tickets.models import Ticket
from hotline.core import db

ZHUHAI = ZoneInfo("Asia/Shanghai")
GX_MARKET = "GX-MARKET"


def _read(session) -> dict[tuple, dict[str, int]]:
    """Both roll-ups' rows that count something, by their keys."""
    days = {
        (r.day, r.department_code, r.area_code): {n: getattr(r, n) for n in rollup.FIGURES}
        for r in session.scalars(select(rollup.TicketDay))
    }
    visits = {
        (r.day, r.department_code, r.area_code, r.source, r.satisfaction): {"visits": r.visits}
        for r in session.scalars(select(rollup.FollowUpDay))
    }
    return {k: v for k, v in (days | visits).items() if any(v.values())}


def kept() -> dict[tuple, dict[str, int]]:
    with db.transaction() as session:
        return _read(session)


def counted_again() -> dict[tuple, dict[str, int]]:
    session = db.new_session()
    try:
        rollup.rebuild(session)
        return _read(session)
    finally:
        session.rollback()
        session.close()


def test_the_roll_up_follows_every_action(desk, clock):
    clock.set(datetime(2026, 11, 3, 9, 0, tzinfo=ZHUHAI))
    steps = []

    def check(label: str) -> None:
        steps.append(label)
        assert kept() == counted_again(), steps

    numbers = [desk.create()["number"] for _ in range(4)]
    # one received just before local midnight: its day is the local one, not UTC's
    late = desk.create(received_at=datetime(2026, 11, 2, 23, 30, tzinfo=ZHUHAI))["number"]
    check("created")
    a, b, c, d = numbers
    for number, action, as_, body in [
        (a, "accept", "market", {}),
        (b, "return", "market", {"reason": "属高新区"}),
        (b, "dispatch", "dispatcher", {"department": GX_MARKET}),
        (b, "return", "gx_market", {"reason": "不属本部门"}),
        (b, "dispatch", "dispatcher", {"department": "XZ-MARKET"}),
        (b, "return", "market", {"reason": "仍不属本部门"}),  # the market's second: once
        (c, "accept", "market", {}),
        (c, "request-extension", "market", {"reason": "需现场核查", "working_days": 3}),
        (c, "decide-extension", "supervisor", {"approve": True}),
        (c, "request-extension", "market", {"reason": "再需核查", "working_days": 2}),
        (c, "decide-extension", "supervisor", {"approve": True}),  # extended once
        (a, "request-extension", "market", {"reason": "需现场核查", "working_days": 3}),
        (a, "decide-extension", "supervisor", {"approve": False}),
        (a, "reply", "market", {"reply": "已退款"}),
        (a, "visit", "agent", {"satisfaction": "unsatisfied"}),  # 重办
        (a, "reply", "market", {"reply": "再次处理"}),
        (a, "visit", "agent", {"satisfaction": "satisfied"}),
        (c, "reply", "market", {"reply": "已核查"}),
        (c, "visit", "agent", {"satisfaction": "basically_satisfied"}),
        (late, "accept", "market", {}),
    ]:
        clock.advance(hours=2)
        response = desk.attempt(number, action, as_, **body)
        assert response.status_code == 200, (action, response.text)
        check(f"{action} {number}")
    clock.advance(days=3)
    with db.transaction() as session:
        ticket = session.scalar(select(Ticket).where(Ticket.number == d))
        ticket_id, deadline = ticket.id, ticket.accept_deadline
    assert jobs.deadline_passed(ticket_id, "accept", deadline.isoformat()) != "not running"
    check("accept deadline passed")
    assert sum(r.get("returned", 0) for r in kept().values()) == 2  # market once, GX once
    assert sum(r.get("extended", 0) for r in kept().values()) == 1
    assert sum(r.get("received", 0) for r in kept().values()) == 5
    assert sum(r.get("visits", 0) for r in kept().values()) == 3


def test_merged_tickets_count_once_for_the_work_and_per_caller_for_satisfaction(desk, clock):
    """并单: three callers about one incident are one piece of work for the department (the
    parent's), but each caller's verdict on the answer counts."""
    from dispatch.tickets import service as tickets
    from hotline.core.auth import Principal

    clock.set(datetime(2026, 11, 3, 9, 0, tzinfo=ZHUHAI))
    parent, *children = [desk.create()["number"] for _ in range(3)]
    dispatcher = Principal(0, "dispatcher", frozenset({"dispatcher"}), frozenset())
    with db.transaction() as session:
        rows = {t.number: t for t in session.scalars(select(Ticket))}
        for child in children:
            tickets.merge_into(session, dispatcher, rows[child], rows[parent])
    assert kept() == counted_again()
    assert sum(r.get("received", 0) for r in kept().values()) == 1

    for action, as_, body in [
        ("accept", "market", {}),
        ("reply", "market", {"reply": "已抢修"}),
    ]:
        clock.advance(hours=2)
        assert desk.attempt(parent, action, as_, **body).status_code == 200
    for number, verdict in zip(
        [parent, *children], ["satisfied", "unsatisfied", "satisfied"], strict=True
    ):
        response = desk.attempt(number, "visit", "agent", satisfaction=verdict)
        assert response.status_code == 200, response.text
    assert kept() == counted_again()
    figures = kept().values()
    assert sum(r.get("received", 0) for r in figures) == 1
    assert sum(r.get("finished", 0) for r in figures) == 1
    assert sum(r.get("visits_satisfied", 0) for r in figures) == 2
    assert sum(r.get("visits_unsatisfied", 0) for r in figures) == 1
    assert sum(r.get("visits", 0) for r in figures) == 3  # follow_up_days: one per caller
