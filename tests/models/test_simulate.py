"""The what-if for Bonus tables (``models.simulate``), figures computed by hand."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from models.bonus import Accumulator, contribution
from models.rules import Tier, parse_rules
from models.simulate import (
    BELOW,
    HouseholdMonth,
    accumulate_line,
    band_label,
    changed_rules,
    needs_lines,
    simulate,
)
from models.swipe import parse_swipe
from stream.settings import DEFAULT_RULES
from tests.support import events

OCTOBER = datetime(2026, 10, 5, 12, 0, tzinfo=UTC)
CURRENT = parse_rules(DEFAULT_RULES.read_text())
# 200 bp -> 250 bp for the tier from 300.00 €; nothing else changes.
RAISED = parse_rules(
    DEFAULT_RULES.read_text().replace(
        "{ from_cents = 30000, bp = 200 }", "{ from_cents = 30000, bp = 250 }"
    )
)


def hm(
    household: str,
    purchases: int,
    *,
    month: str = "2026-10",
    business: bool = False,
    fuel_ml: int = 0,
    benefit: int = 0,
    co_op: str = "hok-elanto",
) -> HouseholdMonth:
    acc = Accumulator(
        purchases_cents=purchases, regular_cents=purchases, fuel_ml=fuel_ml, benefit_cents=benefit
    )
    return HouseholdMonth(household, month, co_op, business, acc)


ITEMS = [
    hm("H1", 12_000),  # 100 bp: 120
    hm("H2", 33_333),  # 200 bp: round(666.66) = 667
    hm("H2", 31_000, month="2026-09"),  # 200 bp: 620
    hm("H3", 35_000, fuel_ml=10_250, benefit=20_000),  # 200 bp: 700 + round(20.5)=21 + 100
    hm("H4", 45_000),  # 250 bp: 1125
    hm("H5", 33_000, business=True),  # business: 0
    hm("H6", 4000),  # below the first tier: 0
]


def test_the_current_rules_as_candidate_change_nothing_for_anyone() -> None:
    sim = simulate(ITEMS, CURRENT, CURRENT)
    assert sim.changed == {}
    assert sim.moved_households == set()
    assert sim.total.difference_cents == 0
    assert sim.total.current_cents == 120 + 667 + 620 + 821 + 1125
    assert all(s.difference_cents == 0 for s in sim.by_band.values())
    assert sim.households == 6


def test_raising_one_tier_changes_exactly_its_households_by_the_exact_amounts() -> None:
    sim = simulate(ITEMS, CURRENT, RAISED)
    # H2: round(250 x 33333 / 10000) = round(833.325) = 833 (was 667), and
    #     round(250 x 31000 / 10000) = 775 (was 620): 1287 -> 1608
    # H3: 250 x 35000 / 10000 = 875, fuel round(250 x 10250 / 100000) = round(25.625) = 26,
    #     benefit 100 unchanged: 821 -> 1001
    assert sim.changed == {"H2": (1287, 1608), "H3": (821, 1001)}
    assert sim.total.difference_cents == (1608 - 1287) + (1001 - 821) == 501
    band = band_label(Tier(30_000, 200))
    assert band == "from 300.00 € (200 bp)"
    assert sim.by_band[("hok-elanto", band)].difference_cents == 501
    assert sim.by_band[("hok-elanto", band)].household_months == 3
    others = [s for (_, b), s in sim.by_band.items() if b != band]
    assert all(s.difference_cents == 0 for s in others)
    assert sim.moved_households == set()  # a rate changed, no threshold
    assert sim.by_co_op["hok-elanto"].difference_cents == 501


def test_a_lower_threshold_moves_households_up_a_tier() -> None:
    lower = dataclasses.replace(
        CURRENT,
        bonus_tables={"default": (Tier(4000, 100), *CURRENT.bonus_tables["default"][1:])},
    )
    sim = simulate(ITEMS, CURRENT, lower)
    # H6 at 4000 now reaches 100 bp: 40 cents; it is the only one moving.
    assert sim.moved_households == {"H6"}
    assert (sim.total.moved_up, sim.total.moved_down) == (1, 0)
    assert sim.changed == {"H6": (0, 40)}
    assert sim.by_band[("hok-elanto", BELOW)].difference_cents == 40


def test_what_the_accumulators_cannot_answer_is_named() -> None:
    assert changed_rules(CURRENT, RAISED) == ["bonus_tables"]
    assert needs_lines(CURRENT, RAISED) == []
    more_excluded = dataclasses.replace(
        CURRENT, excluded_product_groups=CURRENT.excluded_product_groups | {"tobacco"}
    )
    assert needs_lines(CURRENT, more_excluded) == ["excluded_product_groups"]
    assert needs_lines(CURRENT, dataclasses.replace(CURRENT, campaigns=())) == ["campaigns"]
    assert needs_lines(CURRENT, dataclasses.replace(CURRENT, payment_benefit_bp=100)) == []


def test_lines_folded_again_give_the_accumulator_the_swipes_gave() -> None:
    swipes = [
        events.CONTRACT_EXAMPLE,  # in the x2 campaign, with fuel and the benefit card
        events.encode(
            events.swipe(
                "R1",
                kind="return",
                payment_method="s_etukortti_visa",
                lines=[
                    {"sku": "a", "product_group": "tobacco", "quantity": 1, "amount_cents": 900},
                    {"sku": "b", "product_group": "lottery", "quantity": 1, "amount_cents": 300},
                    {"sku": "c", "product_group": "dairy", "quantity": 1, "amount_cents": 250},
                ],
                occurred_at="2026-10-02T10:00:00+03:00",
            )
        ),
        events.encode(events.swipe("I1", payment_method="invoice")),
    ]
    for rules in (CURRENT, RAISED):
        from_swipes = Accumulator()
        from_lines = Accumulator()
        for raw in swipes:
            swipe = parse_swipe(raw)
            from_swipes.add(contribution(swipe, rules).delta)
            for line in swipe.lines:
                accumulate_line(
                    from_lines,
                    rules,
                    payment_method=swipe.payment_method,
                    product_group=line.product_group,
                    store_id=swipe.store_id,
                    occurred_at=swipe.occurred_at,
                    amount_cents=swipe.sign * line.amount_cents,
                    fuel_ml=swipe.sign * (line.fuel_ml or 0),
                )
        # swipe counts are not in lines; every money and volume sum is
        from_swipes.swipes = from_swipes.returns = 0
        assert from_lines == from_swipes
        assert from_lines.campaign_cents == {2: 398}


def test_a_changed_exclusion_priced_from_lines_under_each_rules() -> None:
    tobacco = dataclasses.replace(
        CURRENT, excluded_product_groups=CURRENT.excluded_product_groups | {"tobacco"}
    )
    now, then = Accumulator(), Accumulator()
    for group, cents in (("dairy", 28_000), ("tobacco", 4000)):
        for acc, rules in ((now, CURRENT), (then, tobacco)):
            accumulate_line(
                acc,
                rules,
                payment_method="cash",
                product_group=group,
                store_id="S1",
                occurred_at=OCTOBER,
                amount_cents=cents,
                fuel_ml=0,
            )
    item = HouseholdMonth("H1", "2026-10", "hok-elanto", False, now, then)
    sim = simulate([item], CURRENT, tobacco)
    # now 32000 at 200 bp = 640; without tobacco 28000 at 150 bp = 420; the household moves down
    assert sim.changed == {"H1": (640, 420)}
    assert (sim.total.moved_up, sim.total.moved_down) == (0, 1)


# -- properties over random household-months ---------------------------------------------------


ACCUMULATORS = st.builds(
    lambda regular, campaign, fuel_ml, benefit, fuel_cents: Accumulator(
        purchases_cents=regular + campaign + fuel_cents,
        regular_cents=regular,
        campaign_cents={2: campaign} if campaign else {},
        fuel_ml=fuel_ml,
        fuel_cents=fuel_cents,
        benefit_cents=benefit,
    ),
    st.integers(-5000, 150_000),
    st.integers(0, 20_000),
    st.integers(0, 200_000),
    st.integers(0, 100_000),
    st.integers(0, 30_000),
)
ITEMS_STRATEGY = st.lists(
    st.tuples(ACCUMULATORS, st.booleans(), st.sampled_from(["hok-elanto", "other-co-op"])),
    max_size=40,
)


def _items(drawn: list[tuple[Accumulator, bool, str]]) -> list[HouseholdMonth]:
    return [
        HouseholdMonth(f"H{n}", "2026-10", co, biz, acc) for n, (acc, biz, co) in enumerate(drawn)
    ]


def _half_up(value: Fraction) -> int:
    return int((value + Fraction(1, 2)).__floor__())


def _exact_total(acc: Accumulator, bp: int) -> int:
    """The default rules' Bonus at tier rate ``bp``, with Fractions (no integer tricks)."""
    weighted = acc.regular_cents + 2 * acc.campaign_cents.get(2, 0)
    base = max(0, _half_up(Fraction(bp * weighted, 10_000)))
    fuel = max(0, _half_up(Fraction(bp * acc.fuel_ml, 100_000)))
    benefit = max(0, _half_up(Fraction(50 * acc.benefit_cents, 10_000)))
    return base + fuel + benefit


@settings(max_examples=150, deadline=None)
@given(ITEMS_STRATEGY)
def test_the_current_rules_against_themselves_change_nobody(
    drawn: list[tuple[Accumulator, bool, str]],
) -> None:
    sim = simulate(_items(drawn), CURRENT, CURRENT)
    assert sim.changed == {}
    assert sim.total.difference_cents == 0
    assert sim.moved_households == set()


@settings(max_examples=150, deadline=None)
@given(ITEMS_STRATEGY)
def test_raising_one_tier_changes_exactly_its_households_by_the_fraction_exact_amount(
    drawn: list[tuple[Accumulator, bool, str]],
) -> None:
    sim = simulate(_items(drawn), CURRENT, RAISED)
    expected: dict[str, tuple[int, int]] = {}
    for n, (acc, business, _co_op) in enumerate(drawn):
        if business or not 30_000 <= acc.purchases_cents < 40_000:
            continue  # not in the raised tier: must not change
        before, after = _exact_total(acc, 200), _exact_total(acc, 250)
        if before != after:
            expected[f"H{n}"] = (before, after)
    assert sim.changed == expected
    assert sim.total.difference_cents == sum(b - a for a, b in expected.values())
    assert sim.moved_households == set()
