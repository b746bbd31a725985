"""Month-close payouts (contract section 5): first payouts, adjustments, capital first."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from models.bonus import BonusFigures

SCHEMA = "payout/1"


@dataclass(frozen=True, slots=True)
class PaidSoFar:
    """What the household-month's payouts have carried so far."""

    seq: int = 0
    base_bonus_cents: int = 0
    fuel_bonus_cents: int = 0
    payment_benefit_cents: int = 0

    @property
    def total_cents(self) -> int:
        return self.base_bonus_cents + self.fuel_bonus_cents + self.payment_benefit_cents


@dataclass(frozen=True, slots=True)
class Payout:
    payout_id: str
    household_id: str
    month: str
    co_op: str
    purchases_cents: int
    tier_bp: int
    base_bonus_cents: int
    fuel_bonus_cents: int
    payment_benefit_cents: int
    total_cents: int
    to_capital_cents: int
    to_account_cents: int
    payout_account: str
    adjustment: bool

    @property
    def seq(self) -> int:
        return int(self.payout_id.rsplit(":", 1)[1])

    def to_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA, **{k: getattr(self, k) for k in self.__slots__}}


def plan_payout(
    *,
    household_id: str,
    month: str,
    co_op: str,
    figures: BonusFigures,
    paid: PaidSoFar,
    closed_before: bool,
    capital_remaining_cents: int,
    payout_account: str,
) -> Payout | None:
    """The next payout of a household-month, or None when its total has not changed.

    ``closed_before``: the month had been closed before this run, so any payout now is an
    adjustment (its id still starts at ``:1`` if nothing was paid at the first close).
    """
    difference = figures.total_cents - paid.total_cents
    if difference == 0:
        return None
    # Capital first for a positive difference; a negative one is charged to the account.
    to_capital = min(difference, max(0, capital_remaining_cents)) if difference > 0 else 0
    seq = paid.seq + 1
    return Payout(
        payout_id=f"{household_id}:{month}:{seq}",
        household_id=household_id,
        month=month,
        co_op=co_op,
        purchases_cents=figures.purchases_cents,
        tier_bp=figures.tier_bp,
        base_bonus_cents=figures.base_bonus_cents - paid.base_bonus_cents,
        fuel_bonus_cents=figures.fuel_bonus_cents - paid.fuel_bonus_cents,
        payment_benefit_cents=figures.payment_benefit_cents - paid.payment_benefit_cents,
        total_cents=difference,
        to_capital_cents=to_capital,
        to_account_cents=difference - to_capital,
        payout_account=payout_account,
        adjustment=closed_before or paid.seq > 0,
    )
