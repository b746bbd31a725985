"""The monthly Bonus (contract section 4), from swipes through contributions to figures.

Every expected figure below is worked out by hand from the contract's formulas; the comments
show the arithmetic.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from models.bonus import (
    Accumulator,
    BonusFigures,
    bonus_for,
    compute_bonus,
    contribution,
    explain,
    tier_bp,
)
from models.errors import InvalidEvent
from models.months import Month
from models.rules import Rules, Tier, load_rules, parse_rules
from models.swipe import Swipe, parse_swipe

DEFAULT_RULES = Path(__file__).resolve().parents[2] / "stream" / "rules.default.toml"
RULES = load_rules(DEFAULT_RULES)
IN_NOVEMBER = "2026-11-05T12:00:00+02:00"
CAMPAIGN_START = "2026-11-16T00:00:00+02:00"
CAMPAIGN_END = "2026-11-23T00:00:00+02:00"

# The contract's tier table, typed from section 4.
CONTRACT_TIERS = [
    (5000, 100),
    (20000, 150),
    (30000, 200),
    (40000, 250),
    (50000, 300),
    (60000, 350),
    (70000, 400),
    (80000, 450),
    (90000, 500),
]

_ids = itertools.count(1)


def line(group: str, amount: int, ml: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "sku": f"SKU-{group}",
        "product_group": group,
        "quantity": 1,
        "amount_cents": amount,
    }
    if ml is not None:
        out["fuel_ml"] = ml
    return out


def swipe(
    *lines: dict[str, Any],
    kind: str = "purchase",
    payment: str = "cash",
    store: str = "S0001",
    at: str = IN_NOVEMBER,
) -> Swipe:
    obj = {
        "schema": "swipe/1",
        "event_id": f"EV-{next(_ids)}",
        "kind": kind,
        "card": "6390001234567890",
        "store_id": store,
        "occurred_at": at,
        "currency": "EUR",
        "payment_method": payment,
        "total_cents": sum(item["amount_cents"] for item in lines),
        "lines": list(lines),
    }
    return parse_swipe(json.dumps(obj).encode())


def month_of(*swipes: Swipe, rules: Rules = RULES) -> Accumulator:
    """The household-month accumulator of ``swipes`` (all in one month)."""
    acc = Accumulator()
    months = set()
    for s in swipes:
        c = contribution(s, rules)
        months.add(c.month)
        acc.add(c.delta)
    assert len(months) <= 1
    return acc


def figures(
    acc: Accumulator, *, rules: Rules = RULES, co_op: str = "hok-elanto", business: bool = False
) -> BonusFigures:
    return bonus_for(acc, rules, co_op, business=business)


def as_tuple(f: BonusFigures) -> tuple[int, int, int, int, int, int]:
    return (
        f.purchases_cents,
        f.tier_bp,
        f.base_bonus_cents,
        f.fuel_bonus_cents,
        f.payment_benefit_cents,
        f.total_cents,
    )


def worked_example() -> list[Swipe]:
    """39301 non-fuel cents and 1949 cents / 10250 ml of fuel; 20250 paid with the card."""
    return [
        # 18301 + 1949 = 20250 cents with the S-Etukortti Visa.
        swipe(line("dairy", 18301), line("fuel", 1949, 10250), payment="s_etukortti_visa"),
        # 18301 + 21000 = 39301 non-fuel cents in all.
        swipe(line("bread", 9000), line("meat", 12000), payment="cash"),
    ]


# --- the contract's worked example -------------------------------------------------------


def test_worked_example_contributions() -> None:
    first, second = (contribution(s, RULES) for s in worked_example())
    assert first.month == second.month == Month(2026, 11)
    assert first.delta.fields() == {
        "purchases_cents": 20250,
        "regular_cents": 18301,
        "fuel_ml": 10250,
        "fuel_cents": 1949,
        "benefit_cents": 20250,
        "swipes": 1,
    }
    assert second.delta.fields() == {"purchases_cents": 21000, "regular_cents": 21000, "swipes": 1}
    assert [r.eligible for r in first.lines] == [True, True]
    assert [r.campaign_id for r in first.lines + second.lines] == ["", "", "", ""]


def test_worked_example_bonus() -> None:
    acc = month_of(*worked_example())
    # purchases 39301 + 1949 = 41250 -> tier 250 bp (40000 <= 41250 < 50000)
    # base    = round(250 x 39301 / 10000)  = round(982.525) = 983
    # fuel    = round(250 x 10250 / 100000) = round(25.625)  = 26
    # benefit = round(50 x 20250 / 10000)   = round(101.25)  = 101
    result = compute_bonus(acc, RULES.tiers_for("hok-elanto"), 50, business=False)
    assert as_tuple(result) == (41250, 250, 983, 26, 101, 1110)
    assert result == figures(acc)


def test_worked_example_in_any_order_and_split_differently() -> None:
    split = [
        swipe(line("fuel", 1949, 10250), payment="s_etukortti_visa"),
        swipe(line("meat", 12000)),
        swipe(line("dairy", 18301), payment="s_etukortti_visa"),
        swipe(line("bread", 9000), payment="mobile"),
    ]
    assert as_tuple(figures(month_of(*reversed(split)))) == (41250, 250, 983, 26, 101, 1110)


def test_business_household_earns_nothing() -> None:
    acc = month_of(*worked_example())
    assert figures(acc, business=True) == BonusFigures(0, 0, 0, 0, 0)
    assert figures(acc, business=True).total_cents == 0


# --- eligibility -------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["invoice", "company_card", "benefit_voucher"])
def test_excluded_payment_method(method: str) -> None:
    c = contribution(swipe(line("dairy", 30000), line("fuel", 2000, 9000), payment=method), RULES)
    assert [r.eligible for r in c.lines] == [False, False]
    assert c.delta.fields() == {"excluded_cents": 32000, "swipes": 1}
    assert as_tuple(figures(c.delta)) == (0, 0, 0, 0, 0, 0)


@pytest.mark.parametrize("method", ["s_etukortti_visa", "payment_card", "cash", "mobile", "other"])
def test_other_payment_methods_are_eligible(method: str) -> None:
    acc = month_of(swipe(line("dairy", 30000), payment=method))
    # 30000 -> tier 200; base = 200 x 30000 / 10000 = 600
    assert (acc.purchases_cents, figures(acc).base_bonus_cents) == (30000, 600)


@pytest.mark.parametrize("group", ["gift_card", "lottery"])
def test_excluded_product_group(group: str) -> None:
    c = contribution(swipe(line("dairy", 6000), line(group, 50000)), RULES)
    assert [r.eligible for r in c.lines] == [True, False]
    assert (c.delta.purchases_cents, c.delta.excluded_cents) == (6000, 50000)
    # 6000 -> tier 100 (the 50000 would have made it 350); base = 100 x 6000 / 10000 = 60
    assert as_tuple(figures(c.delta)) == (6000, 100, 60, 0, 0, 60)


def test_fuel_counts_toward_the_tier_but_not_the_base() -> None:
    acc = month_of(swipe(line("dairy", 4000), line("fuel", 1000, 50000)))
    # purchases 5000 -> tier 100, reached only thanks to the fuel
    # base = 100 x 4000 / 10000 = 40; fuel = 100 x 50000 / 100000 = 50
    assert as_tuple(figures(acc)) == (5000, 100, 40, 50, 0, 90)
    without_fuel = month_of(swipe(line("dairy", 4000)))
    assert as_tuple(figures(without_fuel)) == (4000, 0, 0, 0, 0, 0)


@pytest.mark.parametrize(
    ("non_fuel", "ml", "tier", "fuel_bonus"),
    [
        (5000, 1000, 100, 1),  # 1 l at 1 c/l
        (40000, 10000, 250, 25),  # 10 l at 2.5 c/l
        (90000, 1000, 500, 5),  # 1 l at 5 c/l
        (90000, 123456, 500, 617),  # 123.456 l x 5 c = 617.28
        (90000, 0, 500, 0),
    ],
)
def test_fuel_bonus_is_the_tier_percentage_as_cents_per_litre(
    non_fuel: int, ml: int, tier: int, fuel_bonus: int
) -> None:
    acc = month_of(swipe(line("dairy", non_fuel), line("fuel", 0, ml)))
    result = figures(acc)
    assert (result.tier_bp, result.fuel_bonus_cents) == (tier, fuel_bonus)


def test_a_fuel_line_without_fuel_ml_has_no_litres() -> None:
    acc = month_of(swipe(line("dairy", 5000), line("fuel", 3000)))
    assert (acc.purchases_cents, acc.fuel_cents, acc.fuel_ml) == (8000, 3000, 0)
    assert figures(acc).fuel_bonus_cents == 0


def test_fuel_ml_on_a_non_fuel_line_is_an_invalid_event() -> None:
    s = swipe(line("dairy", 100, 5000))
    with pytest.raises(InvalidEvent) as info:
        contribution(s, RULES)
    assert info.value.reason == "invalid_field"
    assert "lines[0]" in info.value.detail


def test_fuel_groups_come_from_the_rules() -> None:
    text = DEFAULT_RULES.read_text().replace(
        'fuel_product_groups = ["fuel"]', 'fuel_product_groups = ["fuel", "ev_charging"]'
    )
    rules = parse_rules(text)
    acc = month_of(swipe(line("dairy", 5000), line("ev_charging", 700, 3000)), rules=rules)
    # tier 100 on 5700; fuel = 100 x 3000 / 100000 = 3; base = 100 x 5000 / 10000 = 50
    assert as_tuple(figures(acc, rules=rules)) == (5700, 100, 50, 3, 0, 53)


def test_payment_benefit_excludes_tobacco_alcohol_and_lottery() -> None:
    lines = [
        line("dairy", 10000),
        line("tobacco", 3000),
        line("alcohol", 2000),
        line("lottery", 1000),
        line("fuel", 4000, 20000),
    ]
    acc = month_of(swipe(*lines, payment="s_etukortti_visa"))
    # eligible: everything but lottery -> purchases 19000 -> tier 100
    # P = 10000 + 4000 (fuel included, tobacco/alcohol/lottery not) = 14000
    # base = 100 x 15000 / 10000 = 150; fuel = 100 x 20000 / 100000 = 20
    # benefit = 50 x 14000 / 10000 = 70
    assert acc.benefit_cents == 14000
    assert acc.excluded_cents == 1000
    assert as_tuple(figures(acc)) == (19000, 100, 150, 20, 70, 240)
    # The same purchase with another card earns no payment benefit.
    other = month_of(swipe(*lines, payment="payment_card"))
    assert as_tuple(figures(other)) == (19000, 100, 150, 20, 0, 170)


def test_payment_benefit_needs_an_eligible_line() -> None:
    text = DEFAULT_RULES.read_text().replace(
        'payment_benefit_methods = ["s_etukortti_visa"]',
        'payment_benefit_methods = ["s_etukortti_visa", "invoice"]',
    )
    rules = parse_rules(text)
    acc = month_of(swipe(line("dairy", 20000), payment="invoice"), rules=rules)
    assert (acc.purchases_cents, acc.benefit_cents, acc.excluded_cents) == (0, 0, 20000)


def test_payment_benefit_needs_no_tier() -> None:
    acc = month_of(swipe(line("dairy", 1000), payment="s_etukortti_visa"))
    # tier 0 (1000 < 5000) but benefit = 50 x 1000 / 10000 = 5
    assert as_tuple(figures(acc)) == (1000, 0, 0, 0, 5, 5)


# --- campaigns ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("store", "at", "in_campaign"),
    [
        ("S0042", CAMPAIGN_START, True),  # start inclusive
        ("S0042", "2026-11-15T22:00:00Z", True),  # the same instant in UTC
        ("S0042", "2026-11-15T23:59:59.999999+02:00", False),
        ("S0042", "2026-11-22T23:59:59.999999+02:00", True),
        ("S0042", CAMPAIGN_END, False),  # end exclusive
        ("S0042", "2026-11-22T22:00:00Z", False),
        ("S0043", "2026-11-19T12:00:00+02:00", False),  # store not in the list
        ("S0042", "2026-11-19T12:00:00+02:00", True),
    ],
)
def test_campaign_window_and_store(store: str, at: str, in_campaign: bool) -> None:
    c = contribution(swipe(line("dairy", 10000), store=store, at=at), RULES)
    if in_campaign:
        assert c.lines[0].campaign_id == "double-week-47"
        assert (c.delta.campaign_cents, c.delta.regular_cents) == ({2: 10000}, 0)
    else:
        assert c.lines[0].campaign_id == ""
        assert (c.delta.campaign_cents, c.delta.regular_cents) == ({}, 10000)


def test_campaign_multiplies_the_base_only() -> None:
    acc = month_of(
        swipe(line("dairy", 10000), line("fuel", 0, 20000), store="S0042", at=CAMPAIGN_START),
        swipe(line("dairy", 20000), store="S0001", at="2026-11-17T09:00:00+02:00"),
    )
    # purchases 30000 (counted once) -> tier 200
    # base = 200 x (20000 + 2 x 10000) / 10000 = 800 (600 without the campaign)
    # fuel is never multiplied: 200 x 20000 / 100000 = 40
    assert acc.campaign_cents == {2: 10000}
    assert as_tuple(figures(acc)) == (30000, 200, 800, 40, 0, 840)


def test_campaign_lines_still_earn_payment_benefit() -> None:
    acc = month_of(
        swipe(line("dairy", 10000), store="S0042", at=CAMPAIGN_START, payment="s_etukortti_visa")
    )
    # tier 100; base = 100 x 2 x 10000 / 10000 = 200; benefit = 50 x 10000 / 10000 = 50
    assert as_tuple(figures(acc)) == (10000, 100, 200, 0, 50, 250)


def test_fuel_and_ineligible_lines_in_a_campaign_store_are_not_campaign_lines() -> None:
    c = contribution(
        swipe(
            line("fuel", 5000, 20000),
            line("gift_card", 2500),
            line("dairy", 100),
            store="S0042",
            at=CAMPAIGN_START,
        ),
        RULES,
    )
    assert [(r.eligible, r.campaign_id) for r in c.lines] == [
        (True, ""),
        (False, ""),
        (True, "double-week-47"),
    ]
    assert c.delta.campaign_cents == {2: 100}
    invoiced = contribution(
        swipe(line("dairy", 100), store="S0042", at=CAMPAIGN_START, payment="invoice"), RULES
    )
    assert [(r.eligible, r.campaign_id) for r in invoiced.lines] == [(False, "")]
    assert invoiced.delta.campaign_cents == {}


MULTI = """
[[campaigns]]
id = "x3"
multiplier = 3
store_ids = ["S0042", "S0007"]
starts_at = "2026-11-20T00:00:00+02:00"
ends_at = "2026-11-30T00:00:00+02:00"

[[campaigns]]
id = "x5-elsewhere"
multiplier = 5
store_ids = ["S0099"]
starts_at = "2026-11-01T00:00:00+02:00"
ends_at = "2026-12-01T00:00:00+02:00"
"""
MULTI_RULES = parse_rules(DEFAULT_RULES.read_text() + MULTI)


def test_the_largest_multiplier_wins() -> None:
    both = swipe(line("dairy", 10000), store="S0042", at="2026-11-21T12:00:00+02:00")
    c = contribution(both, MULTI_RULES)
    assert c.lines[0].campaign_id == "x3"
    assert c.delta.campaign_cents == {3: 10000}
    # tier 100; base = 100 x 3 x 10000 / 10000 = 300 (not 200 for x2, not 500 for x5)
    assert figures(c.delta, rules=MULTI_RULES).base_bonus_cents == 300


def test_several_multipliers_in_one_month() -> None:
    acc = month_of(
        swipe(line("dairy", 10000), store="S0042", at="2026-11-17T12:00:00+02:00"),  # x2
        swipe(line("dairy", 10000), store="S0007", at="2026-11-25T12:00:00+02:00"),  # x3
        swipe(line("dairy", 10000), store="S0099", at="2026-11-02T12:00:00+02:00"),  # x5
        swipe(line("dairy", 10000), store="S0007", at="2026-11-17T12:00:00+02:00"),  # none
        rules=MULTI_RULES,
    )
    assert acc.campaign_cents == {2: 10000, 3: 10000, 5: 10000}
    assert acc.regular_cents == 10000
    # purchases 40000 -> tier 250; base = 250 x (10000 + 20000 + 30000 + 50000) / 10000 = 2750
    assert as_tuple(figures(acc, rules=MULTI_RULES)) == (40000, 250, 2750, 0, 0, 2750)


# --- returns -----------------------------------------------------------------------------


def test_a_return_subtracts_what_a_purchase_adds() -> None:
    lines = [line("dairy", 3000), line("fuel", 2000, 8000), line("gift_card", 500)]
    bought = contribution(swipe(*lines, payment="s_etukortti_visa"), RULES).delta
    returned = contribution(swipe(*lines, payment="s_etukortti_visa", kind="return"), RULES).delta
    assert returned.returns == 1
    assert bought.returns == 0
    for name in ("purchases_cents", "regular_cents", "fuel_ml", "fuel_cents", "benefit_cents"):
        assert getattr(returned, name) == -getattr(bought, name) != 0
    assert returned.excluded_cents == -500
    acc = Accumulator()
    acc.add(bought)
    acc.add(returned)
    assert acc.fields() == {"swipes": 2, "returns": 1}


def test_a_month_of_only_returns_earns_nothing() -> None:
    acc = month_of(
        swipe(
            line("dairy", 10000),
            line("fuel", 1500, 10000),
            kind="return",
            payment="s_etukortti_visa",
        ),
        swipe(line("dairy", 5000), kind="return", store="S0042", at=CAMPAIGN_START),
    )
    assert acc.campaign_cents == {2: -5000}
    assert as_tuple(figures(acc)) == (-16500, 0, 0, 0, 0, 0)


def test_negative_purchases_have_tier_zero() -> None:
    acc = month_of(swipe(line("dairy", 5000)), swipe(line("dairy", 6000), kind="return"))
    assert as_tuple(figures(acc)) == (-1000, 0, 0, 0, 0, 0)


def test_a_negative_fuel_component_is_clamped_alone() -> None:
    acc = month_of(
        swipe(line("dairy", 60000)),
        swipe(line("fuel", 1500, 10000), kind="return"),
    )
    # purchases 58500 -> tier 300; base = 300 x 60000 / 10000 = 1800
    # fuel = round(300 x -10000 / 100000) = -30 -> 0
    assert as_tuple(figures(acc)) == (58500, 300, 1800, 0, 0, 1800)


def test_a_negative_payment_benefit_is_clamped_alone() -> None:
    acc = month_of(
        swipe(line("dairy", 60000), payment="cash"),
        swipe(line("dairy", 2000), kind="return", payment="s_etukortti_visa"),
    )
    # purchases 58000 -> tier 300; base = 300 x 58000 / 10000 = 1740
    # benefit = round(50 x -2000 / 10000) = -10 -> 0
    assert as_tuple(figures(acc)) == (58000, 300, 1740, 0, 0, 1740)


def test_a_negative_base_is_clamped_alone() -> None:
    acc = month_of(
        swipe(line("fuel", 60000, 300000)),
        swipe(line("dairy", 1000), kind="return"),
    )
    # purchases 59000 -> tier 300; base = round(300 x -1000 / 10000) = -30 -> 0
    # fuel = 300 x 300000 / 100000 = 900
    assert as_tuple(figures(acc)) == (59000, 300, 0, 900, 0, 900)


def test_a_return_in_the_campaign_takes_back_the_multiplied_amount() -> None:
    acc = month_of(
        swipe(line("dairy", 10000), store="S0042", at=CAMPAIGN_START),
        swipe(line("dairy", 30000)),
        swipe(line("dairy", 4000), kind="return", store="S0042", at="2026-11-20T10:00:00+02:00"),
    )
    # purchases 36000 -> tier 200; base = 200 x (30000 + 2 x 6000) / 10000 = 840
    assert as_tuple(figures(acc)) == (36000, 200, 840, 0, 0, 840)


# --- rounding ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "base"),
    [
        (5050, 51),  # 100 x 5050 / 10000 = 50.5 -> 51 (half-even would give 50)
        (5250, 53),  # 52.5 -> 53 (half-even: 52)
        (5249, 52),  # 52.49
        (5251, 53),  # 52.51
        (20100, 302),  # 150 x 20100 / 10000 = 301.5 -> 302
        (40500, 1013),  # 250 x 40500 / 10000 = 1012.5 -> 1013
        (40499, 1012),  # 1012.475
    ],
)
def test_base_rounds_half_up(amount: int, base: int) -> None:
    assert figures(month_of(swipe(line("dairy", amount)))).base_bonus_cents == base


@pytest.mark.parametrize(
    ("ml", "fuel"),
    [(500, 1), (1500, 2), (2500, 3), (2499, 2), (499, 0)],  # x 100 / 100000: 0.5, 1.5, 2.5, ...
)
def test_fuel_rounds_half_up(ml: int, fuel: int) -> None:
    acc = month_of(swipe(line("dairy", 5000), line("fuel", 0, ml)))
    assert figures(acc).tier_bp == 100
    assert figures(acc).fuel_bonus_cents == fuel


@pytest.mark.parametrize(
    ("paid", "benefit"),
    [(100, 1), (500, 3), (1500, 8), (499, 2), (99, 0)],  # x 50 / 10000: 0.5, 2.5, 7.5, ...
)
def test_payment_benefit_rounds_half_up(paid: int, benefit: int) -> None:
    acc = month_of(swipe(line("dairy", paid), payment="s_etukortti_visa"))
    assert figures(acc).payment_benefit_cents == benefit


def test_rounding_happens_once_per_month_not_per_swipe() -> None:
    halves = [swipe(line("dairy", 2525)), swipe(line("dairy", 2525))]
    # month: 100 x 5050 / 10000 = 50.5 -> 51; per swipe it would be 25 + 25 = 50
    assert figures(month_of(*halves)).base_bonus_cents == 51
    benefit = [swipe(line("dairy", 50), payment="s_etukortti_visa") for _ in range(3)]
    # month: 50 x 150 / 10000 = 0.75 -> 1; per swipe 0.25 each would round to 0
    assert figures(month_of(*benefit)).payment_benefit_cents == 1


# --- tiers -------------------------------------------------------------------------------


@pytest.mark.parametrize("index", range(len(CONTRACT_TIERS)))
def test_tier_boundaries(index: int) -> None:
    start, bp = CONTRACT_TIERS[index]
    below = CONTRACT_TIERS[index - 1][1] if index else 0
    assert figures(month_of(swipe(line("dairy", start)))).tier_bp == bp
    assert figures(month_of(swipe(line("dairy", start - 1)))).tier_bp == below
    assert figures(month_of(swipe(line("dairy", start + 1)))).tier_bp == bp


@pytest.mark.parametrize(
    ("purchases", "bp"),
    [(0, 0), (1, 0), (-5000, 0), (4999, 0), (10**9, 500), (89999, 450), (90000, 500)],
)
def test_tier_bp(purchases: int, bp: int) -> None:
    tiers = tuple(Tier(start, rate) for start, rate in CONTRACT_TIERS)
    assert tier_bp(tiers, purchases) == bp


def test_tier_bp_without_tiers_and_from_zero() -> None:
    assert tier_bp((), 10**6) == 0
    assert tier_bp((Tier(0, 75),), 0) == 75
    assert tier_bp((Tier(0, 75),), -1) == 0


CO_OP_TABLES = """
[bonus_tables.arina]
tiers = [ { from_cents = 0, bp = 300 }, { from_cents = 10000, bp = 600 } ]
"""
CO_OP_RULES = parse_rules(
    DEFAULT_RULES.read_text().replace(
        '"hok-elanto" = "default"', '"hok-elanto" = "default"\n"osuuskauppa-arina" = "arina"'
    )
    + CO_OP_TABLES
)


@pytest.mark.parametrize(
    ("co_op", "amount", "tier", "base"),
    [
        ("hok-elanto", 3000, 0, 0),  # default: below 5000
        ("osuuskauppa-arina", 3000, 300, 90),  # arina: 300 x 3000 / 10000
        ("osuuskauppa-arina", 12000, 600, 720),  # 600 x 12000 / 10000
        ("hok-elanto", 12000, 100, 120),
        ("pohjolan-osuuskauppa", 12000, 100, 120),  # unknown co-op: default table
        ("", 3000, 0, 0),
    ],
)
def test_each_co_op_uses_its_own_table(co_op: str, amount: int, tier: int, base: int) -> None:
    acc = month_of(swipe(line("dairy", amount)), rules=CO_OP_RULES)
    result = figures(acc, rules=CO_OP_RULES, co_op=co_op)
    assert (result.tier_bp, result.base_bonus_cents) == (tier, base)


# --- months ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "month"),
    [
        ("2026-11-30T23:59:59+02:00", Month(2026, 11)),
        ("2026-11-30T22:00:00Z", Month(2026, 12)),
        ("2026-11-30T22:30:00Z", Month(2026, 12)),
        ("2026-11-30T21:59:59Z", Month(2026, 11)),
        ("2026-03-31T21:00:00Z", Month(2026, 4)),
        ("2026-03-31T20:59:59Z", Month(2026, 3)),
    ],
)
def test_the_contribution_month_is_the_helsinki_month(at: str, month: Month) -> None:
    assert contribution(swipe(line("dairy", 1), at=at), RULES).month == month


# --- the accumulator ---------------------------------------------------------------------


def campaign_month() -> Accumulator:
    return month_of(
        *worked_example(),
        swipe(line("dairy", 10000), store="S0042", at="2026-11-17T12:00:00+02:00"),
        swipe(line("dairy", 7000), store="S0007", at="2026-11-25T12:00:00+02:00"),
        swipe(line("dairy", 1000), store="S0007", at="2026-11-26T12:00:00+02:00", kind="return"),
        swipe(line("gift_card", 2500)),
        rules=MULTI_RULES,
    )


def test_fields_are_the_non_zero_sums() -> None:
    acc = campaign_month()
    assert acc.fields() == {
        "purchases_cents": 41250 + 10000 + 7000 - 1000,
        "regular_cents": 39301,
        "campaign_x2_cents": 10000,
        "campaign_x3_cents": 6000,
        "fuel_ml": 10250,
        "fuel_cents": 1949,
        "benefit_cents": 20250,
        "excluded_cents": 2500,
        "swipes": 6,
        "returns": 1,
    }
    assert Accumulator().fields() == {}


def test_fields_round_trip_through_redis_shapes() -> None:
    acc = campaign_month()
    fields = acc.fields()
    assert Accumulator.from_fields(fields) == acc
    # redis-py hands back bytes keys and values (the annotation only names str keys).
    as_bytes: dict[Any, Any] = {k.encode(): str(v).encode() for k, v in fields.items()}
    assert Accumulator.from_fields(as_bytes) == acc
    as_text = {k: str(v) for k, v in fields.items()}
    assert Accumulator.from_fields(as_text) == acc
    assert figures(Accumulator.from_fields(as_bytes), rules=MULTI_RULES) == figures(
        acc, rules=MULTI_RULES
    )


def test_from_fields_ignores_unknown_fields() -> None:
    acc = Accumulator.from_fields({"purchases_cents": "5", "legacy": "7", "campaign_xy_cents": 1})
    assert acc == Accumulator(purchases_cents=5)


def test_from_fields_reads_negative_sums() -> None:
    raw: dict[Any, Any] = {b"regular_cents": b"-250", b"campaign_x2_cents": b"-100"}
    acc = Accumulator.from_fields(raw)
    assert (acc.regular_cents, acc.campaign_cents) == (-250, {2: -100})


def test_add_merges_campaign_multipliers() -> None:
    acc = Accumulator(regular_cents=1, campaign_cents={2: 10})
    acc.add(Accumulator(regular_cents=2, campaign_cents={2: 5, 3: 7}, swipes=1))
    assert acc == Accumulator(regular_cents=3, campaign_cents={2: 15, 3: 7}, swipes=1)


# --- explain -----------------------------------------------------------------------------


def test_explain_shows_the_arithmetic() -> None:
    text = "\n".join(explain(month_of(*worked_example()), RULES, "hok-elanto", business=False))
    for fragment in [
        "hok-elanto",
        "'default'",
        "412.50 €",  # purchases
        "19.49 €",  # of which fuel
        "250 bp",
        "39301",
        "10250",
        "20250",
        "= 983 c",
        "= 26 c",
        "= 101 c",
        "1110 c",
        "11.10 €",
    ]:
        assert fragment in text, fragment


def test_explain_shows_campaign_terms_and_exclusions() -> None:
    acc = month_of(
        swipe(line("dairy", 10000), store="S0042", at=CAMPAIGN_START),
        swipe(line("dairy", 20000), line("lottery", 1234)),
    )
    text = "\n".join(explain(acc, RULES, "hok-elanto", business=False))
    assert "x2" in text
    assert "20000 + 2 x 10000" in text
    assert "12.34 €" in text  # not eligible
    assert "= 800 c" in text  # 200 x 40000 / 10000


def test_explain_for_a_business_household() -> None:
    lines = explain(month_of(*worked_example()), RULES, "hok-elanto", business=True)
    assert any("business" in line for line in lines)
    assert not any("total" in line for line in lines)
