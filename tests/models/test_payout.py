"""Month-close payouts (contract section 5)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from models.bonus import BonusFigures
from models.payout import PaidSoFar, Payout, plan_payout

# The contract's payout example, verbatim.
CONTRACT_PAYOUT = """{"schema": "payout/1", "payout_id": "H100234:2026-11:1", "household_id": "H100234",
 "month": "2026-11", "co_op": "hok-elanto", "purchases_cents": 41250, "tier_bp": 250,
 "base_bonus_cents": 983, "fuel_bonus_cents": 26, "payment_benefit_cents": 101,
 "total_cents": 1110, "to_capital_cents": 0, "to_account_cents": 1110,
 "payout_account": "FI2112345600000785", "adjustment": false}"""  # noqa: E501

EXAMPLE_FIGURES = BonusFigures(
    purchases_cents=41250, tier_bp=250, base_bonus_cents=983, fuel_bonus_cents=26,
    payment_benefit_cents=101,
)  # fmt: skip
ACCOUNT = "FI2112345600000785"


def plan(
    figures: BonusFigures = EXAMPLE_FIGURES,
    paid: PaidSoFar | None = None,
    *,
    closed_before: bool = False,
    capital: int = 0,
) -> Payout | None:
    return plan_payout(
        household_id="H100234",
        month="2026-11",
        co_op="hok-elanto",
        figures=figures,
        paid=paid or PaidSoFar(),
        closed_before=closed_before,
        capital_remaining_cents=capital,
        payout_account=ACCOUNT,
    )


def planned(*args: Any, **kwargs: Any) -> Payout:
    payout = plan(*args, **kwargs)
    assert payout is not None
    return payout


def after(paid: PaidSoFar, payout: Payout) -> PaidSoFar:
    """The ledger once ``payout`` has been sent."""
    return PaidSoFar(
        seq=payout.seq,
        base_bonus_cents=paid.base_bonus_cents + payout.base_bonus_cents,
        fuel_bonus_cents=paid.fuel_bonus_cents + payout.fuel_bonus_cents,
        payment_benefit_cents=paid.payment_benefit_cents + payout.payment_benefit_cents,
    )


def test_the_contract_example() -> None:
    payout = planned(capital=0)
    assert payout.to_json() == json.loads(CONTRACT_PAYOUT)
    assert payout.seq == 1


def test_to_json_has_exactly_the_contract_keys() -> None:
    document = planned(capital=500).to_json()
    assert document["schema"] == "payout/1"
    assert set(document) == set(json.loads(CONTRACT_PAYOUT))
    assert isinstance(document["adjustment"], bool)
    # Serialisable as it is; money stays integer.
    again = json.loads(json.dumps(document))
    assert again == document
    assert all(type(again[k]) is int for k in again if k.endswith("_cents") or k == "tier_bp")


@pytest.mark.parametrize(
    ("capital", "to_capital", "to_account"),
    [
        (500, 500, 610),  # capital first, the rest to the account
        (0, 0, 1110),  # capital fully paid
        (-300, 0, 1110),  # over-paid capital never takes money back
        (1110, 1110, 0),
        (1109, 1109, 1),
        (100000, 1110, 0),
    ],
)
def test_capital_first(capital: int, to_capital: int, to_account: int) -> None:
    payout = planned(capital=capital)
    assert (payout.total_cents, payout.to_capital_cents, payout.to_account_cents) == (
        1110,
        to_capital,
        to_account,
    )
    assert payout.adjustment is False


def test_no_payout_for_a_zero_total() -> None:
    assert plan(BonusFigures(3000, 0, 0, 0, 0), capital=500) is None
    assert plan(BonusFigures(3000, 0, 0, 0, 0), closed_before=True) is None


def test_closing_again_without_changes_repeats_nothing() -> None:
    first = planned(capital=500)
    assert plan(paid=after(PaidSoFar(), first), closed_before=True, capital=0) is None


def test_adjustment_with_a_negative_difference() -> None:
    paid = after(PaidSoFar(), planned())
    # A late return: the month is now 40000 -> still 250 bp; base 900, benefit 90.
    late = BonusFigures(40000, 250, 900, 26, 90)
    payout = planned(late, paid, closed_before=True, capital=5000)
    assert payout.payout_id == "H100234:2026-11:2"
    assert payout.adjustment is True
    assert (payout.purchases_cents, payout.tier_bp) == (40000, 250)
    # differences: 900 - 983 = -83, 26 - 26 = 0, 90 - 101 = -11; total -94
    assert (payout.base_bonus_cents, payout.fuel_bonus_cents, payout.payment_benefit_cents) == (
        -83,
        0,
        -11,
    )
    assert payout.total_cents == -94
    # Charged to the account even though capital is still owed.
    assert (payout.to_capital_cents, payout.to_account_cents) == (0, -94)


def test_adjustment_with_a_positive_difference_goes_capital_first() -> None:
    paid = after(PaidSoFar(), planned(capital=1110))
    late = BonusFigures(45000, 250, 1100, 26, 120)
    # +117 base, +19 benefit = +136; 40 of capital still owed
    payout = planned(late, paid, closed_before=True, capital=40)
    assert payout.payout_id == "H100234:2026-11:2"
    assert (payout.total_cents, payout.to_capital_cents, payout.to_account_cents) == (136, 40, 96)
    assert payout.adjustment is True


def test_first_adjustment_is_number_one_when_nothing_was_paid_at_the_first_close() -> None:
    # The first close found a zero total; a late swipe now brings 50 cents.
    payout = planned(BonusFigures(5000, 100, 50, 0, 0), PaidSoFar(), closed_before=True)
    assert payout.payout_id == "H100234:2026-11:1"
    assert payout.seq == 1
    assert payout.adjustment is True
    assert (payout.total_cents, payout.to_account_cents) == (50, 50)


def test_a_total_that_did_not_change_is_no_adjustment_even_if_components_moved() -> None:
    paid = after(PaidSoFar(), planned())
    moved = BonusFigures(41250, 250, 993, 16, 101)  # 993 + 16 + 101 = 1110
    assert plan(moved, paid, closed_before=True) is None


def test_sequence_continues_over_several_adjustments() -> None:
    paid = PaidSoFar()
    ids: list[str] = []
    capital = 700
    for total_base in [983, 1000, 950, 1200]:
        payout = planned(
            BonusFigures(41250, 250, total_base, 26, 101),
            paid,
            closed_before=bool(ids),
            capital=capital,
        )
        capital -= payout.to_capital_cents
        paid = after(paid, payout)
        ids.append(payout.payout_id)
    assert ids == [f"H100234:2026-11:{n}" for n in (1, 2, 3, 4)]
    assert paid.total_cents == 1200 + 26 + 101
    # 700 of capital: 700 from the first payout, nothing later.
    assert capital == 0


def test_payout_carries_the_household_fields() -> None:
    payout = plan_payout(
        household_id="H9",
        month="2027-01",
        co_op="arina",
        figures=EXAMPLE_FIGURES,
        paid=PaidSoFar(),
        closed_before=False,
        capital_remaining_cents=0,
        payout_account="",
    )
    assert payout is not None
    assert (payout.payout_id, payout.household_id, payout.month, payout.co_op) == (
        "H9:2027-01:1",
        "H9",
        "2027-01",
        "arina",
    )
    assert payout.payout_account == ""


def test_paid_so_far_total() -> None:
    assert PaidSoFar(3, 10, -2, 5).total_cents == 13
    assert PaidSoFar().total_cents == 0
