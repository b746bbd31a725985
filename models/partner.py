"""Bonus partners' settlement (contract section 12): what each partner is invoiced for a month.

``bonus_cents`` of a partner = the sum over households of round(``tier_bp`` x the
household-month's eligible non-fuel partner amount / 10000), with the household-month's final
``tier_bp`` (``models.bonus.partner_shares``), each at least 0.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from models.bonus import Accumulator, partner_shares
from models.rules import Rules


@dataclass(slots=True)
class PartnerTotal:
    partner_id: str
    name: str
    households: int = 0
    partner_amount_cents: int = 0
    bonus_cents: int = 0

    def to_json(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in self.__slots__}


def settle(
    household_months: Iterable[tuple[Accumulator, str, bool]], rules: Rules
) -> list[PartnerTotal]:
    """``household_months``: (accumulator, co_op, business) of one month's households.

    Every partner of the rules is listed (with zeros when nobody bought there), and any partner
    no longer in the rules whose swipes are still in the month, by id."""
    totals = {
        pid: PartnerTotal(pid, partner.name) for pid, partner in sorted(rules.partners.items())
    }
    for acc, co_op, business in household_months:
        if not acc.partner_cents:
            continue
        for pid, (cents, bonus) in partner_shares(acc, rules, co_op, business=business).items():
            total = totals.setdefault(pid, PartnerTotal(pid, "(no longer in the rules)"))
            total.households += 1
            total.partner_amount_cents += cents
            total.bonus_cents += bonus
    return list(totals.values())
