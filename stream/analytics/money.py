"""The co-op's other money in ClickHouse, for the business dashboard: aggregates only.

- ``member_payment_totals`` (migration 008): member payments emitted, per year, co-op, kind;
- ``partner_bonus`` (migration 009): each partner's Bonus of a settled month.

Both are ReplacingMergeTree tables read with FINAL: writing the same year (or month) again
replaces its rows, so a write that failed is repaired by running the command again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from stream.clickhouse.engine import ClickHouse


def write_member_payment_totals(
    client: ClickHouse, year: int, totals: Mapping[tuple[str, str], tuple[int, int]]
) -> int:
    """``totals``: (co_op, kind) -> (payments, amount_cents) of ``year``; rows written."""
    rows = [
        (year, co_op, kind, payments, cents)
        for (co_op, kind), (payments, cents) in sorted(totals.items())
    ]
    if rows:
        client.insert(
            "member_payment_totals", ["year", "co_op", "kind", "payments", "amount_cents"], rows
        )
    return len(rows)


@dataclass(frozen=True, slots=True)
class PartnerBonusRow:
    partner_id: str
    partner_name: str
    households: int
    partner_amount_cents: int
    bonus_cents: int


def write_partner_bonus(client: ClickHouse, month: date, rows: Sequence[PartnerBonusRow]) -> int:
    if rows:
        client.insert(
            "partner_bonus",
            [
                "month",
                "partner_id",
                "partner_name",
                "households",
                "partner_amount_cents",
                "bonus_cents",
            ],
            [
                (
                    month,
                    r.partner_id,
                    r.partner_name,
                    r.households,
                    r.partner_amount_cents,
                    r.bonus_cents,
                )
                for r in rows
            ],
        )
    return len(rows)
