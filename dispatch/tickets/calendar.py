"""Working days (工作日) for ticket deadlines, from China's official holiday arrangement.

The official data comes from the ``chinesecalendar`` package, which knows the public holidays
(法定节假日) and the make-up workdays (调休: weekend days worked in exchange for a longer
holiday). Administrators can add their own holidays (e.g. a typhoon closure) and workdays;
those overrides win over the official data.

For a year the package has no data for (it only ships announced years), the calendar falls
back to Monday–Friday plus the overrides and logs one warning per year, so that deadlines
keep being computed while someone enters that year's holidays as overrides.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from functools import cache

import chinese_calendar

logger = logging.getLogger(__name__)

# Years already warned about, per process: a calendar may be rebuilt for every request (with
# the admins' current overrides), and the warning is only useful the first time.
_years_warned: set[int] = set()


@cache
def _official_years() -> range:
    """The years the installed chinesecalendar has holiday data for."""
    years = {day.year for day in chinese_calendar.holidays}
    return range(min(years), max(years) + 1)


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
        """Whether ``day`` is a working day: overrides first, then the official data, and
        Monday–Friday for years without official data (warning once per year)."""
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
        return day.weekday() < 5

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
        "chinesecalendar has no holiday data for %d; counting Monday-Friday as working days "
        "plus the administrators' extra holidays/workdays. Enter %d's public holidays and "
        "make-up workdays as overrides, or upgrade chinesecalendar.",
        year,
        year,
    )
