"""Duplicates (suggested at intake, linked by hand, following their parent) and the ticket
report by department, matter and area."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

MARKET = "XZ-MARKET"
GX_MARKET = "GX-MARKET"
TANGJIAWAN = "香洲区唐家湾镇金鼎"
JIDA = "香洲区吉大景山公园"
ZHUHAI = ZoneInfo("Asia/Shanghai")

pytestmark = pytest.mark.usefixtures("desk")


def zhuhai(*args: int) -> datetime:
    return datetime(*args, tzinfo=ZHUHAI)


# -- duplicates suggested at intake -------------------------------------------------------------


def test_possible_duplicates_share_caller_matter_and_town_within_seven_days(desk):
    received = datetime.now(ZHUHAI).replace(microsecond=0) - timedelta(hours=1)
    too_old = desk.create(received_at=received - timedelta(days=7, seconds=1))
    week_old = desk.create(received_at=received - timedelta(days=7))
    assert week_old["possible_duplicates"] == [too_old["number"]]  # one second apart
    yesterday = desk.create(received_at=received - timedelta(days=1))
    desk.create(received_at=received - timedelta(hours=2), address=JIDA)  # another town
    desk.create(received_at=received - timedelta(hours=2), matter_code="SC-04")  # another matter
    desk.create(received_at=received - timedelta(hours=2), caller_phone="13900001111")

    latest = desk.create(received_at=received)
    assert latest["possible_duplicates"] == [yesterday["number"], week_old["number"]]
    # The suggestion is only a suggestion: nothing is linked yet.
    assert desk.get(latest["number"])["parent"] is None


def test_without_a_caller_phone_nothing_is_suggested(desk):
    desk.create(caller_phone="")
    assert desk.create(caller_phone="")["possible_duplicates"] == []


def test_a_ticket_entered_late_is_told_of_the_same_request_received_after_it(desk):
    """Within 7 days means either side: a web form from two days ago, typed in after the
    caller phoned about the same matter today, is a duplicate of today's ticket."""
    today = desk.create()
    entered_late = desk.create(received_at=datetime.now(ZHUHAI) - timedelta(days=2))
    assert entered_late["possible_duplicates"] == [today["number"]]


# -- linking -------------------------------------------------------------------------------------


def link(desk, number: str, parent: str, as_: str = "agent"):
    return desk.client.post(
        f"/api/v1/tickets/{number}/link", json={"parent": parent}, headers=desk.headers[as_]
    )


def unlink(desk, number: str, as_: str = "agent"):
    return desk.client.post(f"/api/v1/tickets/{number}/unlink", headers=desk.headers[as_])


def test_linked_tickets_follow_their_parents_reply_and_close(desk, events, last_event):
    parent = desk.create()["number"]
    same_department = desk.create()["number"]
    elsewhere = desk.create(address=TANGJIAWAN)["number"]
    for child in (same_department, elsewhere):
        linked = link(desk, child, parent)
        assert linked.status_code == 200, linked.text
        assert linked.json()["parent"] == parent
    assert desk.get(elsewhere, as_="gx_market")["parent"] == parent
    assert desk.get(elsewhere)["trail"][-1]["action"] == "link"

    desk.act(parent, "accept", "market")
    mark = last_event()
    desk.act(parent, "reply", "market", reply="已督促商家全额退款")
    for child, department in ((same_department, MARKET), (elsewhere, GX_MARKET)):
        followed = desk.get(child)
        assert followed["status"] == "replied"
        assert followed["reply"] == "已督促商家全额退款"
        assert followed["due_at"] is None
        entry = followed["trail"][-1]
        assert entry["action"] == "follow_parent" and entry["detail"] == {"parent": parent}
        assert (f"tickets.dept.{department}", "ticket.follow_parent") in [
            (e["topic"], e["type"]) for e in events(mark) if e["data"]["number"] == child
        ]
    assert desk.numbers("market") == []
    assert desk.numbers("gx_market") == []

    desk.act(parent, "visit", "agent", satisfaction="satisfied")
    assert desk.get(same_department)["status"] == "replied"  # a visit is the parent's own
    desk.act(parent, "close", "agent")
    assert desk.get(same_department)["status"] == "closed"
    assert desk.get(elsewhere)["status"] == "closed"


def test_answering_the_parent_directly_closes_its_duplicates(desk):
    parent = desk.create()["number"]
    child = desk.create()["number"]
    assert link(desk, child, parent).status_code == 200
    desk.act(parent, "answer-directly", "agent", answer="已告知可向消委会投诉")
    child_now = desk.get(child)
    assert child_now["status"] == "closed"
    assert child_now["reply"] == "已告知可向消委会投诉"


def test_an_unlinked_ticket_goes_its_own_way(desk):
    parent = desk.create()["number"]
    child = desk.create()["number"]
    assert link(desk, child, parent).status_code == 200
    unlinked = unlink(desk, child)
    assert unlinked.status_code == 200, unlinked.text
    assert unlinked.json()["parent"] is None
    assert desk.get(child)["trail"][-1]["action"] == "unlink"
    desk.act(parent, "accept", "market")
    desk.act(parent, "reply", "market", reply="已处理")
    assert desk.get(child)["status"] == "dispatched"
    again = unlink(desk, child)
    assert again.status_code == 409 and again.json()["error"]["code"] == "ticket.bad_link"


def test_link_refusals(desk):
    first = desk.create()["number"]
    second = desk.create()["number"]
    third = desk.create()["number"]
    refused = link(desk, first, first)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "ticket.bad_link"
    assert link(desk, second, first).status_code == 200
    to_a_duplicate = link(desk, third, second)
    assert to_a_duplicate.status_code == 409
    assert to_a_duplicate.json()["error"]["code"] == "ticket.bad_link"
    parent_as_child = link(desk, first, third)
    assert parent_as_child.status_code == 409
    assert parent_as_child.json()["error"]["code"] == "ticket.bad_link"
    assert link(desk, third, "ZH20260101999999").status_code == 404
    assert link(desk, third, first, as_="market").status_code == 403
    assert unlink(desk, second, as_="market").status_code == 403
    missing_parent = desk.client.post(
        f"/api/v1/tickets/{third}/link", json={}, headers=desk.headers["agent"]
    )
    assert missing_parent.status_code == 422
    assert desk.get(third)["parent"] is None
    assert desk.get(second)["parent"] == first


# -- reports --------------------------------------------------------------------------------------

NOVEMBER = {"start": "2026-11-01T00:00:00+08:00", "end": "2026-12-01T00:00:00+08:00"}


def report(desk, as_: str = "supervisor", **params):
    response = desk.client.get("/api/v1/reports/tickets", params=params, headers=desk.headers[as_])
    assert response.status_code == 200, response.text
    return response.json()


def row(key: str, **figures) -> dict:
    zero = {
        "received": 0,
        "accepted_on_time": 0,
        "finished_on_time": 0,
        "returns": 0,
        "satisfaction_rate": None,
        "visited": 0,
        "visited_in_app": 0,
        "open_now": 0,
        "overdue_now": 0,
    }
    return {"key": key, **zero, **figures}


@pytest.fixture
def november(desk, clock) -> dict[str, str]:
    """A month of tickets, with the clock left at 2026-11-20 12:00 for the "now" figures."""
    clock.set(zhuhai(2026, 10, 30, 9, 0))
    desk.ticket_in("closed")  # received before the month: not counted

    clock.set(zhuhai(2026, 11, 2, 9, 0))
    on_time = desk.create()["number"]
    late = desk.create()["number"]
    basically = desk.create()["number"]
    clock.set(zhuhai(2026, 11, 2, 10, 0))
    desk.act(on_time, "accept", "market")
    desk.act(basically, "accept", "market")
    clock.set(zhuhai(2026, 11, 3, 15, 0))
    desk.act(on_time, "reply", "market", reply="已退款")
    desk.act(on_time, "visit", "agent", satisfaction="satisfied")
    desk.act(on_time, "close", "agent")
    desk.act(basically, "reply", "market", reply="部分退款")
    desk.act(basically, "visit", "agent", satisfaction="basically_satisfied")

    clock.set(zhuhai(2026, 11, 4, 10, 0))  # the accept deadline was 3 Nov 23:59:59
    desk.act(late, "accept", "market")  # finish by 18 Nov
    clock.set(zhuhai(2026, 11, 19, 10, 0))
    desk.act(late, "reply", "market", reply="拖延后处理")
    desk.act(late, "visit", "agent", satisfaction="unsatisfied")  # 重办: finish by 3 Dec

    clock.set(zhuhai(2026, 11, 10, 9, 0))
    never_accepted = desk.create(matter_code="SC-05", content="电梯困人")["number"]
    clock.set(zhuhai(2026, 11, 20, 9, 0))
    police = desk.create(matter_code="GA-01", content="咨询迁户口")["number"]

    clock.set(zhuhai(2026, 11, 20, 12, 0))
    assert desk.get(never_accepted)["deadline_status"] == "overdue"
    assert desk.get(late)["status"] == "accepted"
    assert desk.get(police)["lead_department"] == "XZ-POLICE"
    return NOVEMBER


def test_the_report_by_department(desk, november):
    assert report(desk, by="department", **november) == [
        row(
            MARKET,
            received=4,
            accepted_on_time=2,
            finished_on_time=2,
            satisfaction_rate=round(2 / 3, 4),
            visited=3,
            open_now=3,
            overdue_now=1,
        ),
        row("XZ-POLICE", received=1, open_now=1),
    ]
    assert report(desk, **november) == report(desk, by="department", **november)


def test_the_report_by_matter_and_by_area(desk, november):
    by_matter = {r["key"]: r for r in report(desk, by="matter", **november)}
    assert sorted(by_matter) == ["GA-01", "SC-01", "SC-05"]
    assert by_matter["SC-01"]["received"] == 3
    assert by_matter["SC-01"]["satisfaction_rate"] == round(2 / 3, 4)
    assert by_matter["SC-05"] == row("SC-05", received=1, open_now=1, overdue_now=1)
    assert by_matter["GA-01"] == row("GA-01", received=1, open_now=1)
    by_area = report(desk, by="area", **november)
    assert [(r["key"], r["received"], r["open_now"], r["overdue_now"]) for r in by_area] == [
        ("XZ", 5, 4, 1)
    ]


def test_a_department_reports_only_on_its_own_tickets(desk, november):
    assert [r["key"] for r in report(desk, as_="market", by="department", **november)] == [MARKET]
    assert report(desk, as_="gx_market", by="department", **november) == []
    assert report(desk, as_="market", by="matter", **november)[-1]["key"] == "SC-05"


def test_a_window_holds_the_tickets_received_in_it(desk, november):
    second_only = {"start": "2026-11-02T00:00:00+08:00", "end": "2026-11-03T00:00:00+08:00"}
    assert [(r["key"], r["received"]) for r in report(desk, **second_only)] == [(MARKET, 3)]
    before = {"start": "2026-10-01T00:00:00+08:00", "end": "2026-11-01T00:00:00+08:00"}
    assert [(r["key"], r["received"]) for r in report(desk, **before)] == [(MARKET, 1)]
    # end is exclusive
    to_nine = {"start": "2026-11-20T00:00:00+08:00", "end": "2026-11-20T09:00:00+08:00"}
    assert report(desk, **to_nine) == []


def test_returns_count_for_the_department_that_returned_the_ticket(desk):
    now = datetime.now(ZHUHAI)
    window = {
        "start": (now - timedelta(days=1)).isoformat(),
        "end": (now + timedelta(days=1)).isoformat(),
    }
    number = desk.create()["number"]
    desk.act(number, "return", "market", reason="属高新区")
    desk.act(number, "dispatch", "dispatcher", department=GX_MARKET)
    desk.act(number, "accept", "gx_market")
    returns = {r["key"]: r["returns"] for r in report(desk, by="department", **window)}
    assert returns.get(MARKET) == 1, returns
    assert returns.get(GX_MARKET) == 0, returns


def test_report_refusals(desk):
    get = desk.client.get
    url = "/api/v1/reports/tickets"
    agent = desk.headers["agent"]
    assert get(url, params={**NOVEMBER, "by": "town"}, headers=agent).status_code == 422
    backwards = get(url, params={"start": NOVEMBER["end"], "end": NOVEMBER["start"]}, headers=agent)
    assert backwards.status_code == 400
    assert backwards.json()["error"]["code"] == "report.bad_range"
    assert get(url, params=NOVEMBER).status_code == 401
    assert get(url, params={"start": NOVEMBER["start"]}, headers=agent).status_code == 422


def test_a_report_for_plain_dates_is_answered_not_a_server_error(desk):
    """start=2026-11-01&end=2026-12-01 is how people ask for a month: answer it (as Zhuhai
    days) or refuse it as a bad request, never with a 500."""
    desk.create()
    answer = desk.client.get(
        "/api/v1/reports/tickets",
        params={"start": "2026-11-01", "end": "2026-12-01"},
        headers=desk.headers["agent"],
    )
    assert answer.status_code in (200, 400, 422), answer.text


def test_the_same_caller_spelt_another_way_is_the_same_caller(desk):
    """The PBX, an app and the 110 hand-over spell one number differently."""
    from_the_pbx = desk.create(caller_phone="13812349999")
    from_an_app = desk.create(caller_phone="+86-138-1234-9999")
    assert from_an_app["possible_duplicates"] == [from_the_pbx["number"]]
    assert desk.get(from_an_app["number"], as_="agent")["caller_phone"] == "13812349999"
    for spelling in ("13812349999", "+8613812349999", "0086-138-1234-9999"):
        history = desk.client.get(
            f"/api/v1/callers/{spelling}/history", headers=desk.headers["agent"]
        )
        assert history.status_code == 200, history.text
        assert {t["number"] for t in history.json()} == {
            from_the_pbx["number"],
            from_an_app["number"],
        }, spelling
