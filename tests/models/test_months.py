"""Bonus months: calendar months of instants in Europe/Helsinki (EET, UTC+2; EEST, UTC+3)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.months import (
    Month,
    days_after,
    month_end,
    month_start,
    months_back,
    retention_cutoff,
)

HEL = ZoneInfo("Europe/Helsinki")
TICK = timedelta(microseconds=1)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def month_of(text: str) -> str:
    return str(Month.of(utc(text), HEL))


# Summer time in 2026 runs from Sunday 29 March 01:00 UTC to Sunday 25 October 01:00 UTC,
# so months April-October start at 21:00 UTC the day before, the others at 22:00 UTC.
MONTH_STARTS_UTC = [
    ("2026-01", "2025-12-31T22:00:00Z"),
    ("2026-02", "2026-01-31T22:00:00Z"),
    ("2026-03", "2026-02-28T22:00:00Z"),
    ("2026-04", "2026-03-31T21:00:00Z"),
    ("2026-05", "2026-04-30T21:00:00Z"),
    ("2026-06", "2026-05-31T21:00:00Z"),
    ("2026-07", "2026-06-30T21:00:00Z"),
    ("2026-08", "2026-07-31T21:00:00Z"),
    ("2026-09", "2026-08-31T21:00:00Z"),
    ("2026-10", "2026-09-30T21:00:00Z"),
    ("2026-11", "2026-10-31T22:00:00Z"),
    ("2026-12", "2026-11-30T22:00:00Z"),
    ("2027-01", "2026-12-31T22:00:00Z"),
    ("2028-03", "2028-02-29T22:00:00Z"),  # after a leap day
]


@pytest.mark.parametrize(("month", "start"), MONTH_STARTS_UTC)
def test_both_sides_of_every_month_boundary(month: str, start: str) -> None:
    instant = utc(start)
    previous = str(Month.parse(month).previous())
    assert str(Month.of(instant, HEL)) == month
    assert str(Month.of(instant - TICK, HEL)) == previous
    assert str(Month.of(instant - timedelta(seconds=1), HEL)) == previous
    # The month in UTC is still the previous one for a while: the bonus month is not UTC's.
    assert instant.month != Month.parse(month).month


@pytest.mark.parametrize(("month", "start"), MONTH_STARTS_UTC)
def test_starts_at_and_ends_at(month: str, start: str) -> None:
    m = Month.parse(month)
    assert m.starts_at(HEL) == utc(start)
    assert m.previous().ends_at(HEL) == utc(start)
    assert m.starts_at(HEL).astimezone(HEL).replace(tzinfo=None) == datetime(m.year, m.month, 1)


@pytest.mark.parametrize(
    ("instant", "month"),
    [
        ("2026-11-30T22:30:00Z", "2026-12"),  # 2026-12-01 00:30 in Helsinki
        ("2026-11-30T21:59:59Z", "2026-11"),
        ("2026-11-30T22:00:00Z", "2026-12"),
        ("2026-12-01T00:30:00+02:00", "2026-12"),
        ("2026-11-30T23:30:00+01:00", "2026-12"),  # Stockholm writes it as 30 November
        ("2026-12-01T04:59:59+07:00", "2026-11"),  # and Bangkok writes 1 December
        # March 31 is in summer time: the month turns at 21:00 UTC, not 22:00.
        ("2026-03-31T21:00:00Z", "2026-04"),
        ("2026-03-31T20:59:59Z", "2026-03"),
        ("2026-03-31T21:30:00Z", "2026-04"),
        # October 31 is in winter time again: at 21:30 UTC it is 23:30 in Helsinki.
        ("2026-10-31T21:30:00Z", "2026-10"),
        ("2026-10-31T21:59:59Z", "2026-10"),
        ("2026-10-31T22:00:00Z", "2026-11"),
        ("2026-09-30T20:59:59Z", "2026-09"),
        ("2026-09-30T21:00:00Z", "2026-10"),
        # Year boundary.
        ("2026-12-31T21:59:59Z", "2026-12"),
        ("2026-12-31T22:00:00Z", "2027-01"),
        ("2027-01-01T00:00:00+02:00", "2027-01"),
        ("2026-12-31T23:59:59+02:00", "2026-12"),
    ],
)
def test_month_of_an_instant_in_helsinki(instant: str, month: str) -> None:
    assert month_of(instant) == month


@pytest.mark.parametrize(
    ("instant", "wall_clock", "offset_hours"),
    [
        # Spring forward, Sunday 2026-03-29: 03:00 EET becomes 04:00 EEST.
        ("2026-03-29T00:59:59Z", "2026-03-29T02:59:59", 2),
        ("2026-03-29T01:00:00Z", "2026-03-29T04:00:00", 3),
        # Fall back, Sunday 2026-10-25: 04:00 EEST becomes 03:00 EET.
        ("2026-10-25T00:59:59Z", "2026-10-25T03:59:59", 3),
        ("2026-10-25T01:00:00Z", "2026-10-25T03:00:00", 2),
        ("2026-10-24T23:30:00Z", "2026-10-25T02:30:00", 3),
    ],
)
def test_dst_switches_stay_in_their_month(instant: str, wall_clock: str, offset_hours: int) -> None:
    local = utc(instant).astimezone(HEL)
    assert local.replace(tzinfo=None) == datetime.fromisoformat(wall_clock)
    assert local.utcoffset() == timedelta(hours=offset_hours)
    assert month_of(instant) == wall_clock[:7]


def test_the_repeated_hour_of_october_is_october_on_both_passes() -> None:
    first = utc("2026-10-25T00:30:00Z")  # 03:30 EEST
    second = utc("2026-10-25T01:30:00Z")  # 03:30 EET, an hour later
    assert first.astimezone(HEL).strftime("%H:%M") == second.astimezone(HEL).strftime("%H:%M")
    assert Month.of(first, HEL) == Month.of(second, HEL) == Month(2026, 10)


def test_month_of_depends_on_the_zone() -> None:
    instant = utc("2026-11-30T22:30:00Z")
    assert Month.of(instant, HEL) == Month(2026, 12)
    assert Month.of(instant, ZoneInfo("UTC")) == Month(2026, 11)
    assert Month.of(instant, ZoneInfo("America/New_York")) == Month(2026, 11)


def test_a_naive_instant_is_refused() -> None:
    with pytest.raises(ValueError, match="offset"):
        Month.of(datetime(2026, 11, 30, 22, 30), HEL)


@settings(max_examples=200, deadline=None)
@given(
    st.datetimes(
        min_value=datetime(1990, 1, 1),
        max_value=datetime(2090, 12, 31),
        timezones=st.sampled_from(
            [UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5)), HEL]
        ),
    )
)
def test_an_instant_lies_inside_its_month(instant: datetime) -> None:
    month = Month.of(instant, HEL)
    assert month.starts_at(HEL) <= instant < month.ends_at(HEL)
    assert not month.has_ended(instant, HEL)
    assert month.previous().has_ended(instant, HEL)


# --- Month arithmetic --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "year", "month"),
    [("2026-11", 2026, 11), ("2027-01", 2027, 1), ("0001-12", 1, 12), ("9999-10", 9999, 10)],
)
def test_parse(text: str, year: int, month: int) -> None:
    assert Month.parse(text) == Month(year, month)
    assert str(Month.parse(text)) == text


@pytest.mark.parametrize(
    "text",
    [
        "2026-13",
        "2026-00",
        "2026-1",
        "26-11",
        "2026/11",
        "2026-11-01",
        " 2026-11",
        "2026-11 ",
        "2026-11\n",
        "",
        "202611",
        "11-2026",
        "+2026-11",
        "٢٠٢٦-11",  # Arabic-Indic digits
        "２０２６-11",  # fullwidth digits
    ],
)
def test_parse_errors(text: str) -> None:
    with pytest.raises(ValueError, match="YYYY-MM"):
        Month.parse(text)


def test_str_pads_with_zeros() -> None:
    assert str(Month(987, 3)) == "0987-03"


@pytest.mark.parametrize(
    ("month", "following", "preceding"),
    [
        (Month(2026, 11), Month(2026, 12), Month(2026, 10)),
        (Month(2026, 12), Month(2027, 1), Month(2026, 11)),
        (Month(2027, 1), Month(2027, 2), Month(2026, 12)),
        (Month(2028, 2), Month(2028, 3), Month(2028, 1)),
    ],
)
def test_next_and_previous(month: Month, following: Month, preceding: Month) -> None:
    assert month.next() == following
    assert month.previous() == preceding
    assert month.next().previous() == month


@pytest.mark.parametrize(
    ("months", "expected"),
    [
        (0, Month(2026, 11)),
        (1, Month(2026, 10)),
        (10, Month(2026, 1)),
        (11, Month(2025, 12)),
        (12, Month(2025, 11)),
        (23, Month(2024, 12)),
        (-1, Month(2026, 12)),
        (-2, Month(2027, 1)),
        (-14, Month(2028, 1)),
    ],
)
def test_minus(months: int, expected: Month) -> None:
    assert Month(2026, 11).minus(months) == expected


@settings(max_examples=100, deadline=None)
@given(st.integers(1000, 8000), st.integers(1, 12), st.integers(0, 40))
def test_minus_is_repeated_previous_and_minus_negative_is_repeated_next(
    year: int, month_no: int, k: int
) -> None:
    month = Month(year, month_no)
    back, forward = month, month
    for _ in range(k):
        back, forward = back.previous(), forward.next()
    assert month.minus(k) == back
    assert month.minus(-k) == forward
    assert Month.parse(str(month)) == month


def test_months_order_chronologically() -> None:
    assert Month(2026, 12) < Month(2027, 1) < Month(2027, 2)
    assert sorted([Month(2027, 1), Month(2026, 2), Month(2026, 11)]) == [
        Month(2026, 2),
        Month(2026, 11),
        Month(2027, 1),
    ]


def test_first_day() -> None:
    assert Month(2026, 11).first_day == date(2026, 11, 1)


def test_ends_at_is_exclusive_and_has_ended_turns_exactly_then() -> None:
    november = Month(2026, 11)
    end = november.ends_at(HEL)
    assert end == utc("2026-11-30T22:00:00Z")
    assert Month.of(end, HEL) == november.next()
    assert Month.of(end - TICK, HEL) == november
    assert november.has_ended(end, HEL)
    assert not november.has_ended(end - TICK, HEL)
    # A month that ends in summer time ends at 21:00 UTC.
    assert Month(2026, 3).ends_at(HEL) == utc("2026-03-31T21:00:00Z")
    # October ends after the switch back to winter time: 22:00 UTC.
    assert Month(2026, 10).ends_at(HEL) == utc("2026-10-31T22:00:00Z")


def test_days_after_counts_local_days_from_the_end_of_the_month() -> None:
    # November ends at 2026-12-01 00:00 in Helsinki; 35 days later is 2027-01-05 00:00.
    expiry = days_after(Month(2026, 11), 35, HEL)
    assert expiry.astimezone(HEL).replace(tzinfo=None) == datetime(2027, 1, 5)
    assert expiry == utc("2027-01-04T22:00:00Z")


# -- months as dates (analytics and retention) ---------------------------------------------


@pytest.mark.parametrize(
    ("day", "count", "first"),
    [
        (date(2026, 3, 17), 0, date(2026, 3, 1)),
        (date(2026, 3, 1), 2, date(2026, 1, 1)),
        (date(2026, 3, 31), 3, date(2025, 12, 1)),
        (date(2026, 1, 1), 25, date(2023, 12, 1)),
        (date(2026, 12, 5), -1, date(2027, 1, 1)),
    ],
)
def test_months_back(day: date, count: int, first: date) -> None:
    assert months_back(day, count) == first


@pytest.mark.parametrize(
    ("day", "last"),
    [
        (date(2026, 2, 10), date(2026, 2, 28)),
        (date(2028, 2, 1), date(2028, 2, 29)),
        (date(2026, 12, 31), date(2026, 12, 31)),
        (date(2026, 4, 30), date(2026, 4, 30)),
    ],
)
def test_month_start_and_end(day: date, last: date) -> None:
    assert month_start(day) == day.replace(day=1)
    assert month_end(day) == last


@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2900, 12, 31)))
def test_month_end_is_the_day_before_the_next_month(day: date) -> None:
    assert month_end(day) + timedelta(days=1) == months_back(day, -1)
    assert month_start(day) <= day <= month_end(day)


def test_retention_cutoff_keeps_this_month_and_the_ones_before() -> None:
    assert retention_cutoff(date(2026, 11, 26), 1) == date(2026, 11, 1)
    assert retention_cutoff(date(2026, 11, 26), 24) == date(2024, 12, 1)
    with pytest.raises(ValueError, match=">= 1"):
        retention_cutoff(date(2026, 11, 26), 0)
