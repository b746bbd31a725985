"""Property tests of the Bonus arithmetic against a deliberately simple reference.

The reference below is written from the contract's text (section 4), not from models/bonus.py:
it walks every line of every (deduplicated) swipe of a household-month, decides eligibility,
sums N, C per multiplier, F, P and the purchases, then applies the formulas with exact
``Fraction`` arithmetic and half up rounding, ``floor(x + 1/2)``, clamped at zero.

The rules both sides use are defined once, as plain data, and rendered to TOML for models/.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from models.bonus import Accumulator, BonusFigures, compute_bonus, contribution, swipe_fields
from models.insights import group_fields
from models.money import div_round_half_up
from models.months import Month
from models.payout import PaidSoFar, Payout, plan_payout
from models.rules import parse_rules
from models.swipe import decode_swipe, parse_swipe

# --- the rules, as data ------------------------------------------------------------------

TIMEZONE = "Europe/Helsinki"
BENEFIT_BP = 50
BENEFIT_METHODS = ["s_etukortti_visa"]
BENEFIT_EXCLUDED_GROUPS = ["tobacco", "alcohol", "lottery"]
EXCLUDED_METHODS = ["invoice", "company_card", "benefit_voucher"]
EXCLUDED_GROUPS = ["gift_card", "lottery"]
FUEL_GROUPS = ["fuel", "ev_charging"]
TABLES = {
    "default": [
        (5000, 100),
        (20000, 150),
        (30000, 200),
        (40000, 250),
        (50000, 300),
        (60000, 350),
        (70000, 400),
        (80000, 450),
        (90000, 500),
    ],
    "arina": [(0, 300), (10000, 600), (25000, 700)],
}
CO_OPS = {"hok-elanto": "default", "osuuskauppa-arina": "arina"}
# (id, multiplier, stores, starts_at inclusive, ends_at exclusive)
CAMPAIGNS = [
    ("double-week-47", 2, ["S0042"], "2026-11-16T00:00:00+02:00", "2026-11-23T00:00:00+02:00"),
    ("triple", 3, ["S0042", "S0007"], "2026-11-20T00:00:00+02:00", "2026-11-30T00:00:00+02:00"),
    ("night", 4, ["S0007"], "2026-11-30T18:00:00+02:00", "2026-12-01T06:00:00+02:00"),
]


def _toml_list(items: Iterable[str]) -> str:
    return "[" + ", ".join(json.dumps(item) for item in items) + "]"


def rules_toml() -> str:
    out = [
        f"timezone = {json.dumps(TIMEZONE)}",
        f"payment_benefit_bp = {BENEFIT_BP}",
        f"payment_benefit_methods = {_toml_list(BENEFIT_METHODS)}",
        f"payment_benefit_excluded_product_groups = {_toml_list(BENEFIT_EXCLUDED_GROUPS)}",
        f"excluded_payment_methods = {_toml_list(EXCLUDED_METHODS)}",
        f"excluded_product_groups = {_toml_list(EXCLUDED_GROUPS)}",
        f"fuel_product_groups = {_toml_list(FUEL_GROUPS)}",
    ]
    for name, tiers in TABLES.items():
        rows = ", ".join(f"{{ from_cents = {f}, bp = {bp} }}" for f, bp in tiers)
        out += [f"[bonus_tables.{name}]", f"tiers = [ {rows} ]"]
    out.append("[co_ops]")
    out += [f"{json.dumps(co_op)} = {json.dumps(table)}" for co_op, table in CO_OPS.items()]
    for cid, multiplier, stores, starts, ends in CAMPAIGNS:
        out += [
            "[[campaigns]]",
            f"id = {json.dumps(cid)}",
            f"multiplier = {multiplier}",
            f"store_ids = {_toml_list(stores)}",
            f"starts_at = {json.dumps(starts)}",
            f"ends_at = {json.dumps(ends)}",
        ]
    return "\n".join(out) + "\n"


RULES = parse_rules(rules_toml(), "properties.toml")
ZONE = ZoneInfo(TIMEZONE)

# --- the reference -----------------------------------------------------------------------


def half_up(x: Fraction) -> int:
    return math.floor(x + Fraction(1, 2))


def reference_month(obj: dict[str, Any]) -> tuple[int, int]:
    local = datetime.fromisoformat(obj["occurred_at"]).astimezone(ZONE)
    return (local.year, local.month)


WINDOWS = [
    (multiplier, stores, datetime.fromisoformat(starts), datetime.fromisoformat(ends))
    for _, multiplier, stores, starts, ends in CAMPAIGNS
]


def reference_multiplier(obj: dict[str, Any]) -> int | None:
    """The largest multiplier of the campaigns whose store and window hold the swipe."""
    at = datetime.fromisoformat(obj["occurred_at"])
    applying = [
        multiplier
        for multiplier, stores, starts, ends in WINDOWS
        if obj["store_id"] in stores and starts <= at < ends
    ]
    return max(applying) if applying else None


def reference_bonus(
    swipes: Iterable[dict[str, Any]], month: tuple[int, int], *, co_op: str, business: bool
) -> tuple[int, int, int, int, int, int]:
    """(purchases, tier, base, fuel, benefit, total) of one household-month."""
    if business:
        # "Business households earn no bonus" (section 3): no line is eligible, and no tier is
        # reported either, even where a table starts at from_cents = 0.
        return (0, 0, 0, 0, 0, 0)
    unique: dict[str, dict[str, Any]] = {}
    for obj in swipes:
        unique.setdefault(obj["event_id"], obj)
    purchases = n = f = p = 0
    c: dict[int, int] = {}
    for obj in unique.values():
        if reference_month(obj) != month:
            continue
        sign = -1 if obj["kind"] == "return" else 1
        multiplier = reference_multiplier(obj)
        for line in obj["lines"]:
            group = line["product_group"]
            eligible = (
                obj["payment_method"] not in EXCLUDED_METHODS and group not in EXCLUDED_GROUPS
            )
            if not eligible:
                continue
            amount = sign * line["amount_cents"]
            purchases += amount
            if group in FUEL_GROUPS:
                f += sign * line.get("fuel_ml", 0)
            elif multiplier is not None:
                c[multiplier] = c.get(multiplier, 0) + amount
            else:
                n += amount
            if obj["payment_method"] in BENEFIT_METHODS and group not in BENEFIT_EXCLUDED_GROUPS:
                p += amount
    table = TABLES[CO_OPS.get(co_op, "default")]
    reached = [(start, bp) for start, bp in table if start <= purchases]
    tier = max(reached)[1] if reached else 0
    weighted = n + sum(m * amount for m, amount in c.items())
    base = max(0, half_up(Fraction(tier * weighted, 10000)))
    fuel = max(0, half_up(Fraction(tier * f, 100000)))
    benefit = max(0, half_up(Fraction(BENEFIT_BP * p, 10000)))
    return (purchases, tier, base, fuel, benefit, base + fuel + benefit)


# --- generators --------------------------------------------------------------------------

ANCHORS = [datetime.fromisoformat(c[3]) for c in CAMPAIGNS] + [
    datetime.fromisoformat(c[4]) for c in CAMPAIGNS
]
ANCHORS += [
    datetime.fromisoformat("2026-10-01T00:00:00+03:00"),
    datetime.fromisoformat("2026-11-01T00:00:00+02:00"),
    datetime.fromisoformat("2026-12-01T00:00:00+02:00"),
    datetime.fromisoformat("2026-11-10T12:00:00+02:00"),
]
OFFSETS = [timezone(timedelta(minutes=m)) for m in (0, 60, 120, 180, -300, 345)]
GROUPS = [
    "dairy",
    "bread",
    "meat",
    "fuel",
    "ev_charging",
    "gift_card",
    "lottery",
    "tobacco",
    "alcohol",
]
METHODS = [
    "s_etukortti_visa",
    "payment_card",
    "cash",
    "mobile",
    "invoice",
    "company_card",
    "benefit_voucher",
    "other",
]
STORES = ["S0042", "S0007", "S0001"]


@st.composite
def instants(draw: st.DrawFn) -> str:
    anchor = draw(st.sampled_from(ANCHORS))
    seconds = draw(st.one_of(st.integers(-2, 2), st.integers(-5 * 86400, 5 * 86400)))
    at = (anchor + timedelta(seconds=seconds)).astimezone(draw(st.sampled_from(OFFSETS)))
    return at.isoformat()


@st.composite
def lines(draw: st.DrawFn) -> dict[str, Any]:
    group = draw(st.sampled_from(GROUPS))
    out: dict[str, Any] = {
        "sku": f"SKU-{group}",
        "product_group": group,
        "quantity": draw(st.sampled_from([1, 2, 0.5, 1.25])),
        "amount_cents": draw(st.one_of(st.integers(0, 3000), st.integers(0, 60000))),
    }
    if group in FUEL_GROUPS and draw(st.booleans()):
        out["fuel_ml"] = draw(st.integers(0, 80000))
    return out


@st.composite
def swipe_objects(draw: st.DrawFn, event_id: str) -> dict[str, Any]:
    items = draw(st.lists(lines(), min_size=1, max_size=5))
    return {
        "schema": "swipe/1",
        "event_id": event_id,
        "kind": draw(st.sampled_from(["purchase", "purchase", "purchase", "return"])),
        "card": "6390001234567890",
        "store_id": draw(st.sampled_from(STORES)),
        "occurred_at": draw(instants()),
        "currency": "EUR",
        "payment_method": draw(st.sampled_from(METHODS)),
        "total_cents": sum(item["amount_cents"] for item in items),
        "lines": items,
    }


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Distinct swipes, and the same swipes delivered in any order with some redelivered."""
    count = draw(st.integers(1, 12))
    swipes = [draw(swipe_objects(f"EV-{i}")) for i in range(count)]
    again = draw(st.lists(st.sampled_from(swipes), max_size=6))
    delivered = draw(st.permutations(swipes + again))
    return swipes, delivered


def figures_tuple(f: BonusFigures) -> tuple[int, int, int, int, int, int]:
    return (
        f.purchases_cents,
        f.tier_bp,
        f.base_bonus_cents,
        f.fuel_bonus_cents,
        f.payment_benefit_cents,
        f.total_cents,
    )


# --- the properties ----------------------------------------------------------------------


def test_the_rules_data_renders_to_valid_rules() -> None:
    assert RULES.tiers_for("osuuskauppa-arina")[0].bp == 300
    assert [c.multiplier for c in RULES.campaigns] == [2, 3, 4]
    assert RULES.fuel_product_groups == {"fuel", "ev_charging"}


@settings(max_examples=150, deadline=None)
@given(
    deliveries(),
    st.booleans(),
    st.sampled_from(["hok-elanto", "osuuskauppa-arina", "somewhere-else"]),
)
def test_accumulated_contributions_equal_the_reference(
    delivery: tuple[list[dict[str, Any]], list[dict[str, Any]]], business: bool, co_op: str
) -> None:
    swipes, delivered = delivery
    # What the store does: one accumulator and one seen set per household-month.
    accumulators: dict[Month, Accumulator] = {}
    seen: dict[Month, set[str]] = {}
    for obj in delivered:
        swipe = parse_swipe(json.dumps(obj).encode())
        c = contribution(swipe, RULES)
        if swipe.event_id in seen.setdefault(c.month, set()):
            continue
        seen[c.month].add(swipe.event_id)
        accumulators.setdefault(c.month, Accumulator()).add(c.delta)
    months = {reference_month(obj) for obj in swipes}
    assert {(m.year, m.month) for m in accumulators} == months
    for month, acc in accumulators.items():
        stored = Accumulator.from_fields(acc.fields())  # through the Redis hash shape
        result = compute_bonus(
            stored, RULES.tiers_for(co_op), RULES.payment_benefit_bp, business=business
        )
        expected = reference_bonus(
            swipes, (month.year, month.month), co_op=co_op, business=business
        )
        assert figures_tuple(result) == expected


@settings(max_examples=100, deadline=None)
@given(swipe_objects("EV-1"))
def test_a_purchase_and_its_return_cancel_out(obj: dict[str, Any]) -> None:
    purchase = obj | {"kind": "purchase"}
    refund = obj | {"kind": "return", "event_id": "EV-2"}
    acc = Accumulator()
    for item in (purchase, refund):
        acc.add(contribution(parse_swipe(json.dumps(item).encode()), RULES).delta)
    assert acc.fields() == {"swipes": 2, "returns": 1}


@settings(max_examples=200, deadline=None)
@given(swipe_objects("EV-1"), st.sampled_from(["purchase", "return"]))
def test_the_hot_path_fields_are_the_accumulator_and_the_insights(
    obj: dict[str, Any], kind: str
) -> None:
    """``swipe_fields`` (one pass, what the worker sends to Redis) adds exactly what
    ``contribution`` (checked against the reference above) and ``group_fields`` add."""
    raw = json.dumps(obj | {"kind": kind}).encode()
    swipe = parse_swipe(raw)
    c = contribution(swipe, RULES)
    effect = swipe_fields(decode_swipe(raw), RULES)
    groups = group_fields(
        ((line.product_group, line.amount_cents) for line in swipe.lines), c.line_codes, swipe.sign
    )
    assert effect.fields == c.delta.fields() | groups
    assert effect.line_codes == c.line_codes
    assert effect.campaign_id == c.campaign_id
    assert effect.purchases_cents == c.delta.purchases_cents


@settings(max_examples=500, deadline=None)
@given(
    st.integers(),
    st.one_of(st.integers(min_value=1, max_value=10**6), st.integers(min_value=1)),
)
def test_div_round_half_up_is_floor_of_x_plus_a_half(numerator: int, denominator: int) -> None:
    assert div_round_half_up(numerator, denominator) == math.floor(
        Fraction(numerator, denominator) + Fraction(1, 2)
    )


@settings(max_examples=50, deadline=None)
@given(st.integers(), st.integers(max_value=0))
def test_div_round_half_up_refuses_a_non_positive_denominator(n: int, d: int) -> None:
    try:
        div_round_half_up(n, d)
    except ValueError:
        return
    raise AssertionError("no ValueError")


# --- payouts -----------------------------------------------------------------------------

bonus_figures = st.builds(
    BonusFigures,
    purchases_cents=st.integers(-(10**7), 10**7),
    tier_bp=st.sampled_from([0, 100, 250, 500]),
    base_bonus_cents=st.integers(0, 10**6),
    fuel_bonus_cents=st.integers(0, 10**4),
    payment_benefit_cents=st.integers(0, 10**5),
)
paid_so_far = st.builds(
    PaidSoFar,
    seq=st.integers(0, 20),
    base_bonus_cents=st.integers(-(10**6), 10**6),
    fuel_bonus_cents=st.integers(-(10**4), 10**4),
    payment_benefit_cents=st.integers(-(10**5), 10**5),
)
capital = st.integers(-(10**6), 10**6)


def plan(figures: BonusFigures, paid: PaidSoFar, closed_before: bool, cap: int) -> Payout | None:
    return plan_payout(
        household_id="H1",
        month="2026-11",
        co_op="hok-elanto",
        figures=figures,
        paid=paid,
        closed_before=closed_before,
        capital_remaining_cents=cap,
        payout_account="FI00",
    )


def after(paid: PaidSoFar, payout: Payout) -> PaidSoFar:
    return PaidSoFar(
        seq=payout.seq,
        base_bonus_cents=paid.base_bonus_cents + payout.base_bonus_cents,
        fuel_bonus_cents=paid.fuel_bonus_cents + payout.fuel_bonus_cents,
        payment_benefit_cents=paid.payment_benefit_cents + payout.payment_benefit_cents,
    )


@settings(max_examples=400, deadline=None)
@given(bonus_figures, paid_so_far, st.booleans(), capital, capital, st.booleans())
def test_plan_payout_invariants(
    figures: BonusFigures,
    paid: PaidSoFar,
    closed_before: bool,
    cap: int,
    cap_later: int,
    closed_later: bool,
) -> None:
    payout = plan(figures, paid, closed_before, cap)
    difference = figures.total_cents - paid.total_cents
    if difference == 0:
        assert payout is None
        return
    assert payout is not None
    assert payout.total_cents == difference
    assert payout.base_bonus_cents == figures.base_bonus_cents - paid.base_bonus_cents
    assert payout.fuel_bonus_cents == figures.fuel_bonus_cents - paid.fuel_bonus_cents
    assert payout.payment_benefit_cents == (
        figures.payment_benefit_cents - paid.payment_benefit_cents
    )
    assert (payout.purchases_cents, payout.tier_bp) == (figures.purchases_cents, figures.tier_bp)
    assert payout.to_capital_cents + payout.to_account_cents == payout.total_cents
    assert 0 <= payout.to_capital_cents <= max(0, cap)
    if difference < 0:
        assert (payout.to_capital_cents, payout.to_account_cents) == (0, difference)
    else:
        # Capital first: as much as is owed, the rest to the account.
        assert payout.to_capital_cents == min(difference, max(0, cap))
    assert payout.seq == paid.seq + 1
    assert payout.payout_id == f"H1:2026-11:{paid.seq + 1}"
    assert payout.adjustment == (closed_before or paid.seq > 0)
    # Once sent, planning again (another close, any capital) sends nothing.
    assert plan(figures, after(paid, payout), closed_later, cap_later) is None


@settings(max_examples=200, deadline=None)
@given(st.lists(bonus_figures, min_size=1, max_size=7), st.integers(0, 5000))
def test_successive_closes(history: list[BonusFigures], required: int) -> None:
    """Close a month again and again as late swipes change its figures."""
    paid = PaidSoFar()
    owed = required
    sent: list[Payout] = []
    for close, figures in enumerate(history):
        payout = plan(figures, paid, close > 0, owed)
        if payout is None:
            assert figures.total_cents == paid.total_cents
            continue
        assert payout.to_capital_cents <= owed
        owed -= payout.to_capital_cents
        paid = after(paid, payout)
        sent.append(payout)
        assert payout.adjustment == (close > 0 or len(sent) > 1)
    assert [p.seq for p in sent] == list(range(1, len(sent) + 1))
    assert sum(p.total_cents for p in sent) == history[-1].total_cents
    assert paid.total_cents == history[-1].total_cents
    assert 0 <= sum(p.to_capital_cents for p in sent) <= required
    assert owed >= 0
