"""Register rights (contract section 9) as pure rules: when an ended customer is erased."""

from __future__ import annotations

import calendar
from datetime import datetime


def add_months(instant: datetime, months: int) -> datetime:
    """``instant`` moved by whole calendar months; the day is clamped to the month's last
    (31 January + 1 month = 28 or 29 February), the time of day kept."""
    index = instant.year * 12 + instant.month - 1 + months
    year, month = index // 12, index % 12 + 1
    day = min(instant.day, calendar.monthrange(year, month)[1])
    return instant.replace(year=year, month=month, day=day)


def ended_erasure_due(ended_at: datetime, retention_months: int, now: datetime) -> bool:
    """Whether an ended household's data is due for erasure: ``ended_at`` is more than
    ``retention_months`` months in the past."""
    if ended_at.tzinfo is None or now.tzinfo is None:
        raise ValueError("ended_at and now must carry a UTC offset")
    return now > add_months(ended_at, retention_months)
