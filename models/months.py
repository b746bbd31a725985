"""Bonus months: the calendar month of an instant in the rules' time zone."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

# fullmatch (``$`` would accept a trailing newline); [0-9], as \d also matches other digits.
_MONTH_RE = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")


@dataclass(frozen=True, order=True, slots=True)
class Month:
    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        m = _MONTH_RE.fullmatch(text)
        if m is None:
            raise ValueError(f"month must be YYYY-MM, got {text!r}")
        return cls(int(m.group(1)), int(m.group(2)))

    @classmethod
    def of(cls, instant: datetime, tz: ZoneInfo) -> Month:
        """The bonus month of an aware ``instant`` in ``tz``."""
        if instant.tzinfo is None:
            raise ValueError("instant must carry a UTC offset")
        local = instant.astimezone(tz)
        return cls(local.year, local.month)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    def next(self) -> Month:
        return Month(self.year + 1, 1) if self.month == 12 else Month(self.year, self.month + 1)

    def previous(self) -> Month:
        return Month(self.year - 1, 12) if self.month == 1 else Month(self.year, self.month - 1)

    def minus(self, months: int) -> Month:
        index = self.year * 12 + (self.month - 1) - months
        return Month(index // 12, index % 12 + 1)

    def starts_at(self, tz: ZoneInfo) -> datetime:
        """First instant of the month in ``tz`` (aware)."""
        return datetime(self.year, self.month, 1, tzinfo=tz)

    def ends_at(self, tz: ZoneInfo) -> datetime:
        """First instant after the month in ``tz`` (aware, exclusive end)."""
        return self.next().starts_at(tz)

    def has_ended(self, now: datetime, tz: ZoneInfo) -> bool:
        return now >= self.ends_at(tz)


# -- months as dates (the first day stands for the month; analytics and retention use these) --


def month_start(day: date) -> date:
    """The first day of ``day``'s month."""
    return day.replace(day=1)


def months_back(month: date, count: int) -> date:
    """The first day of the month ``count`` months before ``month``'s (negative: after)."""
    index = month.year * 12 + month.month - 1 - count
    return date(index // 12, index % 12 + 1, 1)


def month_end(month: date) -> date:
    """The last day of ``month``'s month."""
    return months_back(month, -1) - timedelta(days=1)


def retention_cutoff(today: date, months: int) -> date:
    """The first month kept: the month of ``today`` and the ``months - 1`` before it are kept."""
    if months < 1:
        raise ValueError("retention months must be >= 1")
    return months_back(today, months - 1)


def days_after(month: Month, days: int, tz: ZoneInfo) -> datetime:
    """The instant ``days`` days after the month ended (for expiry of per-month data)."""
    return month.ends_at(tz) + timedelta(days=days)
