"""When an ended customer's data is erased (contract section 9): pure date rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from models.rights import add_months, ended_erasure_due

HELSINKI_WINTER = timezone(timedelta(hours=2))


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (datetime(2024, 1, 31, 12, tzinfo=UTC), 1, datetime(2024, 2, 29, 12, tzinfo=UTC)),
        (datetime(2023, 1, 31, 12, tzinfo=UTC), 1, datetime(2023, 2, 28, 12, tzinfo=UTC)),
        (datetime(2024, 11, 15, tzinfo=UTC), 24, datetime(2026, 11, 15, tzinfo=UTC)),
        (datetime(2024, 12, 1, tzinfo=UTC), 1, datetime(2025, 1, 1, tzinfo=UTC)),
        (datetime(2024, 2, 29, tzinfo=UTC), 24, datetime(2026, 2, 28, tzinfo=UTC)),
    ],
)
def test_add_months(start: datetime, months: int, expected: datetime) -> None:
    assert add_months(start, months) == expected


def test_an_ended_household_is_due_only_once_the_months_have_passed() -> None:
    ended = datetime(2024, 11, 15, 10, 0, tzinfo=HELSINKI_WINTER)
    limit = datetime(2026, 11, 15, 10, 0, tzinfo=HELSINKI_WINTER)
    assert not ended_erasure_due(ended, 24, limit - timedelta(days=1))
    assert not ended_erasure_due(ended, 24, limit)
    assert ended_erasure_due(ended, 24, limit + timedelta(seconds=1))
    assert ended_erasure_due(ended, 24, limit + timedelta(days=1))
    assert not ended_erasure_due(ended, 25, limit + timedelta(days=1))


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="UTC offset"):
        ended_erasure_due(datetime(2024, 1, 1), 24, datetime.now(UTC))
