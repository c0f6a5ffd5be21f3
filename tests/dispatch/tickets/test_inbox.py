"""What each caller sees: a department's inbox and its limits, masking, filters by deadline."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

MARKET = "XZ-MARKET"
GX_MARKET = "GX-MARKET"
TANGJIAWAN = "香洲区唐家湾镇金鼎"
PHONE = "13812341234"
MASKED = "138****1234"
ZHUHAI = ZoneInfo("Asia/Shanghai")

pytestmark = pytest.mark.usefixtures("desk")


def zhuhai(*args: int) -> datetime:
    return datetime(*args, tzinfo=ZHUHAI)


def test_a_department_never_sees_another_departments_ticket(desk):
    mine = desk.create()["number"]
    theirs = desk.create(address=TANGJIAWAN)["number"]
    assert desk.get(theirs)["lead_department"] == GX_MARKET

    hidden = desk.get(theirs, as_="market", expect=404)
    missing = desk.get("ZH20260101999999", as_="market", expect=404)
    assert hidden["error"]["code"] == missing["error"]["code"] == "ticket.not_found"
    for action, body in [
        ("accept", {}),
        ("return", {"reason": "不属本单位"}),
        ("unknown-but-visible-anyway", {}),
    ]:
        answer = desk.attempt(theirs, action, "market", **body)
        if action.startswith("unknown"):
            # An unknown action is refused before the ticket is looked up: no leak either.
            assert answer.status_code == 409
        else:
            assert answer.status_code == 404, answer.text
    assert desk.get(theirs)["status"] == "dispatched"

    assert desk.numbers("market") == [mine]
    assert desk.numbers("gx_market") == [theirs]
    assert desk.numbers("market", department=GX_MARKET) == []
    assert desk.numbers("market", status="dispatched") == [mine]
    assert desk.numbers("xz_gov") == []
    desk.get(mine, as_="xz_gov", expect=404)


def test_departments_see_the_caller_phone_masked_and_hotline_roles_in_full(desk):
    created = desk.create(co_departments=["XZ-GOV"])
    number = created["number"]
    assert created["caller_phone"] == PHONE
    for hotline_role in ("agent", "dispatcher", "supervisor", "admin"):
        assert desk.get(number, as_=hotline_role)["caller_phone"] == PHONE, hotline_role
        assert desk.listing(hotline_role)[0]["caller_phone"] == PHONE, hotline_role
    for department in ("market", "xz_gov"):  # the lead and a co-handling department
        shown = desk.get(number, as_=department)
        assert shown["caller_phone"] == MASKED, department
        assert PHONE not in str(shown), department
        assert desk.listing(department)[0]["caller_phone"] == MASKED, department
    accepted = desk.act(number, "accept", "market")
    assert accepted["caller_phone"] == MASKED


def test_a_department_inbox_lists_its_open_tickets_soonest_deadline_first(desk):
    normal = desk.create()["number"]  # accept by the end of the next working day
    urgent = desk.create(matter_code="SC-05", content="电梯困人")["number"]  # within the hour
    accepted = desk.ticket_in("accepted")  # finish in 10 working days
    as_co = desk.create(address=TANGJIAWAN, co_departments=[MARKET])["number"]
    replied = desk.ticket_in("replied")
    closed = desk.ticket_in("closed")
    elsewhere = desk.create(address=TANGJIAWAN)["number"]
    at_desk = desk.ticket_in("pending_dispatch")

    inbox = desk.listing("market")
    assert [t["number"] for t in inbox] == [urgent, normal, as_co, accepted]
    due = [t["due_at"] for t in inbox]
    assert due == sorted(due)
    assert {t["status"] for t in inbox} == {"dispatched", "accepted"}
    assert desk.numbers("market", status="accepted") == [accepted]
    assert desk.numbers("market", status="closed") == [closed]
    assert desk.numbers("market", status="replied") == [replied]
    assert desk.numbers("market", limit=2) == [urgent, normal]
    assert desk.numbers("market", limit=2, offset=2) == [as_co, accepted]
    assert desk.numbers("gx_market") == [as_co, elsewhere]

    everything = desk.numbers("dispatcher", limit=200)
    assert set(everything) == {normal, urgent, accepted, as_co, replied, closed, elsewhere, at_desk}
    assert desk.numbers("dispatcher", status="pending_dispatch") == [at_desk]
    assert set(desk.numbers("supervisor", department=GX_MARKET)) == {as_co, elsewhere}


def test_a_department_finds_its_answered_and_co_handled_tickets_again(desk):
    first_reply = desk.ticket_in("replied", content="超市卖过期牛奶，要求退款")
    visited = desk.ticket_in("visited")
    second_reply = desk.ticket_in("replied")
    closed = desk.ticket_in("closed")
    open_ = desk.create()["number"]
    co_open = desk.create(address=TANGJIAWAN, co_departments=[MARKET])["number"]
    co_closed = desk.create(address=TANGJIAWAN, co_departments=[MARKET])["number"]
    desk.act(co_closed, "answer-directly", "agent", answer="已当场答复")

    # Answered tickets: newest first, replied and visited together in one tab.
    assert desk.numbers("market", status="replied,visited") == [second_reply, visited, first_reply]
    assert desk.numbers("market", status="closed", role="lead") == [closed]
    assert desk.numbers("market", status="closed") == [co_closed, closed]
    # Co-handling (协办): every ticket the department co-handles, open or not.
    assert desk.numbers("market", role="co") == [co_open, co_closed]
    assert desk.numbers("market", role="co", status="closed") == [co_closed]
    assert desk.numbers("gx_market", role="co") == []
    assert open_ in desk.numbers("market", role="lead")
    assert set(desk.numbers("supervisor", role="co")) == {co_open, co_closed}

    # Search by number (whole or a part) and by words of the content.
    assert desk.numbers("market", status="replied,visited", q=first_reply) == [first_reply]
    assert desk.numbers("market", status="replied,visited", q=first_reply[-6:].lower()) == [
        first_reply
    ]
    assert desk.numbers("market", status="replied,visited", q="过期牛奶") == [first_reply]
    assert desk.numbers("market", q="过期牛奶") == []  # not in the open inbox
    assert desk.numbers("gx_market", status="replied,visited", q="过期牛奶") == []
    refused = desk.client.get(
        "/api/v1/tickets", params={"status": "replied,lost"}, headers=desk.headers["market"]
    )
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "ticket.unknown_status"


def test_a_department_cannot_find_tickets_by_the_callers_masked_data(desk):
    number = desk.create(content=f"商家拒绝退款，请回电{PHONE}", caller_name="王小明")["number"]
    for probe in (PHONE, PHONE[3:], "王小明"):
        assert desk.numbers("market", q=probe) == [], probe
        assert desk.numbers("agent", q=probe) == [number], probe
    assert desk.numbers("market", q="请回电") == [number]
    # Pages count what the department may find, not what the database matched.
    others = [desk.create(content=f"第{n}件：商家拒绝退款")["number"] for n in range(3)]
    pages = [desk.numbers("market", q="商家拒绝退款", limit=2, offset=o) for o in (0, 2)]
    assert sorted(pages[0] + pages[1]) == sorted([number, *others])


def test_a_member_of_two_departments_pages_through_each_ticket_once(desk):
    both = desk.create(co_departments=["XZ-GOV"])["number"]  # lead XZ-MARKET, co XZ-GOV
    market_only = desk.create()["number"]
    gov_only = desk.create(address=TANGJIAWAN, co_departments=["XZ-GOV"])["number"]
    assert desk.numbers("two_hats") == [both, market_only, gov_only]
    pages = [desk.numbers("two_hats", limit=1, offset=offset) for offset in range(3)]
    assert pages == [[both], [market_only], [gov_only]]
    assert desk.numbers("two_hats", department="XZ-GOV") == [both, gov_only]


def test_the_overdue_filter_lists_the_tickets_past_their_deadline(desk, clock):
    clock.set(zhuhai(2026, 11, 10, 9, 0))
    late = desk.create()["number"]  # to be accepted by Wed 2026-11-11 23:59:59
    late_to_finish = desk.ticket_in("accepted")  # finish by 2026-11-24 23:59:59
    clock.set(zhuhai(2026, 11, 12, 8, 0))
    fresh = desk.create()["number"]
    assert desk.get(late)["deadline_status"] == "overdue"
    assert desk.get(fresh)["deadline_status"] == "ok"
    assert desk.get(late_to_finish)["deadline_status"] == "ok"
    assert desk.numbers("market", due="overdue") == [late]
    assert desk.numbers("dispatcher", due="overdue") == [late]
    clock.set(zhuhai(2026, 11, 25, 0, 0, 1))
    assert desk.numbers("market", due="overdue") == [late, fresh, late_to_finish]


def test_the_due_soon_filter_agrees_with_the_tickets_yellow_status(desk, clock):
    """due=soon must list exactly the inbox tickets whose deadline_status is due_soon (past
    80 % of their time), whatever their deadline: a console's yellow tickets and its
    "due soon" filter cannot disagree."""
    clock.set(zhuhai(2026, 11, 2, 9, 0))
    long_running = desk.ticket_in("accepted")  # finish by Mon 2026-11-16 23:59:59
    clock.set(zhuhai(2026, 11, 14, 11, 55))
    urgent = desk.create(matter_code="SC-05", content="电梯困人")["number"]  # by 12:55
    fresh = desk.create()["number"]  # by Mon 2026-11-16 23:59:59
    clock.set(zhuhai(2026, 11, 14, 12, 0))

    colours = {t["number"]: t["deadline_status"] for t in desk.listing("market")}
    assert colours == {long_running: "due_soon", urgent: "ok", fresh: "ok"}
    yellow = {number for number, colour in colours.items() if colour == "due_soon"}
    assert set(desk.numbers("market", due="soon")) == yellow
    assert set(desk.numbers("dispatcher", due="soon")) == yellow
