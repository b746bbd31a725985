"""What-if for Bonus tables: every household-month's Bonus under the current and a candidate
rules file, and the difference per co-op, per tier band and in total. Pure and exact.

An accumulator (``models.bonus.Accumulator``) holds a household-month's sums as classified by
the rules in force when the swipes arrived: which lines were eligible, which were fuel, which
paid with a benefit method, which fell in which campaign. So it answers exactly any change of
the tier tables, of which table a co-op uses and of ``payment_benefit_bp``; a change of any
classifying rule (:data:`LINE_RULES`) needs the purchase lines themselves, which
:func:`accumulate_line` folds into accumulators again under either rules.

The tier band of a household-month is the tier it reaches under the current rules (``from
from_cents``; ``below`` the first tier). A household-month moves tier when the step it reaches
(first, second, ... tier of its co-op's table) differs between the two rules.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from models.bonus import Accumulator, BonusFigures, bonus_for
from models.rules import Rules, Tier

# Rules whose change the accumulators cannot answer (the lines were classified by them).
LINE_RULES = (
    "excluded_payment_methods",
    "excluded_product_groups",
    "fuel_product_groups",
    "payment_benefit_methods",
    "payment_benefit_excluded_product_groups",
    "campaigns",
)
# Rules that neither accumulators nor purchase lines answer here.
UNANSWERABLE_RULES = ("timezone",)
BELOW = "below first tier"


def changed_rules(current: Rules, candidate: Rules) -> list[str]:
    """Names of the Bonus rules that differ (tables, co-ops, rates, classification)."""
    names = (
        "timezone",
        "payment_benefit_bp",
        *LINE_RULES,
        "bonus_tables",
        "co_ops",
    )
    out = []
    for name in names:
        if name == "timezone":
            differs = current.timezone.key != candidate.timezone.key
        else:
            differs = getattr(current, name) != getattr(candidate, name)
        if differs:
            out.append(name)
    return out


def needs_lines(current: Rules, candidate: Rules) -> list[str]:
    """The changed rules the accumulators cannot answer."""
    return [n for n in changed_rules(current, candidate) if n in LINE_RULES]


def reached_tier(tiers: tuple[Tier, ...], purchases_cents: int) -> Tier | None:
    reached = None
    for tier in tiers:
        if tier.from_cents <= purchases_cents:
            reached = tier
    return reached


def tier_step(tiers: tuple[Tier, ...], purchases_cents: int) -> int:
    """Which tier is reached, counted from 1 (0 below the first)."""
    return sum(1 for tier in tiers if tier.from_cents <= purchases_cents)


def band_label(tier: Tier | None) -> str:
    if tier is None:
        return BELOW
    whole, cents = divmod(tier.from_cents, 100)
    return f"from {whole}.{cents:02d} € ({tier.bp} bp)"


@dataclass(frozen=True, slots=True)
class HouseholdMonth:
    """One household-month's facts: who (any stable key), which co-op, and its sums."""

    household: str
    month: str
    co_op: str
    business: bool
    accumulator: Accumulator
    # under the candidate rules, when it differs (rebuilt from lines); else ``accumulator``
    candidate_accumulator: Accumulator | None = None


@dataclass(slots=True)
class Sums:
    household_months: int = 0
    current_cents: int = 0
    candidate_cents: int = 0
    moved_up: int = 0
    moved_down: int = 0

    @property
    def difference_cents(self) -> int:
        return self.candidate_cents - self.current_cents

    def add(self, current: BonusFigures, candidate: BonusFigures, move: int) -> None:
        self.household_months += 1
        self.current_cents += current.total_cents
        self.candidate_cents += candidate.total_cents
        self.moved_up += int(move > 0)
        self.moved_down += int(move < 0)


@dataclass(slots=True)
class Simulation:
    total: Sums = field(default_factory=Sums)
    by_co_op: dict[str, Sums] = field(default_factory=dict)
    # (co_op, band label) -> sums
    by_band: dict[tuple[str, str], Sums] = field(default_factory=dict)
    moved_households: set[str] = field(default_factory=set)
    # household -> [current, candidate] cents over all its months
    per_household: dict[str, list[int]] = field(default_factory=dict)

    @property
    def households(self) -> int:
        return len(self.per_household)

    @property
    def changed(self) -> dict[str, tuple[int, int]]:
        """household -> (current, candidate) cents over its months, where they differ."""
        return {h: (a, b) for h, (a, b) in self.per_household.items() if a != b}

    def bands(self, co_op: str, current: Rules) -> list[tuple[str, Sums]]:
        """The co-op's bands in table order (only those with household-months)."""
        labels = [BELOW] + [band_label(t) for t in current.tiers_for(co_op)]
        return [(b, self.by_band[(co_op, b)]) for b in labels if (co_op, b) in self.by_band]

    def add(self, item: HouseholdMonth, current: Rules, candidate: Rules) -> None:
        """Price one household-month under both rules and add it to every sum."""
        then_acc = item.candidate_accumulator or item.accumulator
        now = bonus_for(item.accumulator, current, item.co_op, business=item.business)
        then = bonus_for(then_acc, candidate, item.co_op, business=item.business)
        tier_now, step_now, step_then = None, 0, 0
        if not item.business:
            tiers_now = current.tiers_for(item.co_op)
            tier_now = reached_tier(tiers_now, item.accumulator.purchases_cents)
            step_now = tier_step(tiers_now, item.accumulator.purchases_cents)
            step_then = tier_step(candidate.tiers_for(item.co_op), then_acc.purchases_cents)
        move = (step_then > step_now) - (step_then < step_now)
        self.total.add(now, then, move)
        self.by_co_op.setdefault(item.co_op, Sums()).add(now, then, move)
        self.by_band.setdefault((item.co_op, band_label(tier_now)), Sums()).add(now, then, move)
        if move:
            self.moved_households.add(item.household)
        sums = self.per_household.setdefault(item.household, [0, 0])
        sums[0] += now.total_cents
        sums[1] += then.total_cents


def simulate(items: Iterable[HouseholdMonth], current: Rules, candidate: Rules) -> Simulation:
    """Both rules' Bonus for every household-month of ``items``, summed."""
    result = Simulation()
    for item in items:
        result.add(item, current, candidate)
    return result


def accumulate_line(
    acc: Accumulator,
    rules: Rules,
    *,
    payment_method: str,
    product_group: str,
    store_id: str,
    occurred_at: datetime,
    amount_cents: int,
    fuel_ml: int,
) -> None:
    """Add one purchase line (returns already negative) to ``acc`` as ``rules`` classify it:
    the same rules as ``models.bonus.contribution``, for lines read back from ClickHouse."""
    eligible = (
        payment_method not in rules.excluded_payment_methods
        and product_group not in rules.excluded_product_groups
    )
    if not eligible:
        acc.excluded_cents += amount_cents
        return
    acc.purchases_cents += amount_cents
    if product_group in rules.fuel_product_groups:
        acc.fuel_cents += amount_cents
        acc.fuel_ml += fuel_ml
    else:
        campaign = rules.campaign_for(store_id, occurred_at)
        if campaign is not None:
            m = campaign.multiplier
            acc.campaign_cents[m] = acc.campaign_cents.get(m, 0) + amount_cents
        else:
            acc.regular_cents += amount_cents
    if (
        payment_method in rules.payment_benefit_methods
        and product_group not in rules.payment_benefit_excluded_product_groups
    ):
        acc.benefit_cents += amount_cents
