"""Bounds for the days and moments clients send, inside which every calendar sum works.

Python's dates end at the years 1 and 9999: a moment within a day of either end cannot be
moved to another time zone or have a day added, and used to surface as a 500. The hotline
has no business before 1900 or after 2999, so API fields typed ``Moment`` or ``Day`` refuse
such values as invalid input (422 ``validation_error``) before any service sees them.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import AfterValidator

EARLIEST_DAY = date(1900, 1, 1)
LATEST_DAY = date(2999, 12, 31)


def check_day(value: date) -> date:
    """``value`` if it lies within [EARLIEST_DAY, LATEST_DAY]; else ``ValueError``."""
    day = value.date() if isinstance(value, datetime) else value
    if not EARLIEST_DAY <= day <= LATEST_DAY:
        raise ValueError(f"must lie between {EARLIEST_DAY} and {LATEST_DAY}")
    return value


Day = Annotated[date, AfterValidator(check_day)]
Moment = Annotated[datetime, AfterValidator(check_day)]
