from datetime import UTC, datetime, timedelta
from pathlib import Path

import pydantic
import pytest
import yaml

import dispatch
from dispatch.tickets.calendar import WorkingCalendar
from dispatch.tickets.deadlines import (
    HOTLINE_TZ,
    REMINDER_DUE_SOON,
    REMINDER_ONE_HOUR_LEFT,
    DeadlinePolicy,
    DeadlineStatus,
    TicketKind,
    Urgency,
    accept_deadline,
    classify,
    due_soon_at,
    extend,
    finish_deadline,
    reminder_times,
)

POLICY = DeadlinePolicy()
CALENDAR = WorkingCalendar()


def zhuhai(*args: int) -> datetime:
    return datetime(*args, tzinfo=HOTLINE_TZ)


def end_of(year: int, month: int, day: int) -> datetime:
    return zhuhai(year, month, day, 23, 59, 59)


def test_kinds_are_the_matter_catalogues_kinds():
    matters_file = Path(dispatch.__file__).parent / "reference" / "matters.yaml"
    matters = yaml.safe_load(matters_file.read_text(encoding="utf-8"))["matters"]
    assert {matter["kind"] for matter in matters} <= {kind.value for kind in TicketKind}


def test_default_policy():
    assert POLICY.urgent_accept_hours == 1
    assert POLICY.urgent_finish_hours == 24
    assert POLICY.accept_working_days == 1
    assert POLICY.finish_working_days == {"咨询": 3, "求助": 5, "投诉": 10, "举报": 10, "建议": 15}


# Spring Festival 2026 (from chinese_calendar): days off Sun 02-15 .. Mon 02-23;
# make-up workdays Sat 02-14 and Sat 02-28.


def test_received_the_day_before_spring_festival_is_accepted_after_it():
    # Sat 02-14 is a make-up workday and the last one before the break; the next is Tue 02-24.
    received = zhuhai(2026, 2, 14, 10, 0)
    assert accept_deadline(POLICY, CALENDAR, "咨询", False, received) == end_of(2026, 2, 24)
    # Accepted the same afternoon: 02-24, 02-25, 02-26.
    accepted = zhuhai(2026, 2, 14, 16, 0)
    assert finish_deadline(POLICY, CALENDAR, "咨询", False, accepted) == end_of(2026, 2, 26)


def test_friday_before_spring_festival_must_be_accepted_on_the_make_up_saturday():
    received = zhuhai(2026, 2, 13, 17, 0)
    assert accept_deadline(POLICY, CALENDAR, "投诉", False, received) == end_of(2026, 2, 14)


def test_finish_deadline_counts_the_make_up_saturday_after_spring_festival():
    # 求助 (5) accepted Tue 02-24: 02-25, 02-26, 02-27, Sat 02-28 (make-up), Mon 03-02.
    # Without the make-up Saturday it would be Tue 03-03.
    accepted = zhuhai(2026, 2, 24, 9, 0)
    assert finish_deadline(POLICY, CALENDAR, "求助", False, accepted) == end_of(2026, 3, 2)


def test_long_deadline_across_the_whole_spring_festival():
    # 建议 (15) accepted Fri 02-13: 02-14 (1), 02-24..02-28 (2-6), 03-02..03-06 (7-11),
    # 03-09..03-12 (12-15).
    accepted = zhuhai(2026, 2, 13, 11, 0)
    assert finish_deadline(POLICY, CALENDAR, "建议", False, accepted) == end_of(2026, 3, 12)


def test_national_day_2026():
    # Days off 10-01 .. 10-07, make-up Sat 10-10. 投诉 (10) accepted Wed 09-30:
    # 10-08, 10-09, 10-10 (make-up), 10-12..10-16 (4-8), 10-19 (9), 10-20 (10).
    accepted = zhuhai(2026, 9, 30, 15, 0)
    expected = end_of(2026, 10, 20)
    assert finish_deadline(POLICY, CALENDAR, TicketKind.COMPLAINT, False, accepted) == expected
    assert finish_deadline(POLICY, CALENDAR, TicketKind.REPORT, False, accepted) == expected
    # Received Sat 09-19: the next day, Sun 09-20, is a make-up workday.
    received = zhuhai(2026, 9, 19, 9, 0)
    assert accept_deadline(POLICY, CALENDAR, "举报", False, received) == end_of(2026, 9, 20)


def test_national_day_2025():
    # Days off 10-01 .. 10-08, make-up Sat 10-11.
    received = zhuhai(2025, 9, 30, 11, 0)
    assert accept_deadline(POLICY, CALENDAR, "咨询", False, received) == end_of(2025, 10, 9)
    # 10-09, 10-10, 10-11 (make-up).
    assert finish_deadline(POLICY, CALENDAR, "咨询", False, received) == end_of(2025, 10, 11)


def test_plain_weekend():
    received = zhuhai(2026, 3, 6, 14, 0)  # Friday
    assert accept_deadline(POLICY, CALENDAR, "咨询", False, received) == end_of(2026, 3, 9)
    accepted = zhuhai(2026, 3, 9, 10, 0)  # Monday: 03-10, 03-11, 03-12
    assert finish_deadline(POLICY, CALENDAR, "咨询", False, accepted) == end_of(2026, 3, 12)


@pytest.mark.parametrize(
    ("kind", "last_day"),
    [
        ("咨询", (2026, 3, 12)),  # 03-10..03-12
        ("求助", (2026, 3, 16)),  # 03-10..03-13, 03-16
        ("投诉", (2026, 3, 23)),  # 03-10..03-13 (4), 03-16..03-20 (9), 03-23
        ("举报", (2026, 3, 23)),
        ("建议", (2026, 3, 30)),  # ... 03-23..03-27 (14), 03-30
    ],
)
def test_finish_working_days_per_kind(kind, last_day):
    accepted = zhuhai(2026, 3, 9, 10, 0)  # Monday, no holiday in March 2026
    assert finish_deadline(POLICY, CALENDAR, kind, False, accepted) == end_of(*last_day)


def test_received_at_23_30_on_friday():
    received = zhuhai(2026, 3, 6, 23, 30)
    # Normal: the day counts, not the hour, so the same as any time on Friday.
    assert accept_deadline(POLICY, CALENDAR, "投诉", False, received) == end_of(2026, 3, 9)
    # Urgent: clock hours straight through the night and the weekend.
    assert accept_deadline(POLICY, CALENDAR, "投诉", True, received) == zhuhai(2026, 3, 7, 0, 30)
    accepted = zhuhai(2026, 3, 7, 0, 10)
    assert finish_deadline(POLICY, CALENDAR, "投诉", True, accepted) == zhuhai(2026, 3, 8, 0, 10)


def test_urgent_ticket_runs_through_public_holidays():
    received = zhuhai(2026, 2, 17, 8, 0)  # Spring Festival
    assert accept_deadline(POLICY, CALENDAR, "求助", Urgency.URGENT, received) == zhuhai(
        2026, 2, 17, 9, 0
    )
    accepted = zhuhai(2026, 2, 17, 8, 20)
    assert finish_deadline(POLICY, CALENDAR, "求助", "urgent", accepted) == zhuhai(
        2026, 2, 18, 8, 20
    )
    # The same ticket if it were normal: 02-24..02-27 and Sat 02-28 (make-up).
    assert finish_deadline(POLICY, CALENDAR, "求助", Urgency.NORMAL, accepted) == end_of(
        2026, 2, 28
    )


def test_utc_input_after_16_00_belongs_to_the_next_day_in_zhuhai():
    # 2026-03-05T16:30Z is Fri 03-06 00:30 in Zhuhai: the next working day is Mon 03-09.
    # (Taking the UTC day, Thursday, would wrongly give Fri 03-06.)
    received = datetime(2026, 3, 5, 16, 30, tzinfo=UTC)
    deadline = accept_deadline(POLICY, CALENDAR, "咨询", False, received)
    assert deadline == end_of(2026, 3, 9)
    assert deadline.tzinfo == HOTLINE_TZ
    assert deadline.utcoffset() == timedelta(hours=8)
    # 2026-02-13T16:30Z is Sat 02-14 00:30, the make-up workday: next is Tue 02-24, not 02-14.
    received = datetime(2026, 2, 13, 16, 30, tzinfo=UTC)
    assert accept_deadline(POLICY, CALENDAR, "咨询", False, received) == end_of(2026, 2, 24)


def test_utc_input_for_urgent_ticket_comes_back_in_zhuhai_time():
    received = datetime(2026, 3, 6, 15, 30, tzinfo=UTC)  # Fri 23:30 in Zhuhai
    deadline = accept_deadline(POLICY, CALENDAR, "投诉", True, received)
    assert deadline == zhuhai(2026, 3, 7, 0, 30)
    assert deadline.tzinfo == HOTLINE_TZ


def test_deadline_in_a_year_without_official_data():
    # 2027 falls back to its computed public holidays and Monday-Friday: 元旦 (Fri) is off.
    received = zhuhai(2026, 12, 31, 9, 0)
    assert accept_deadline(POLICY, CALENDAR, "咨询", False, received) == end_of(2027, 1, 4)
    new_year_worked = WorkingCalendar(extra_workdays=[datetime(2027, 1, 1).date()])
    assert accept_deadline(POLICY, new_year_worked, "咨询", False, received) == end_of(2027, 1, 1)


def test_admin_overrides_move_deadlines():
    typhoon_closure = WorkingCalendar(extra_holidays=[datetime(2026, 3, 10).date()])
    received = zhuhai(2026, 3, 9, 9, 0)
    assert accept_deadline(POLICY, typhoon_closure, "咨询", False, received) == end_of(2026, 3, 11)
    saturday_worked = WorkingCalendar(extra_workdays=[datetime(2026, 3, 7).date()])
    received = zhuhai(2026, 3, 6, 9, 0)
    assert accept_deadline(POLICY, saturday_worked, "咨询", False, received) == end_of(2026, 3, 7)


def test_configured_policy_keeps_defaults_for_kinds_not_named():
    policy = DeadlinePolicy(finish_working_days={"投诉": 7}, urgent_accept_hours=2)
    accepted = zhuhai(2026, 3, 9, 10, 0)
    # 03-10..03-13 (4), 03-16..03-18 (7).
    assert finish_deadline(policy, CALENDAR, "投诉", False, accepted) == end_of(2026, 3, 18)
    assert finish_deadline(policy, CALENDAR, "咨询", False, accepted) == end_of(2026, 3, 12)
    assert accept_deadline(policy, CALENDAR, "咨询", True, accepted) == zhuhai(2026, 3, 9, 12, 0)


@pytest.mark.parametrize(
    "settings",
    [
        {"urgent_accept_hours": 0},
        {"finish_working_days": {"投诉": 0}},
        {"finish_working_days": {"其他": 3}},
        {"unknown_setting": 1},
    ],
)
def test_policy_refuses_bad_settings(settings):
    with pytest.raises(pydantic.ValidationError):
        DeadlinePolicy(**settings)


def test_policy_is_frozen():
    with pytest.raises(pydantic.ValidationError):
        POLICY.urgent_accept_hours = 5


def test_unknown_kind_and_urgency_are_refused():
    received = zhuhai(2026, 3, 9, 9, 0)
    with pytest.raises(ValueError, match="unknown ticket kind"):
        accept_deadline(POLICY, CALENDAR, "其他", False, received)
    with pytest.raises(ValueError):
        accept_deadline(POLICY, CALENDAR, "咨询", "very", received)


def test_naive_datetimes_are_refused_with_the_reason():
    naive = datetime(2026, 3, 9, 9, 0)
    aware = zhuhai(2026, 3, 9, 9, 0)
    calls = [
        lambda: accept_deadline(POLICY, CALENDAR, "咨询", False, naive),
        lambda: finish_deadline(POLICY, CALENDAR, "咨询", True, naive),
        lambda: extend(naive, hours=2),
        lambda: reminder_times(naive, aware + timedelta(hours=5)),
        lambda: reminder_times(aware, naive),
        lambda: classify(naive, aware, aware + timedelta(hours=5)),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="naive datetime.*which calendar day"):
            call()


def test_extension_in_working_days_counts_from_the_old_deadline_day():
    # Old deadline Wed 2026-09-30; 3 working days: 10-08, 10-09, Sat 10-10 (make-up).
    assert extend(end_of(2026, 9, 30), working_days=3, calendar=CALENDAR) == end_of(2026, 10, 10)
    # The same deadline given in UTC is the same day in Zhuhai.
    old_in_utc = datetime(2026, 9, 30, 15, 59, 59, tzinfo=UTC)
    assert extend(old_in_utc, working_days=3, calendar=CALENDAR) == end_of(2026, 10, 10)


def test_extension_in_hours_for_urgent_tickets():
    assert extend(zhuhai(2026, 3, 8, 0, 10), hours=12) == zhuhai(2026, 3, 8, 12, 10)


def test_extension_needs_exactly_one_amount_and_a_calendar_for_working_days():
    deadline = end_of(2026, 3, 9)
    with pytest.raises(ValueError, match="exactly one"):
        extend(deadline)
    with pytest.raises(ValueError, match="exactly one"):
        extend(deadline, working_days=1, hours=1, calendar=CALENDAR)
    with pytest.raises(ValueError, match="calendar"):
        extend(deadline, working_days=1)
    with pytest.raises(ValueError):
        extend(deadline, hours=0)
    with pytest.raises(ValueError):
        extend(deadline, working_days=0, calendar=CALENDAR)


def test_reminders_for_a_working_day_deadline():
    start = zhuhai(2026, 3, 9, 10, 0)
    deadline = end_of(2026, 3, 12)
    # 85:59:59 allowed = 309,599 s; 80 % = 247,679.2 s = 68:47:59.2 -> Thu 06:47:59.2.
    assert reminder_times(start, deadline) == [
        (REMINDER_DUE_SOON, zhuhai(2026, 3, 12, 6, 47, 59, 200_000)),
        (REMINDER_ONE_HOUR_LEFT, zhuhai(2026, 3, 12, 22, 59, 59)),
    ]


def test_reminders_for_the_urgent_24_hours():
    start = zhuhai(2026, 3, 7, 0, 10)
    deadline = zhuhai(2026, 3, 8, 0, 10)
    # 80 % of 24 h = 19:12.
    assert reminder_times(start, deadline) == [
        (REMINDER_DUE_SOON, zhuhai(2026, 3, 7, 19, 22)),
        (REMINDER_ONE_HOUR_LEFT, zhuhai(2026, 3, 7, 23, 10)),
    ]


def test_one_hour_reminder_is_skipped_when_it_is_not_after_the_start():
    # Urgent acceptance: one hour allowed, so "one hour left" is the start itself.
    start = zhuhai(2026, 3, 9, 10, 0)
    assert reminder_times(start, zhuhai(2026, 3, 9, 11, 0)) == [
        (REMINDER_DUE_SOON, zhuhai(2026, 3, 9, 10, 48))
    ]
    # 30 minutes allowed: "one hour left" would be before the start.
    assert reminder_times(start, zhuhai(2026, 3, 9, 10, 30)) == [
        (REMINDER_DUE_SOON, zhuhai(2026, 3, 9, 10, 24))
    ]


def test_reminders_falling_on_the_same_moment_are_merged():
    # 5 hours allowed: 80 % (4 h) is exactly one hour before the deadline.
    start = zhuhai(2026, 3, 9, 10, 0)
    assert reminder_times(start, zhuhai(2026, 3, 9, 15, 0)) == [
        (REMINDER_DUE_SOON, zhuhai(2026, 3, 9, 14, 0))
    ]


def test_reminders_are_sorted_by_time():
    # 2 hours allowed: one hour left at 11:00 comes before 80 % at 11:36.
    start = zhuhai(2026, 3, 9, 10, 0)
    assert reminder_times(start, zhuhai(2026, 3, 9, 12, 0)) == [
        (REMINDER_ONE_HOUR_LEFT, zhuhai(2026, 3, 9, 11, 0)),
        (REMINDER_DUE_SOON, zhuhai(2026, 3, 9, 11, 36)),
    ]


def test_reminders_in_zhuhai_time_whatever_the_input_zone():
    start = datetime(2026, 3, 9, 2, 0, tzinfo=UTC)  # 10:00 in Zhuhai
    reminders = reminder_times(start, zhuhai(2026, 3, 9, 15, 0))
    assert [moment.tzinfo for _, moment in reminders] == [HOTLINE_TZ]
    assert reminders[0][1] == zhuhai(2026, 3, 9, 14, 0)


def test_a_deadline_not_after_its_start_is_refused():
    start = zhuhai(2026, 3, 9, 10, 0)
    with pytest.raises(ValueError, match="not after start"):
        reminder_times(start, start)
    with pytest.raises(ValueError, match="not after start"):
        due_soon_at(start, start - timedelta(hours=1))


def test_classification_green_yellow_red():
    start = zhuhai(2026, 3, 9, 10, 0)
    deadline = zhuhai(2026, 3, 9, 20, 0)  # 10 h allowed: due soon from 18:00
    assert classify(zhuhai(2026, 3, 9, 17, 59, 59), start, deadline) == "ok"
    assert classify(zhuhai(2026, 3, 9, 18, 0), start, deadline) == "due_soon"
    assert classify(deadline, start, deadline) == DeadlineStatus.DUE_SOON  # the deadline itself
    assert classify(zhuhai(2026, 3, 9, 20, 0, 1), start, deadline) == "overdue"
    # 12:00:01Z is 20:00:01 in Zhuhai.
    now_in_utc = datetime(2026, 3, 9, 12, 0, 1, tzinfo=UTC)
    assert classify(now_in_utc, start, deadline) == DeadlineStatus.OVERDUE


def test_classification_of_a_working_day_deadline():
    start = zhuhai(2026, 3, 9, 10, 0)
    deadline = end_of(2026, 3, 12)
    assert classify(zhuhai(2026, 3, 12, 6, 47, 59), start, deadline) == "ok"
    assert classify(zhuhai(2026, 3, 12, 6, 47, 59, 200_000), start, deadline) == "due_soon"
    assert classify(end_of(2026, 3, 12), start, deadline) == "due_soon"
    assert classify(zhuhai(2026, 3, 13, 0, 0), start, deadline) == "overdue"
