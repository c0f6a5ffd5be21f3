"""Working days (工作日) for ticket deadlines, from China's official holiday arrangement.

The official data comes from the ``chinesecalendar`` package, which knows the public holidays
(法定节假日) and the make-up workdays (调休: weekend days worked in exchange for a longer
holiday). Administrators can add their own holidays (e.g. a typhoon closure) and workdays;
those overrides win over the official data.

For a year the package has no data for (it ships only the years the State Council has
announced, each in the December before), the calendar computes the statutory holidays itself
(``statutory_holidays``) and counts Monday–Friday otherwise. What it cannot compute are that
year's make-up workdays (调休), which are a decision, not a rule: it logs one warning per
year, and administrators enter them as overrides once they are announced.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from typing import Literal

import chinese_calendar
from lunar_python import Lunar

logger = logging.getLogger(__name__)

# Years already warned about, per process: a calendar may be rebuilt for every request (with
# the admins' current overrides), and the warning is only useful the first time.
_years_warned: set[int] = set()


@cache
def _official_years() -> range:
    """The years the installed chinesecalendar has holiday data for."""
    years = {day.year for day in chinese_calendar.holidays}
    return range(min(years), max(years) + 1)


# The official English names chinesecalendar gives its holidays, in the hotline's language.
_HOLIDAY_NAMES = {
    "New Year's Day": "元旦",
    "Spring Festival": "春节",
    "Tomb-sweeping Day": "清明节",
    "Labour Day": "劳动节",
    "Dragon Boat Festival": "端午节",
    "National Day": "国庆节",
    "Mid-autumn Festival": "中秋节",
}

DaySource = Literal["override", "library", "statutory", "weekday"]


@dataclass(frozen=True, slots=True)
class DayStatus:
    """Why a day is or is not a working day.

    ``source``: ``override`` (an administrator's), ``library`` (the announced arrangement in
    chinesecalendar), ``statutory`` (a public holiday this module computed for a year not yet
    announced) or ``weekday`` (no holiday known: Monday–Friday work, weekends do not).
    """

    day: date
    working: bool
    source: DaySource
    name: str


@cache
def statutory_holidays(year: int) -> dict[date, str]:
    """The public holidays (法定节假日) of ``year`` by the national rules in force since 2025.

    元旦 1 Jan; 春节 除夕 to 初三 (4 days, lunar calendar); 清明 the day of the solar term;
    劳动节 1–2 May; 端午 the 5th of the 5th lunar month; 中秋 the 15th of the 8th lunar month;
    国庆 1–3 Oct. Only the days the rules name: where a holiday meets a weekend, the State
    Council's yearly arrangement moves days around with 调休, which cannot be computed.
    """
    days: dict[date, str] = {date(year, 1, 1): "元旦"}
    new_year = _solar(Lunar.fromYmd(year, 1, 1))
    for offset in range(-1, 3):  # 除夕 is the day before 初一, whether the 12th month has 29 or 30
        days[new_year + timedelta(days=offset)] = "春节"
    qingming = Lunar.fromYmd(year, 3, 1).getJieQiTable()["清明"]
    days[date(qingming.getYear(), qingming.getMonth(), qingming.getDay())] = "清明节"
    days[date(year, 5, 1)] = days[date(year, 5, 2)] = "劳动节"
    days[_solar(Lunar.fromYmd(year, 5, 5))] = "端午节"
    days[_solar(Lunar.fromYmd(year, 8, 15))] = "中秋节"
    for day in (1, 2, 3):
        days[date(year, 10, day)] = "国庆节"
    return days


def _solar(lunar_day: Lunar) -> date:
    solar = lunar_day.getSolar()
    return date(solar.getYear(), solar.getMonth(), solar.getDay())


class WorkingCalendar:
    """Tells working days from days off, with administrators' overrides on top.

    ``extra_holidays`` and ``extra_workdays`` override the official arrangement; a day may not
    be in both.
    """

    def __init__(
        self, extra_holidays: Iterable[date] = (), extra_workdays: Iterable[date] = ()
    ) -> None:
        self._extra_holidays = frozenset(_require_date(day) for day in extra_holidays)
        self._extra_workdays = frozenset(_require_date(day) for day in extra_workdays)
        both = self._extra_holidays & self._extra_workdays
        if both:
            listed = ", ".join(day.isoformat() for day in sorted(both))
            raise ValueError(f"days cannot be both an extra holiday and an extra workday: {listed}")
        self._covered_years = _official_years()

    @property
    def covered_years(self) -> range:
        """The years for which the official holiday arrangement is known."""
        return self._covered_years

    def is_officially_covered(self, day: date) -> bool:
        """Whether ``day`` falls in a year with official data (else Monday–Friday is assumed)."""
        return _require_date(day).year in self._covered_years

    def is_working_day(self, day: date) -> bool:
        """Whether ``day`` is a working day: overrides first, then the official data, and for
        years without it the statutory holidays and Monday–Friday (warning once per year)."""
        day = _require_date(day)
        if day in self._extra_holidays:
            return False
        if day in self._extra_workdays:
            return True
        if day.year in self._covered_years:
            try:
                return chinese_calendar.is_workday(day)
            except NotImplementedError:
                # The package disagreed about its own range: treat the day as uncovered.
                pass
        _warn_once_about(day.year)
        return day.weekday() < 5 and day not in statutory_holidays(day.year)

    def status(self, day: date) -> DayStatus:
        """Whether ``day`` is a working day, where that comes from, and the holiday's name."""
        day = _require_date(day)
        working = self.is_working_day(day)
        if day in self._extra_holidays or day in self._extra_workdays:
            return DayStatus(day, working, "override", "")
        if day.year in self._covered_years:
            try:
                _on_holiday, name = chinese_calendar.get_holiday_detail(day)
            except NotImplementedError:
                pass
            else:
                return DayStatus(day, working, "library", _HOLIDAY_NAMES.get(name, name or ""))
        name = statutory_holidays(day.year).get(day)
        if name:
            return DayStatus(day, working, "statutory", name)
        return DayStatus(day, working, "weekday", "")

    def add_working_days(self, start_day: date, n: int) -> date:
        """The ``n``-th working day after ``start_day`` (``n`` >= 1).

        ``start_day`` itself never counts, whether or not it is a working day, so the result is
        always a working day strictly after ``start_day``.
        """
        start_day = _require_date(start_day)
        if n < 1:
            raise ValueError(f"n must be at least 1 working day, got {n}")
        # Ends: the extra holidays are finite, and past them every week has working days.
        day = start_day
        counted = 0
        while counted < n:
            day += timedelta(days=1)
            counted += self.is_working_day(day)
        return day

    def working_days_between(self, start_day: date, end_day: date) -> int:
        """How many working days ``d`` satisfy ``start_day < d <= end_day`` (0 if end <= start).

        The inverse of :meth:`add_working_days`: ``working_days_between(d, add_working_days(d,
        n)) == n``.
        """
        start_day, end_day = _require_date(start_day), _require_date(end_day)
        count = 0
        day = start_day + timedelta(days=1)
        while day <= end_day:
            count += self.is_working_day(day)
            day += timedelta(days=1)
        return count


def _require_date(day: date) -> date:
    # A datetime is a date too, but its .date() is the day of whatever zone it carries, which
    # is the wrong day for a UTC time after 16:00; make the caller pick the local day.
    if isinstance(day, datetime):
        raise TypeError(
            f"expected a date, got the datetime {day!r}; convert it to Asia/Shanghai and pass "
            ".date(), so that the calendar day is the hotline's"
        )
    if not isinstance(day, date):
        raise TypeError(f"expected a date, got {type(day).__name__}")
    return day


def _warn_once_about(year: int) -> None:
    if year in _years_warned:
        return
    _years_warned.add(year)
    logger.warning(
        "chinesecalendar has no holiday data for %d; counting its statutory holidays (computed) "
        "and Monday-Friday, plus the administrators' overrides. The make-up workdays (调休) of "
        "%d are not known: enter them as overrides once announced, or upgrade chinesecalendar.",
        year,
        year,
    )
