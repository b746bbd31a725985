"""What one swipe adds to its household-month, and the month's bonus (contract section 4).

A swipe's ``Contribution`` does not depend on its household, so it is computed before the
card is resolved and added to the household-month ``Accumulator`` in Redis. The bonus itself
is computed from the accumulator only when asked (API, close), so the rounding happens once
per component per household-month.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from models.errors import InvalidEvent
from models.insights import GROUP_FIELD
from models.money import div_round_half_up, format_cents
from models.months import Month
from models.rules import Rules, Tier
from models.swipe import SwipeLike

_CAMPAIGN_FIELD = re.compile(r"^campaign_x(\d+)_cents$")
PARTNER_FIELD = "partner_cents:"  # + partner id: eligible non-fuel amount at that partner


def campaign_field(multiplier: int) -> str:
    return f"campaign_x{multiplier}_cents"


@dataclass(frozen=True, slots=True)
class LineResult:
    eligible: bool
    campaign_id: str


@dataclass(slots=True)
class Accumulator:
    """Signed sums for one household-month; the field names are the Redis hash fields."""

    purchases_cents: int = 0  # eligible, fuel included: decides the tier
    regular_cents: int = 0  # eligible non-fuel outside campaigns (N)
    campaign_cents: dict[int, int] = field(default_factory=dict)  # multiplier -> C
    fuel_ml: int = 0  # eligible fuel (F)
    fuel_cents: int = 0  # eligible fuel money (already in purchases)
    benefit_cents: int = 0  # eligible amount paid with a benefit method (P)
    excluded_cents: int = 0  # not eligible (for explanations)
    swipes: int = 0
    returns: int = 0
    # partner id -> eligible non-fuel amount of its swipes (contract section 12; already in
    # the sums above, kept apart for the partner's invoice)
    partner_cents: dict[str, int] = field(default_factory=dict)

    def fields(self) -> dict[str, int]:
        """Non-zero fields, as stored in Redis."""
        out = {
            "purchases_cents": self.purchases_cents,
            "regular_cents": self.regular_cents,
            "fuel_ml": self.fuel_ml,
            "fuel_cents": self.fuel_cents,
            "benefit_cents": self.benefit_cents,
            "excluded_cents": self.excluded_cents,
            "swipes": self.swipes,
            "returns": self.returns,
        }
        for multiplier, cents in self.campaign_cents.items():
            out[campaign_field(multiplier)] = cents
        for partner_id, cents in self.partner_cents.items():
            out[PARTNER_FIELD + partner_id] = cents
        return {k: v for k, v in out.items() if v}

    @classmethod
    def from_fields(cls, data: Mapping[str, int | str | bytes]) -> Accumulator:
        acc = cls()
        for raw_key, raw_value in data.items():
            key = raw_key.decode() if isinstance(raw_key, bytes) else str(raw_key)
            value = int(raw_value)
            match = _CAMPAIGN_FIELD.match(key)
            if match:
                acc.campaign_cents[int(match.group(1))] = value
            elif key.startswith(PARTNER_FIELD):
                acc.partner_cents[key[len(PARTNER_FIELD) :]] = value
            elif key in _PLAIN_FIELDS:
                setattr(acc, key, value)
        return acc

    def add(self, other: Accumulator) -> None:
        for key in _PLAIN_FIELDS:
            setattr(self, key, getattr(self, key) + getattr(other, key))
        for multiplier, cents in other.campaign_cents.items():
            self.campaign_cents[multiplier] = self.campaign_cents.get(multiplier, 0) + cents
        for partner_id, cents in other.partner_cents.items():
            self.partner_cents[partner_id] = self.partner_cents.get(partner_id, 0) + cents


_PLAIN_FIELDS = (
    "purchases_cents",
    "regular_cents",
    "fuel_ml",
    "fuel_cents",
    "benefit_cents",
    "excluded_cents",
    "swipes",
    "returns",
)


# What ``Contribution.line_codes`` holds per line: not eligible, eligible, eligible in the
# swipe's campaign. One small int per line instead of an object per line (the hot path).
NOT_ELIGIBLE = 0
ELIGIBLE = 1
IN_CAMPAIGN = 2


@dataclass(frozen=True, slots=True)
class Contribution:
    month: Month
    delta: Accumulator
    line_codes: tuple[int, ...]  # NOT_ELIGIBLE | ELIGIBLE | IN_CAMPAIGN per line
    campaign_id: str = ""  # the campaign of the IN_CAMPAIGN lines

    @property
    def lines(self) -> tuple[LineResult, ...]:
        """Per-line results as objects (for people and tests; the pipeline reads the codes)."""
        campaign = self.campaign_id
        return tuple(
            LineResult(code != NOT_ELIGIBLE, campaign if code == IN_CAMPAIGN else "")
            for code in self.line_codes
        )


class SwipeFields(NamedTuple):
    """What one swipe adds to its household-month, as the Redis hash fields it increments."""

    fields: dict[str, int]  # ``Accumulator.fields()`` names plus ``g:<group>`` (insights)
    line_codes: tuple[int, ...]  # NOT_ELIGIBLE | ELIGIBLE | IN_CAMPAIGN per line
    campaign_id: str  # the campaign of the IN_CAMPAIGN lines, or ""
    purchases_cents: int  # signed eligible amount (the tier's measure)


def swipe_fields(swipe: SwipeLike, rules: Rules) -> SwipeFields:
    """The swipe's signed effect on its household-month (business status applied later): one
    pass over its lines, straight to the non-zero hash fields (the hot path runs this once per
    swipe; ``contribution`` wraps it for everything else).

    Sums in local ints; a new accumulator field is a local here, summed in the loop and named
    at the end. The by-group sums (contract section 13) are the signed eligible amounts.
    """
    sign = swipe.sign
    partner_id = swipe.partner_id
    if partner_id and partner_id not in rules.partners:
        raise InvalidEvent(
            "unknown_partner", f"partner_id {partner_id!r} is not a partner listed in the rules"
        )
    payment_eligible = swipe.payment_method not in rules.excluded_payment_methods
    benefit_method = swipe.payment_method in rules.payment_benefit_methods
    campaign = rules.campaign_for(swipe.store_id, swipe.occurred_at)
    excluded_groups = rules.excluded_product_groups
    fuel_groups = rules.fuel_product_groups
    benefit_excluded = rules.payment_benefit_excluded_product_groups
    purchases = regular = in_campaign = fuel_ml = fuel_cents = benefit = excluded = 0
    codes: list[int] = []
    groups: dict[str, int] = {}
    index = 0
    for line in swipe.lines:
        group = line.product_group
        amount = sign * line.amount_cents
        is_fuel = group in fuel_groups
        if line.fuel_ml is not None and not is_fuel:
            raise InvalidEvent(
                "invalid_field", f"lines[{index}].fuel_ml is only allowed on fuel lines"
            )
        index += 1
        if not payment_eligible or group in excluded_groups:
            codes.append(NOT_ELIGIBLE)
            excluded += amount
            continue
        purchases += amount
        name = GROUP_FIELD + group
        groups[name] = groups.get(name, 0) + amount
        if is_fuel:
            codes.append(ELIGIBLE)
            fuel_cents += amount
            fuel_ml += sign * (line.fuel_ml or 0)
        elif campaign is not None:
            codes.append(IN_CAMPAIGN)
            in_campaign += amount
        else:
            codes.append(ELIGIBLE)
            regular += amount
        if benefit_method and group not in benefit_excluded:
            benefit += amount
    fields = {"swipes": 1}
    if sign < 0:
        fields["returns"] = 1
    for name, value in (
        ("purchases_cents", purchases),
        ("regular_cents", regular),
        ("fuel_ml", fuel_ml),
        ("fuel_cents", fuel_cents),
        ("benefit_cents", benefit),
        ("excluded_cents", excluded),
    ):
        if value:
            fields[name] = value
    if in_campaign and campaign is not None:
        fields[campaign_field(campaign.multiplier)] = in_campaign
    if partner_id and regular + in_campaign:
        fields[PARTNER_FIELD + partner_id] = regular + in_campaign
    for name, value in groups.items():
        if value:
            fields[name] = value
    return SwipeFields(fields, tuple(codes), campaign.id if campaign is not None else "", purchases)


def contribution(swipe: SwipeLike, rules: Rules) -> Contribution:
    """The swipe's signed effect on its household-month as an ``Accumulator`` (business status
    applied later), its line codes and its bonus month."""
    effect = swipe_fields(swipe, rules)
    return Contribution(
        Month.of(swipe.occurred_at, rules.timezone),
        Accumulator.from_fields(effect.fields),
        effect.line_codes,
        effect.campaign_id,
    )


@dataclass(frozen=True, slots=True)
class BonusFigures:
    purchases_cents: int
    tier_bp: int
    base_bonus_cents: int
    fuel_bonus_cents: int
    payment_benefit_cents: int

    @property
    def total_cents(self) -> int:
        return self.base_bonus_cents + self.fuel_bonus_cents + self.payment_benefit_cents


def tier_bp(tiers: tuple[Tier, ...], purchases_cents: int) -> int:
    """Rate of the highest tier reached; 0 below the first."""
    rate = 0
    for tier in tiers:
        if tier.from_cents <= purchases_cents:
            rate = tier.bp
    return rate


def weighted_cents(acc: Accumulator) -> int:
    """N + sum of m x C over the campaign multipliers."""
    return acc.regular_cents + sum(m * c for m, c in acc.campaign_cents.items())


def compute_bonus(
    acc: Accumulator, tiers: tuple[Tier, ...], payment_benefit_bp: int, *, business: bool
) -> BonusFigures:
    if business:
        return BonusFigures(0, 0, 0, 0, 0)
    rate = tier_bp(tiers, acc.purchases_cents)
    return BonusFigures(
        purchases_cents=acc.purchases_cents,
        tier_bp=rate,
        base_bonus_cents=max(0, div_round_half_up(rate * weighted_cents(acc), 10_000)),
        fuel_bonus_cents=max(0, div_round_half_up(rate * acc.fuel_ml, 100_000)),
        payment_benefit_cents=max(
            0, div_round_half_up(payment_benefit_bp * acc.benefit_cents, 10_000)
        ),
    )


def bonus_for(acc: Accumulator, rules: Rules, co_op: str, *, business: bool) -> BonusFigures:
    return compute_bonus(acc, rules.tiers_for(co_op), rules.payment_benefit_bp, business=business)


def partner_shares(
    acc: Accumulator, rules: Rules, co_op: str, *, business: bool
) -> dict[str, tuple[int, int]]:
    """partner id -> (eligible non-fuel partner amount, its Bonus) of a household-month:
    round(``tier_bp`` x amount / 10000) with the month's tier, at least 0 (contract section
    12). This Bonus is part of the household's base bonus; the partner is invoiced for it."""
    rate = bonus_for(acc, rules, co_op, business=business).tier_bp
    return {
        partner_id: (cents, max(0, div_round_half_up(rate * cents, 10_000)))
        for partner_id, cents in sorted(acc.partner_cents.items())
    }


def explain(acc: Accumulator, rules: Rules, co_op: str, *, business: bool) -> list[str]:
    """The arithmetic behind ``bonus_for``, line by line, for people."""
    figures = bonus_for(acc, rules, co_op, business=business)
    table = rules.table_name(co_op)
    lines = [
        f"co-op {co_op}, bonus table {table!r}",
        f"swipes {acc.swipes} (returns {acc.returns}); not eligible "
        f"{format_cents(acc.excluded_cents)}",
    ]
    if business:
        lines.append("business household: no bonus")
        return lines
    lines += [
        f"eligible purchases {format_cents(acc.purchases_cents)} "
        f"(fuel {format_cents(acc.fuel_cents)}) -> tier {figures.tier_bp} bp",
        f"non-fuel outside campaigns N = {acc.regular_cents} c",
    ]
    for m, c in sorted(acc.campaign_cents.items()):
        lines.append(f"non-fuel in x{m} campaigns C = {c} c")
    terms = " + ".join(
        [str(acc.regular_cents)] + [f"{m} x {c}" for m, c in sorted(acc.campaign_cents.items())]
    )
    lines += [
        f"base bonus = round({figures.tier_bp} x ({terms}) / 10000) = {figures.base_bonus_cents} c",
        f"fuel bonus = round({figures.tier_bp} x {acc.fuel_ml} ml / 100000) = "
        f"{figures.fuel_bonus_cents} c",
        f"payment benefit = round({rules.payment_benefit_bp} x {acc.benefit_cents} / 10000) = "
        f"{figures.payment_benefit_cents} c",
        f"total = {figures.total_cents} c ({format_cents(figures.total_cents)})",
    ]
    for partner_id, (cents, bonus) in partner_shares(acc, rules, co_op, business=False).items():
        partner = rules.partners.get(partner_id)
        name = f" ({partner.name})" if partner else " (no longer in the rules)"
        lines.append(
            f"partner {partner_id}{name}: eligible non-fuel {cents} c there -> "
            f"round({figures.tier_bp} x {cents} / 10000) = {bonus} c of the base bonus, "
            "invoiced to the partner"
        )
    return lines
