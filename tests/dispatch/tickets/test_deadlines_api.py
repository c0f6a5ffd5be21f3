"""Deadlines as the API gives them: around Spring Festival and National Day 2026 with their
make-up workdays, in 2027 (for which the calendar has no data), for urgent tickets, after
extensions and under the administrators' calendar overrides.

Most tests set the ticket service's clock (``clock``) to the moment of receipt, so that the
day of receipt, of dispatch and of acceptance are the days the test names. Expected values
are written out by hand from the official arrangement, not computed with the code under test.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from dispatch.tickets.calendar import WorkingCalendar

ZHUHAI = ZoneInfo("Asia/Shanghai")
GONGBEI = "香洲区拱北夏湾"

pytestmark = pytest.mark.usefixtures("desk")


def assert_2027_is_a_year_without_data() -> None:
    """The 2027 cases test the computed fallback; once chinesecalendar ships 2027,
    they must move to the first year it does not know."""
    assert not WorkingCalendar().is_officially_covered(date(2027, 1, 1)), (
        "chinesecalendar now knows 2027: move the 2027 cases to the first year without data"
    )


def zhuhai(*args: int) -> datetime:
    return datetime(*args, tzinfo=ZHUHAI)


def at(iso: str) -> datetime:
    moment = datetime.fromisoformat(iso)
    assert moment.tzinfo is not None
    return moment


# (received at, accept deadline, why)
ACCEPT_DEADLINES = [
    ("2026-02-13T10:00:00+08:00", "2026-02-14T23:59:59+08:00", "Fri before 春节: make-up Sat"),
    ("2026-02-14T16:00:00+08:00", "2026-02-24T23:59:59+08:00", "make-up Sat: 15-23 Feb off"),
    ("2026-02-18T09:00:00+08:00", "2026-02-24T23:59:59+08:00", "received in the holiday"),
    ("2026-02-27T18:00:00+08:00", "2026-02-28T23:59:59+08:00", "the second make-up Sat"),
    ("2026-02-13T23:59:30+08:00", "2026-02-14T23:59:59+08:00", "late evening: still Friday"),
    ("2026-02-13T16:30:00+00:00", "2026-02-24T23:59:59+08:00", "Friday in UTC, Sat in Zhuhai"),
    ("2026-09-19T11:00:00+08:00", "2026-09-20T23:59:59+08:00", "Sat before 国庆: make-up Sun"),
    ("2026-09-24T10:00:00+08:00", "2026-09-28T23:59:59+08:00", "中秋 Fri 25 Sep and weekend"),
    ("2026-09-30T17:00:00+08:00", "2026-10-08T23:59:59+08:00", "eve of 国庆: 1-7 Oct off"),
    ("2026-10-09T10:00:00+08:00", "2026-10-10T23:59:59+08:00", "Fri before the make-up Sat"),
    ("2026-10-10T10:00:00+08:00", "2026-10-12T23:59:59+08:00", "received on the make-up Sat"),
    ("2026-12-31T10:00:00+08:00", "2027-01-04T23:59:59+08:00", "2027: 元旦 computed, Fri off"),
    ("2027-02-05T10:00:00+08:00", "2027-02-09T23:59:59+08:00", "2027: 除夕 Fri to 初三 Mon off"),
    ("2027-02-06T10:00:00+08:00", "2027-02-09T23:59:59+08:00", "2027: 春节 Sat -> Tue"),
]


def test_the_accept_deadline_is_the_end_of_the_next_working_day(desk, clock):
    assert_2027_is_a_year_without_data()
    given, expected = {}, {}
    for received, deadline, why in ACCEPT_DEADLINES:
        clock.set(at(received))
        created = desk.create(received_at=received)
        shown = desk.get(created["number"], as_="market")
        given[why] = (
            created["status"],
            created["accept_deadline"],
            shown["accept_deadline"],
            shown["due_at"],
            shown["received_at"],
            shown["deadline_status"],
        )
        local_receipt = at(received).astimezone(ZHUHAI).isoformat()
        expected[why] = ("dispatched", deadline, deadline, deadline, local_receipt, "ok")
    assert given == expected


def test_a_ticket_entered_after_the_day_it_was_received_counts_from_the_day_of_receipt(desk, clock):
    """A request received on 13 February and typed in today must have been accepted by the
    make-up Saturday after it: the clock does not restart when the ticket is entered."""
    cases = {
        "2026-02-13T10:00:00+08:00": "2026-02-14T23:59:59+08:00",
        "2026-09-30T17:00:00+08:00": "2026-10-08T23:59:59+08:00",
    }
    given = {}
    for received in cases:
        clock.set(at(received) + timedelta(days=10))  # typed in ten days later
        created = desk.create(received_at=received)
        given[received] = created["accept_deadline"]
        assert desk.get(created["number"])["deadline_status"] == "overdue", received
    assert given == cases


def test_urgent_tickets_count_clock_hours_even_in_the_holidays(desk, clock):
    clock.set(zhuhai(2026, 2, 17, 3, 15))
    urgent = desk.create(matter_code="SC-05", content="电梯困人")
    assert urgent["urgent"] is True
    assert urgent["accept_deadline"] == "2026-02-17T04:15:00+08:00"
    clock.set(zhuhai(2026, 2, 17, 3, 40))
    accepted = desk.act(urgent["number"], "accept", "market")
    assert accepted["finish_deadline"] == "2026-02-18T03:40:00+08:00"
    assert accepted["due_at"] == accepted["finish_deadline"]

    clock.set(zhuhai(2026, 10, 3, 22, 30))
    flagged = desk.create(urgent=True)  # a normal matter the agent marks urgent
    assert flagged["urgent"] is True
    assert flagged["accept_deadline"] == "2026-10-03T23:30:00+08:00"
    unflagged = desk.create(matter_code="SC-05", content="电梯异响", urgent=False)
    assert unflagged["urgent"] is False
    assert unflagged["accept_deadline"] == "2026-10-08T23:59:59+08:00"


# (matter, kind and working days to finish, accepted at, finish deadline)
FINISH_DEADLINES = [
    ("SC-01", "投诉 10", zhuhai(2026, 2, 13, 9, 30), "2026-03-05T23:59:59+08:00"),
    ("SC-02", "举报 10", zhuhai(2026, 9, 24, 10, 0), "2026-10-15T23:59:59+08:00"),
    ("CG-04", "求助 5", zhuhai(2026, 12, 28, 10, 0), "2027-01-05T23:59:59+08:00"),
    ("GA-01", "咨询 3", zhuhai(2027, 2, 5, 10, 0), "2027-02-11T23:59:59+08:00"),
    # a suggestion (建议): 中秋 on Fri 25 Sep, 国庆 1-7 Oct, make-up Sat 10 Oct
    ("YY-02", "建议 15", zhuhai(2026, 9, 24, 10, 0), "2026-10-22T23:59:59+08:00"),
]


def test_the_finish_deadline_counts_the_kinds_working_days_from_acceptance(desk, clock):
    assert_2027_is_a_year_without_data()
    given, expected = {}, {}
    for matter, kind, accepted_at, deadline in FINISH_DEADLINES:
        case = f"{matter} {kind} from {accepted_at:%Y-%m-%d}"
        clock.set(accepted_at - timedelta(minutes=20))
        number = desk.create(matter_code=matter)["number"]
        clock.set(accepted_at)
        accepted = desk.act(number, "accept", "admin")
        detail = desk.get(number)["trail"][-1]["detail"]
        given[case] = (
            accepted["finish_deadline"],
            accepted["due_at"],
            accepted["deadline_status"],
            detail["finish_deadline"],
        )
        expected[case] = (deadline, deadline, "ok", at(deadline).isoformat())
    assert given == expected


def test_on_the_real_clock_the_finish_deadline_counts_from_the_day_of_acceptance(desk):
    """No clock set: the deadlines follow from the moments the API and the trail report."""
    calendar = WorkingCalendar()

    def end_of_working_day_after(day: date, working_days: int) -> datetime:
        last = calendar.add_working_days(day, working_days)
        return datetime.combine(last, time(23, 59, 59), tzinfo=ZHUHAI)

    number = desk.create()["number"]
    received = at(desk.get(number)["received_at"])  # in Zhuhai time; dispatched at once
    assert at(desk.get(number)["accept_deadline"]) == end_of_working_day_after(received.date(), 1)

    accepted = desk.act(number, "accept", "market")
    accepted_at = at(desk.get(number)["trail"][-1]["at"]).astimezone(ZHUHAI)
    # The trail's time is taken a moment after the service's: allow for a midnight between.
    days = {(accepted_at - timedelta(seconds=2)).date(), accepted_at.date()}
    assert accepted["finish_deadline"].endswith("T23:59:59+08:00")
    assert at(accepted["finish_deadline"]) in {end_of_working_day_after(d, 10) for d in days}


# -- extensions ---------------------------------------------------------------------------------


def test_an_approved_extension_moves_the_finish_deadline_and_a_rejected_one_does_not(
    desk, clock, events, last_event
):
    clock.set(zhuhai(2026, 9, 24, 10, 0))
    number = desk.ticket_in("accepted")
    assert desk.get(number)["finish_deadline"] == "2026-10-15T23:59:59+08:00"

    clock.set(zhuhai(2026, 10, 9, 15, 0))
    desk.act(number, "request-extension", "market", reason="需等待检测报告", working_days=3)
    rejected = desk.act(number, "decide-extension", "dispatcher", approve=False, comment="时限够")
    assert rejected["finish_deadline"] == "2026-10-15T23:59:59+08:00"
    assert rejected["due_at"] == "2026-10-15T23:59:59+08:00"
    assert desk.get(number)["trail"][-1]["detail"] == {"approved": False, "comment": "时限够"}

    desk.act(number, "request-extension", "market", reason="检测报告延迟", working_days=3)
    mark = last_event()
    approved = desk.act(number, "decide-extension", "supervisor", approve=True)
    # three working days after Thu 15 Oct: Fri 16, Mon 19, Tue 20
    assert approved["finish_deadline"] == "2026-10-20T23:59:59+08:00"
    assert approved["due_at"] == "2026-10-20T23:59:59+08:00"
    assert approved["status"] == "accepted"
    decision = desk.get(number, as_="market")["trail"][-1]
    assert decision["action"] == "decide-extension" and decision["actor"] == "supervisor"
    assert decision["detail"]["approved"] is True
    assert decision["detail"]["finish_deadline"] == "2026-10-20T23:59:59+08:00"
    published = [e for e in events(mark) if e["data"]["number"] == number]
    assert published[0]["data"]["due_at"] == at("2026-10-20T23:59:59+08:00").isoformat()


def test_an_extension_into_2027_counts_its_computed_holidays(desk, clock):
    assert_2027_is_a_year_without_data()
    clock.set(zhuhai(2026, 12, 24, 10, 0))
    number = desk.ticket_in("accepted")
    # 25, 28, 29, 30, 31 Dec; 1 Jan is 元旦 (computed, no data yet); 4, 5, 6, 7, 8 Jan
    assert desk.get(number)["finish_deadline"] == "2027-01-08T23:59:59+08:00"
    clock.set(zhuhai(2027, 1, 6, 9, 0))
    desk.act(number, "request-extension", "market", reason="跨年协调", working_days=5)
    approved = desk.act(number, "decide-extension", "dispatcher", approve=True)
    assert approved["finish_deadline"] == "2027-01-15T23:59:59+08:00"


def test_an_extension_must_be_asked_for_before_the_deadline(desk, clock):
    clock.set(zhuhai(2026, 9, 24, 10, 0))
    number = desk.ticket_in("accepted")  # finish by 2026-10-15 23:59:59
    clock.set(zhuhai(2026, 10, 16, 0, 0, 1))
    desk.refused(
        number,
        "request-extension",
        "market",
        409,
        "ticket.deadline_passed",
        reason="来不及了",
        working_days=2,
    )
    assert desk.get(number)["deadline_status"] == "overdue"
    clock.set(zhuhai(2026, 10, 15, 23, 59, 59))
    desk.act(number, "request-extension", "market", reason="最后一刻", working_days=2)


def test_urgent_tickets_are_extended_in_hours(desk, clock):
    clock.set(zhuhai(2026, 2, 17, 3, 15))
    number = desk.create(matter_code="SC-05", content="电梯困人")["number"]
    clock.set(zhuhai(2026, 2, 17, 3, 40))
    desk.act(number, "accept", "market")  # finish by 2026-02-18 03:40
    desk.refused(
        number,
        "request-extension",
        "market",
        400,
        "ticket.bad_extension",
        reason="配件未到",
        working_days=1,
    )
    desk.act(number, "request-extension", "market", reason="配件未到", hours=6)
    approved = desk.act(number, "decide-extension", "dispatcher", approve=True)
    assert approved["finish_deadline"] == "2026-02-18T09:40:00+08:00"


# -- calendar overrides --------------------------------------------------------------------------


def put_day(desk, day: str, working: bool, as_: str = "admin", note: str = ""):
    return desk.client.put(
        f"/api/v1/calendar/{day}",
        json={"working": working, "note": note},
        headers=desk.headers[as_],
    )


def test_only_an_admin_declares_holidays_and_workdays(desk):
    refused = put_day(desk, "2026-12-31", False, as_="dispatcher")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "auth.forbidden"
    assert put_day(desk, "2026-12-31", False, as_="market").status_code == 403
    assert put_day(desk, "2026-13-01", False).status_code == 422
    saved = put_day(desk, "2026-12-31", False, note="台风停工")
    assert saved.status_code == 200, saved.text
    assert saved.json() == {"day": "2026-12-31", "working": False, "note": "台风停工"}
    again = put_day(desk, "2026-12-31", True, note="取消停工")
    assert again.json() == {"day": "2026-12-31", "working": True, "note": "取消停工"}


def test_calendar_overrides_change_the_deadlines_of_tickets_made_after_them(desk, clock):
    assert_2027_is_a_year_without_data()
    clock.set(zhuhai(2026, 12, 30, 10, 0))  # a Wednesday
    before = desk.create()
    assert before["accept_deadline"] == "2026-12-31T23:59:59+08:00"

    assert put_day(desk, "2026-12-31", False, note="台风停工").status_code == 200
    assert desk.create()["accept_deadline"] == "2027-01-04T23:59:59+08:00"  # 元旦 computed
    assert put_day(desk, "2027-01-01", True, note="元旦值班").status_code == 200
    assert desk.create()["accept_deadline"] == "2027-01-01T23:59:59+08:00"
    assert put_day(desk, "2027-01-01", False, note="元旦").status_code == 200
    assert desk.create()["accept_deadline"] == "2027-01-04T23:59:59+08:00"
    assert put_day(desk, "2027-01-02", True, note="调休上班").status_code == 200
    made_up = desk.create()
    assert made_up["accept_deadline"] == "2027-01-02T23:59:59+08:00"
    assert put_day(desk, "2027-01-02", False, note="取消调休").status_code == 200
    assert desk.create()["accept_deadline"] == "2027-01-04T23:59:59+08:00"

    # A deadline once given stays: overrides apply to deadlines computed after them.
    assert desk.get(before["number"])["accept_deadline"] == "2026-12-31T23:59:59+08:00"
    # ... including the finish deadline counted at acceptance:
    # 4, 5, 6, 7, 8, 11, 12, 13, 14, 15 January 2027.
    accepted = desk.act(made_up["number"], "accept", "market")
    assert accepted["finish_deadline"] == "2027-01-15T23:59:59+08:00"


# -- the calendar as the API shows it ------------------------------------------------------------


def get_day(desk, day: str, as_: str = "market"):
    response = desk.client.get(f"/api/v1/calendar/{day}", headers=desk.headers[as_])
    assert response.status_code == 200, response.text
    return response.json()


def test_any_user_reads_a_day_with_where_its_status_comes_from(desk):
    assert_2027_is_a_year_without_data()
    assert get_day(desk, "2026-02-17") == {
        "day": "2026-02-17",
        "working": False,
        "source": "library",
        "name": "春节",
    }
    assert get_day(desk, "2026-02-14")["working"] is True  # a make-up Saturday, announced
    assert get_day(desk, "2027-01-01") == {
        "day": "2027-01-01",
        "working": False,
        "source": "statutory",
        "name": "元旦",
    }
    assert get_day(desk, "2027-02-08", as_="agent")["name"] == "春节"  # 初三
    assert get_day(desk, "2030-10-03")["source"] == "statutory"
    assert get_day(desk, "2027-01-04") == {
        "day": "2027-01-04",
        "working": True,
        "source": "weekday",
        "name": "",
    }
    assert put_day(desk, "2027-01-04", False, note="台风停工").status_code == 200
    assert get_day(desk, "2027-01-04") == {
        "day": "2027-01-04",
        "working": False,
        "source": "override",
        "name": "",
    }
    assert desk.client.get("/api/v1/calendar/2027-01-04").status_code == 401
    assert (
        desk.client.get("/api/v1/calendar/2027-02-30", headers=desk.headers["agent"]).status_code
        == 422
    )


def test_the_admin_sees_what_a_year_not_yet_announced_lacks(desk):
    assert_2027_is_a_year_without_data()
    put_day(desk, "2027-02-20", True, note="春节调休")
    year = desk.client.get("/api/v1/calendar/years/2027", headers=desk.headers["admin"]).json()
    assert year["announced"] is False
    assert "调休" in year["warning"]
    assert [d["day"] for d in year["statutory_holidays"]][:5] == [
        "2027-01-01",
        "2027-02-05",
        "2027-02-06",
        "2027-02-07",
        "2027-02-08",
    ]
    assert all(d["working"] is False for d in year["statutory_holidays"])
    assert year["overrides"] == [
        {"day": "2027-02-20", "working": True, "source": "override", "name": ""}
    ]
    announced = desk.client.get("/api/v1/calendar/years/2026", headers=desk.headers["admin"])
    assert announced.json()["announced"] is True
    assert announced.json()["warning"] == ""
    assert (
        desk.client.get("/api/v1/calendar/years/2027", headers=desk.headers["market"]).status_code
        == 403
    )
    assert (
        desk.client.get("/api/v1/calendar/years/1900", headers=desk.headers["admin"]).status_code
        == 422
    )


def test_a_month_for_the_admins_calendar_and_removing_an_override(desk):
    assert put_day(desk, "2026-10-09", False, note="台风停工").status_code == 200
    response = desk.client.get("/api/v1/calendar/months/2026/10", headers=desk.headers["agent"])
    assert response.status_code == 200, response.text
    days = response.json()
    assert len(days) == 31 and days[0]["day"] == "2026-10-01" and days[-1]["day"] == "2026-10-31"
    assert days[0] == {
        "day": "2026-10-01",
        "working": False,
        "source": "library",
        "name": "国庆节",
        "note": "",
    }
    assert days[8] == {
        "day": "2026-10-09",
        "working": False,
        "source": "override",
        "name": "",
        "note": "台风停工",
    }
    february = desk.client.get("/api/v1/calendar/months/2028/2", headers=desk.headers["agent"])
    assert len(february.json()) == 29  # a leap year
    bad = desk.client.get("/api/v1/calendar/months/2026/13", headers=desk.headers["agent"])
    assert bad.status_code == 422

    refused = desk.client.delete("/api/v1/calendar/2026-10-09", headers=desk.headers["dispatcher"])
    assert refused.status_code == 403
    removed = desk.client.delete("/api/v1/calendar/2026-10-09", headers=desk.headers["admin"])
    assert removed.status_code == 200, removed.text
    assert removed.json() == {"day": "2026-10-09", "working": True, "source": "library", "name": ""}
    again = desk.client.delete("/api/v1/calendar/2026-10-09", headers=desk.headers["admin"])
    assert again.status_code == 404 and again.json()["error"]["code"] == "calendar.no_override"
