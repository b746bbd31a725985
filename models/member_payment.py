"""Interest on member capital and refund of surplus (contract section 11). Pure arithmetic.

For a household and an ended year Y:

- capital held = its capital payments with ``paid_at`` up to the end of Y, plus bonus sent to
  capital by payouts of months up to December Y, at most ``capital_required_cents``;
  capital interest = round(``capital_interest_bp`` x capital held / 10000);
- surplus refund = round(``surplus_refund_bp`` x P / 10000), P = the sum of the twelve
  months' ``purchases_cents`` of Y; 0 for a business household, and 0 when P is negative
  (returns only): a refund is never a charge.

Round is half up, once per household, year and kind. One ``member-payment/1`` event per
household and kind with a non-zero amount; its ``payment_id`` is ``H:YEAR:KIND``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from models.money import div_round_half_up
from models.rules import CoOpYear

SCHEMA = "member-payment/1"
CAPITAL_INTEREST = "capital_interest"
SURPLUS_REFUND = "surplus_refund"
KINDS = (CAPITAL_INTEREST, SURPLUS_REFUND)


@dataclass(frozen=True, slots=True)
class CapitalLedger:
    """A household's member-capital ledger, by year.

    ``paid_by_year``: capital payments by the year of their ``paid_at`` (rules' time zone);
    ``bonus_by_year``: bonus sent to capital by the year of the payout's bonus month;
    ``untracked_cents``: ledger sums recorded before the ledger kept years (held since before
    any year asked about).
    """

    required_cents: int
    paid_by_year: Mapping[int, int] = field(default_factory=dict)
    bonus_by_year: Mapping[int, int] = field(default_factory=dict)
    untracked_cents: int = 0

    def held_at_end_of(self, year: int) -> int:
        """Capital held at the end of ``year``, at most ``required_cents``."""
        total = self.untracked_cents
        total += sum(cents for y, cents in self.paid_by_year.items() if y <= year)
        total += sum(cents for y, cents in self.bonus_by_year.items() if y <= year)
        return max(0, min(self.required_cents, total))


def capital_interest_cents(held_cents: int, rate_bp: int) -> int:
    return div_round_half_up(rate_bp * held_cents, 10_000)


def surplus_basis_cents(monthly_purchases_cents: Iterable[int], *, business: bool) -> int:
    """P: the year's bonus purchases (0 for a business household, never negative)."""
    if business:
        return 0
    return max(0, sum(monthly_purchases_cents))


def surplus_refund_cents(basis_cents: int, rate_bp: int) -> int:
    return div_round_half_up(rate_bp * basis_cents, 10_000)


@dataclass(frozen=True, slots=True)
class MemberPayment:
    payment_id: str
    household_id: str
    year: int
    co_op: str
    kind: str
    basis_cents: int
    rate_bp: int
    amount_cents: int
    payout_account: str

    def to_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA, **{k: getattr(self, k) for k in self.__slots__}}


def payment_id(household_id: str, year: int, kind: str) -> str:
    return f"{household_id}:{year}:{kind}"


def plan_member_payments(
    *,
    household_id: str,
    year: int,
    co_op: str,
    rates: CoOpYear,
    ledger: CapitalLedger,
    monthly_purchases_cents: Iterable[int],
    business: bool,
    payout_account: str,
) -> list[MemberPayment]:
    """The household's payments for ``year``: at most one per kind, none with amount 0."""
    held = ledger.held_at_end_of(year)
    basis = surplus_basis_cents(monthly_purchases_cents, business=business)
    planned = [
        (
            CAPITAL_INTEREST,
            held,
            rates.capital_interest_bp,
            capital_interest_cents(held, rates.capital_interest_bp),
        ),
        (
            SURPLUS_REFUND,
            basis,
            rates.surplus_refund_bp,
            surplus_refund_cents(basis, rates.surplus_refund_bp),
        ),
    ]
    return [
        MemberPayment(
            payment_id=payment_id(household_id, year, kind),
            household_id=household_id,
            year=year,
            co_op=co_op,
            kind=kind,
            basis_cents=basis_cents,
            rate_bp=rate,
            amount_cents=amount,
            payout_account=payout_account,
        )
        for kind, basis_cents, rate, amount in planned
        if amount != 0
    ]


def ledger_from_fields(fields: Mapping[str, int], required_cents: int) -> CapitalLedger:
    """The ledger from its stored fields: ``capital_paid_cents`` and ``bonus_to_capital_cents``
    (totals) and their per-year parts ``capital_paid_cents:YYYY``, ``bonus_to_capital_cents:YYYY``.
    Whatever the totals hold beyond their per-year parts predates the per-year parts."""
    paid: dict[int, int] = {}
    bonus: dict[int, int] = {}
    for name, cents in fields.items():
        base, _, year = name.partition(":")
        if not year.isdigit():
            continue
        if base == "capital_paid_cents":
            paid[int(year)] = cents
        elif base == "bonus_to_capital_cents":
            bonus[int(year)] = cents
    untracked = (
        fields.get("capital_paid_cents", 0)
        - sum(paid.values())
        + fields.get("bonus_to_capital_cents", 0)
        - sum(bonus.values())
    )
    return CapitalLedger(required_cents, paid, bonus, max(0, untracked))
