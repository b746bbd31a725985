"""Member insights (contract section 13): by-group sums and the distance to the next tier."""

from __future__ import annotations

import pytest

from models.insights import by_group, group_fields, to_next_tier_cents
from models.rules import Tier

TIERS = (Tier(5000, 100), Tier(20000, 150), Tier(90000, 500))


@pytest.mark.parametrize(
    ("purchases", "expected"),
    [
        (-300, 5300),
        (0, 5000),
        (4999, 1),
        (5000, 15000),  # exactly at a boundary: the next one counts
        (5001, 14999),
        (19999, 1),
        (20000, 70000),
        (89999, 1),
        (90000, None),  # the top tier: nothing further
        (150000, None),
    ],
)
def test_to_next_tier_around_the_boundaries(purchases: int, expected: int | None) -> None:
    assert to_next_tier_cents(purchases, TIERS) == expected
    assert to_next_tier_cents(purchases, tuple(reversed(TIERS))) == expected


def test_group_fields_count_eligible_lines_signed() -> None:
    lines = [("dairy", 398), ("tobacco", 1000), ("dairy", 2), ("fuel", 1949), ("meat", 0)]
    codes = [1, 0, 2, 1, 1]
    assert group_fields(lines, codes, 1) == {"g:dairy": 400, "g:fuel": 1949}
    assert group_fields(lines, codes, -1) == {"g:dairy": -400, "g:fuel": -1949}
    assert group_fields(lines, [0] * 5, 1) == {}


def test_by_group_reads_only_group_fields() -> None:
    fields = {b"purchases_cents": b"5000", b"g:meat": b"100", "g:dairy": "300", "g:x": "0"}
    assert by_group(fields) == {"dairy": 300, "meat": 100}
