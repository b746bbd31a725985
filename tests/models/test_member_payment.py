"""Capital interest and surplus refund (contract section 11), figures computed by hand."""

from __future__ import annotations

import pytest

from models.errors import RulesError
from models.member_payment import (
    CapitalLedger,
    MemberPayment,
    capital_interest_cents,
    ledger_from_fields,
    plan_member_payments,
    surplus_basis_cents,
    surplus_refund_cents,
)
from models.rules import CoOpYear, parse_rules

RATES = CoOpYear(capital_interest_bp=300, surplus_refund_bp=100)


def plan(
    ledger: CapitalLedger, purchases: list[int], *, business: bool = False, year: int = 2026
) -> dict[str, MemberPayment]:
    payments = plan_member_payments(
        household_id="H1",
        year=year,
        co_op="hok-elanto",
        rates=RATES,
        ledger=ledger,
        monthly_purchases_cents=purchases,
        business=business,
        payout_account="FI21",
    )
    return {p.kind: p for p in payments}


def test_capital_paid_in_instalments_during_the_year_counts_in_full_at_its_end() -> None:
    # 2025: 2500 paid; 2026: 2500 in March + 2500 in November. Held at end of 2026: 7500.
    ledger = CapitalLedger(10_000, paid_by_year={2025: 2500, 2026: 5000})
    assert ledger.held_at_end_of(2025) == 2500
    assert ledger.held_at_end_of(2026) == 7500
    # interest = round(300 x 7500 / 10000) = 225
    assert plan(ledger, [])["capital_interest"].amount_cents == 225
    assert plan(ledger, [])["capital_interest"].basis_cents == 7500
    # for 2025 only the 2500 then: round(300 x 2500 / 10000) = 75
    assert plan(ledger, [], year=2025)["capital_interest"].amount_cents == 75


def test_bonus_sent_to_capital_counts_by_the_year_of_its_bonus_month() -> None:
    # 2000 paid in 2026; December 2026's bonus (paid out in January 2027) sent 400 to capital,
    # January 2027's bonus sent 300: only the December bonus is capital held at end of 2026.
    ledger = CapitalLedger(10_000, paid_by_year={2026: 2000}, bonus_by_year={2026: 400, 2027: 300})
    assert ledger.held_at_end_of(2026) == 2400
    assert ledger.held_at_end_of(2027) == 2700
    # round(300 x 2400 / 10000) = 72
    assert plan(ledger, [])["capital_interest"].amount_cents == 72


def test_capital_held_is_capped_at_the_required_capital() -> None:
    ledger = CapitalLedger(10_000, paid_by_year={2025: 9000, 2026: 500}, bonus_by_year={2026: 800})
    assert ledger.held_at_end_of(2026) == 10_000  # 10300 paid in, 10000 required
    assert plan(ledger, [])["capital_interest"].amount_cents == 300
    assert CapitalLedger(0, paid_by_year={2026: 5000}).held_at_end_of(2026) == 0


def test_surplus_over_twelve_months_with_returns() -> None:
    # Twelve months, March has returns only (-1500), November a return inside a month.
    months = [10_000, 20_000, -1500, 0, 5000, 5000, 0, 0, 12_345, 10_000, 8000 - 2000, 15_000]
    assert sum(months) == 81_845
    refund = plan(CapitalLedger(0), months)["surplus_refund"]
    # round(100 x 81845 / 10000) = round(818.45) = 818
    assert (refund.basis_cents, refund.rate_bp, refund.amount_cents) == (81_845, 100, 818)
    assert "capital_interest" not in plan(CapitalLedger(0), months)  # nothing held: no event


def test_a_business_household_gets_no_surplus_refund_but_its_interest() -> None:
    ledger = CapitalLedger(10_000, paid_by_year={2026: 10_000})
    payments = plan(ledger, [50_000] * 12, business=True)
    assert set(payments) == {"capital_interest"}
    assert payments["capital_interest"].amount_cents == 300
    assert surplus_basis_cents([50_000] * 12, business=True) == 0


def test_rounding_is_half_up_at_exactly_half() -> None:
    # 300 bp of 50 cents = 1.5 -> 2; 100 bp of 150 cents = 1.5 -> 2; of 149 -> 1.49 -> 1
    assert capital_interest_cents(50, 300) == 2
    assert surplus_refund_cents(150, 100) == 2
    assert surplus_refund_cents(149, 100) == 1
    assert surplus_refund_cents(250, 100) == 3  # 2.5 -> 3, not banker's 2
    payments = plan(CapitalLedger(50, paid_by_year={2026: 50}), [150])
    assert payments["capital_interest"].amount_cents == 2
    assert payments["surplus_refund"].amount_cents == 2


def test_returns_only_year_is_no_charge() -> None:
    assert surplus_basis_cents([-5000, 1000], business=False) == 0
    assert plan(CapitalLedger(0), [-5000, 1000]) == {}


def test_the_event_matches_the_contract_example() -> None:
    payment = plan(CapitalLedger(10_000, paid_by_year={2026: 10_000}), [])["capital_interest"]
    assert payment.to_json() == {
        "schema": "member-payment/1",
        "payment_id": "H1:2026:capital_interest",
        "household_id": "H1",
        "year": 2026,
        "co_op": "hok-elanto",
        "kind": "capital_interest",
        "basis_cents": 10000,
        "rate_bp": 300,
        "amount_cents": 300,
        "payout_account": "FI21",
    }


def test_ledger_fields_by_year_and_what_predates_them() -> None:
    ledger = ledger_from_fields(
        {
            "capital_paid_cents": 7000,  # 1000 of it recorded before the ledger kept years
            "capital_paid_cents:2025": 2000,
            "capital_paid_cents:2026": 4000,
            "bonus_to_capital_cents": 500,
            "bonus_to_capital_cents:2027": 500,
        },
        required_cents=20_000,
    )
    assert ledger.untracked_cents == 1000
    assert ledger.held_at_end_of(2024) == 1000
    assert ledger.held_at_end_of(2025) == 3000
    assert ledger.held_at_end_of(2026) == 7000
    assert ledger.held_at_end_of(2027) == 7500


BASE = """
[bonus_tables.default]
tiers = [ { from_cents = 5000, bp = 100 } ]
"""


def test_rules_co_op_years_and_partners_parse() -> None:
    rules = parse_rules(
        BASE
        + """
[co_op_years."hok-elanto".2026]
capital_interest_bp = 300
surplus_refund_bp = 100

[partners."P-ABC"]
name = "Partner Oy"
"""
    )
    assert rules.co_op_year("hok-elanto", 2026) == CoOpYear(300, 100)
    assert rules.co_op_year("hok-elanto", 2025) is None
    assert rules.co_op_year("other", 2026) is None
    assert rules.partners["P-ABC"].name == "Partner Oy"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[co_op_years."x".2026]\ncapital_interest_bp = 300\n', "missing 'surplus_refund_bp'"),
        (
            '[co_op_years."x".2026]\ncapital_interest_bp = 300\nsurplus_refund_bp = 1.5\n',
            "surplus_refund_bp must be an integer",
        ),
        (
            '[co_op_years."x".26x]\ncapital_interest_bp = 3\nsurplus_refund_bp = 1\n',
            "the year must be 1900-9999",
        ),
        (
            '[co_op_years."x".2026]\ncapital_interest_bp = 3\nsurplus_refund_bp = 1\nbonus = 2\n',
            "unknown 'bonus'",
        ),
        ('[partners."P1"]\n', 'needs exactly name = "..."'),
        ('[partners."P\u00e9"]\nname = "x"\n', "1-32 printable ASCII"),
    ],
)
def test_bad_co_op_years_and_partners_are_refused_with_a_reason(text: str, message: str) -> None:
    with pytest.raises(RulesError, match=message):
        parse_rules(BASE + text, "r.toml")
