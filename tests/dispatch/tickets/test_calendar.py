import logging
from datetime import date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dispatch.tickets import calendar as calendar_module
from dispatch.tickets.calendar import WorkingCalendar

CALENDAR_LOGGER = "dispatch.tickets.calendar"


@pytest.fixture
def fresh_warnings(monkeypatch):
    """Forget which years were already warned about, so a test sees the first warning."""
    monkeypatch.setattr(calendar_module, "_years_warned", set())


def fallback_warnings(caplog) -> list[logging.LogRecord]:
    return [
        record
        for record in caplog.records
        if record.name == CALENDAR_LOGGER and record.levelno == logging.WARNING
    ]


# Spring Festival 2026 as chinesecalendar has it (checked with chinese_calendar.get_holiday_detail):
# days off Sun 2026-02-15 .. Mon 2026-02-23; make-up workdays Sat 2026-02-14 and Sat 2026-02-28.


def test_spring_festival_2026_days_off_and_make_up_saturdays():
    calendar = WorkingCalendar()
    assert calendar.is_working_day(date(2026, 2, 13))  # Friday
    assert calendar.is_working_day(date(2026, 2, 14))  # Saturday, make-up workday
    for day in range(15, 24):
        assert not calendar.is_working_day(date(2026, 2, day)), day
    assert calendar.is_working_day(date(2026, 2, 24))
    assert calendar.is_working_day(date(2026, 2, 28))  # Saturday, make-up workday
    assert not calendar.is_working_day(date(2026, 3, 1))  # plain Sunday


def test_adding_working_days_jumps_over_spring_festival():
    calendar = WorkingCalendar()
    # From the make-up Saturday 02-14, the whole break is skipped: the next working day is 02-24.
    assert calendar.add_working_days(date(2026, 2, 14), 1) == date(2026, 2, 24)
    # From Friday 02-13 the next working day is the make-up Saturday itself.
    assert calendar.add_working_days(date(2026, 2, 13), 1) == date(2026, 2, 14)
    # 02-25, 02-26, 02-27, Sat 02-28 (make-up), Mon 03-02: five working days after 02-24.
    assert calendar.add_working_days(date(2026, 2, 24), 5) == date(2026, 3, 2)


def test_national_day_2026_with_its_make_up_days():
    calendar = WorkingCalendar()
    # 2026: days off 10-01 .. 10-07, make-up Sun 09-20 and Sat 10-10; Mid-autumn off 09-25..27.
    assert calendar.is_working_day(date(2026, 9, 20))
    assert not calendar.is_working_day(date(2026, 9, 25))  # Friday, Mid-autumn Festival
    assert not calendar.is_working_day(date(2026, 10, 5))  # Monday inside the break
    assert calendar.is_working_day(date(2026, 10, 10))
    # After Wed 09-30: Thu 10-08, Fri 10-09, Sat 10-10 (make-up).
    assert calendar.add_working_days(date(2026, 9, 30), 3) == date(2026, 10, 10)
    # After Sat 09-19: Sun 09-20 is a make-up workday.
    assert calendar.add_working_days(date(2026, 9, 19), 1) == date(2026, 9, 20)


def test_national_day_2025():
    calendar = WorkingCalendar()
    # 2025: days off 10-01 .. 10-08, make-up Sun 09-28 and Sat 10-11.
    assert calendar.add_working_days(date(2025, 9, 30), 1) == date(2025, 10, 9)
    assert calendar.add_working_days(date(2025, 9, 27), 1) == date(2025, 9, 28)
    assert calendar.add_working_days(date(2025, 10, 10), 1) == date(2025, 10, 11)


def test_plain_weekend_is_skipped():
    calendar = WorkingCalendar()
    assert not calendar.is_working_day(date(2026, 3, 7))
    assert not calendar.is_working_day(date(2026, 3, 8))
    assert calendar.add_working_days(date(2026, 3, 6), 1) == date(2026, 3, 9)  # Fri -> Mon
    assert calendar.add_working_days(date(2026, 3, 7), 1) == date(2026, 3, 9)  # Sat -> Mon
    assert calendar.working_days_between(date(2026, 3, 6), date(2026, 3, 13)) == 5


def test_year_without_official_data_falls_back_to_statutory_holidays_and_warns_once(
    caplog, fresh_warnings
):
    calendar = WorkingCalendar()
    assert 2026 in calendar.covered_years
    assert 2027 not in calendar.covered_years
    assert not calendar.is_officially_covered(date(2027, 1, 1))
    assert calendar.is_officially_covered(date(2026, 12, 31))

    with caplog.at_level(logging.WARNING, logger=CALENDAR_LOGGER):
        assert not calendar.is_working_day(date(2027, 1, 1))  # Friday, 元旦 (computed)
        assert not calendar.is_working_day(date(2027, 1, 2))  # Saturday
        # Thu 2026-12-31 -> Mon 2027-01-04 (1), Tue 2027-01-05 (2).
        assert calendar.add_working_days(date(2026, 12, 31), 2) == date(2027, 1, 5)
        assert WorkingCalendar().is_working_day(date(2027, 3, 1))  # another instance: no repeat

    warnings = fallback_warnings(caplog)
    assert len(warnings) == 1
    assert "2027" in warnings[0].getMessage()
    assert "调休" in warnings[0].getMessage()  # the make-up workdays are what is missing

    with caplog.at_level(logging.WARNING, logger=CALENDAR_LOGGER):
        calendar.is_working_day(date(2028, 1, 3))
    warnings = fallback_warnings(caplog)
    assert len(warnings) == 2  # a new year warns again
    assert "2028" in warnings[1].getMessage()


# The public holidays of years no library knows, checked against published lunar calendars:
# 春节 2027 is Sat 6 Feb (除夕 Fri 5 Feb), 2030 Sun 3 Feb; 清明 falls on 5 Apr in both; 端午
# 2027 is 9 Jun, 2030 5 Jun; 中秋 2027 is 15 Sep, 2030 12 Sep.
STATUTORY_DAYS_OFF = {
    2027: [
        ("2027-01-01", "元旦"),
        ("2027-02-05", "春节"),
        ("2027-02-06", "春节"),
        ("2027-02-07", "春节"),
        ("2027-02-08", "春节"),
        ("2027-04-05", "清明节"),
        ("2027-05-01", "劳动节"),
        ("2027-05-02", "劳动节"),
        ("2027-06-09", "端午节"),
        ("2027-09-15", "中秋节"),
        ("2027-10-01", "国庆节"),
        ("2027-10-02", "国庆节"),
        ("2027-10-03", "国庆节"),
    ],
    2030: [
        ("2030-01-01", "元旦"),
        ("2030-02-02", "春节"),
        ("2030-02-03", "春节"),
        ("2030-02-04", "春节"),
        ("2030-02-05", "春节"),
        ("2030-04-05", "清明节"),
        ("2030-05-01", "劳动节"),
        ("2030-05-02", "劳动节"),
        ("2030-06-05", "端午节"),
        ("2030-09-12", "中秋节"),
        ("2030-10-01", "国庆节"),
        ("2030-10-02", "国庆节"),
        ("2030-10-03", "国庆节"),
    ],
}


@pytest.mark.parametrize("year", sorted(STATUTORY_DAYS_OFF))
def test_public_holidays_of_years_not_yet_announced_are_days_off(year, fresh_warnings):
    calendar = WorkingCalendar()
    expected = [(date.fromisoformat(day), name) for day, name in STATUTORY_DAYS_OFF[year]]
    assert sorted(calendar_module.statutory_holidays(year).items()) == expected
    for day, name in expected:
        status = calendar.status(day)
        assert (status.working, status.source, status.name) == (False, "statutory", name), day
    # Around them, ordinary weekdays still work and weekends do not.
    assert calendar.status(date(year, 3, 12)).source == "weekday"
    assert calendar.is_working_day(date(year, 10, 8)) == (date(year, 10, 8).weekday() < 5)


@pytest.mark.parametrize("year", [2025, 2026])
def test_the_computed_holidays_agree_with_the_announced_years(year):
    """Since 2025 the rules give 除夕 and 2 May off: every computed day is off in the
    State Council's arrangement too (which adds bridging days and 调休 around them)."""
    calendar = WorkingCalendar()
    for day, name in calendar_module.statutory_holidays(year).items():
        status = calendar.status(day)
        assert (status.working, status.source) == (False, "library"), (day, name)
        assert status.name == name, day


def test_an_override_wins_over_a_computed_holiday(fresh_warnings):
    calendar = WorkingCalendar(extra_workdays=[date(2027, 1, 1)], extra_holidays=[date(2027, 1, 4)])
    assert calendar.status(date(2027, 1, 1)).working
    assert calendar.status(date(2027, 1, 1)).source == "override"
    assert not calendar.is_working_day(date(2027, 1, 4))  # a Monday the admin closed
    assert calendar.add_working_days(date(2026, 12, 31), 1) == date(2027, 1, 1)


def test_admin_holiday_override_wins_over_official_workday():
    # A typhoon closure on Tuesday 2026-03-10.
    calendar = WorkingCalendar(extra_holidays=[date(2026, 3, 10)])
    assert not calendar.is_working_day(date(2026, 3, 10))
    assert calendar.add_working_days(date(2026, 3, 9), 1) == date(2026, 3, 11)
    assert calendar.is_officially_covered(date(2026, 3, 10))


def test_admin_workday_override_wins_over_weekend_and_holiday():
    calendar = WorkingCalendar(extra_workdays=[date(2026, 3, 7), date(2026, 2, 16)])
    assert calendar.is_working_day(date(2026, 3, 7))  # Saturday
    assert calendar.is_working_day(date(2026, 2, 16))  # Spring Festival holiday
    assert calendar.add_working_days(date(2026, 3, 6), 1) == date(2026, 3, 7)
    assert calendar.add_working_days(date(2026, 2, 14), 1) == date(2026, 2, 16)
    assert not WorkingCalendar().is_working_day(date(2026, 3, 7))  # other calendars unaffected


def test_a_day_cannot_be_both_extra_holiday_and_extra_workday():
    with pytest.raises(ValueError, match="2026-03-07"):
        WorkingCalendar(extra_holidays=[date(2026, 3, 7)], extra_workdays=[date(2026, 3, 7)])


def test_start_day_never_counts_even_when_it_is_a_working_day():
    calendar = WorkingCalendar()
    assert calendar.add_working_days(date(2026, 3, 9), 1) == date(2026, 3, 10)


def test_at_least_one_working_day_must_be_added():
    with pytest.raises(ValueError, match="at least 1"):
        WorkingCalendar().add_working_days(date(2026, 3, 9), 0)


def test_datetimes_are_refused_because_their_day_depends_on_the_zone():
    with pytest.raises(TypeError, match="Asia/Shanghai"):
        WorkingCalendar().is_working_day(datetime(2026, 3, 9, 12, 0))


days = st.dates(min_value=date(2003, 1, 1), max_value=date(2029, 12, 31))


@given(
    start_day=days,
    n=st.integers(min_value=1, max_value=40),
    extra_holidays=st.sets(days, max_size=5),
    extra_workdays=st.sets(days, max_size=5),
)
def test_add_working_days_is_a_later_working_day_and_monotonic(
    start_day, n, extra_holidays, extra_workdays
):
    calendar = WorkingCalendar(extra_holidays, extra_workdays - extra_holidays)
    nth = calendar.add_working_days(start_day, n)
    following = calendar.add_working_days(start_day, n + 1)
    assert calendar.is_working_day(nth)
    assert nth > start_day
    assert following > nth
    assert calendar.working_days_between(start_day, nth) == n
