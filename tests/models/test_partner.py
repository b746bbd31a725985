"""Bonus partners (contract section 12): partner amounts in a swipe's contribution, the unknown
partner, and a month's settlement, figures computed by hand."""

from __future__ import annotations

import pytest

from models.bonus import Accumulator, contribution, explain
from models.errors import InvalidEvent
from models.partner import settle
from models.rules import parse_rules
from models.swipe import decode_swipe, parse_swipe
from stream.settings import DEFAULT_RULES
from tests.support import events

RULES = parse_rules(
    DEFAULT_RULES.read_text()
    + '\n[partners."P-ABC"]\nname = "ABC Oy"\n\n[partners."P-XYZ"]\nname = "XYZ Ab"\n'
)


def line(group: str, cents: int, **more: int) -> dict[str, object]:
    return {"sku": group, "product_group": group, "quantity": 1, "amount_cents": cents, **more}


def partner_swipe(**more: object) -> bytes:
    return events.encode(
        events.swipe(
            "P1",
            partner_id="P-ABC",
            occurred_at="2026-10-10T12:00:00+03:00",
            lines=[line("dairy", 1000), line("fuel", 2000, fuel_ml=1000), line("lottery", 300)],
            **more,
        )
    )


@pytest.mark.parametrize("decode", [parse_swipe, decode_swipe], ids=["reference", "hot"])
def test_a_partner_swipe_adds_its_eligible_non_fuel_amount_to_the_partner(decode: object) -> None:
    swipe = decode(partner_swipe())  # type: ignore[operator]
    assert swipe.partner_id == "P-ABC"
    delta = contribution(swipe, RULES).delta
    # dairy 1000 counts; fuel (2000) is eligible but fuel; lottery (300) is excluded
    assert delta.partner_cents == {"P-ABC": 1000}
    assert delta.purchases_cents == 3000  # it counts like any other swipe
    assert delta.fields()["partner_cents:P-ABC"] == 1000
    assert Accumulator.from_fields(delta.fields()) == delta
    ret = decode(partner_swipe(kind="return"))  # type: ignore[operator]
    assert contribution(ret, RULES).delta.partner_cents == {"P-ABC": -1000}


def test_campaign_lines_at_a_partner_count_at_face_value() -> None:
    raw = events.encode(
        events.swipe(
            "P2",
            partner_id="P-XYZ",
            store_id="S0042",  # the x2 campaign of week 47
            occurred_at="2026-11-18T12:00:00+02:00",
            lines=[line("dairy", 1000)],
        )
    )
    delta = contribution(decode_swipe(raw), RULES).delta
    assert delta.campaign_cents == {2: 1000}
    assert delta.partner_cents == {"P-XYZ": 1000}


def test_an_unknown_partner_is_refused_with_its_reason() -> None:
    raw = events.encode(events.swipe("P3", partner_id="P-NOPE"))
    with pytest.raises(InvalidEvent) as info:
        contribution(decode_swipe(raw), RULES)
    assert info.value.reason == "unknown_partner"
    assert "P-NOPE" in info.value.detail
    # a swipe without partner_id is no partner swipe
    assert (
        contribution(decode_swipe(events.encode(events.swipe("P4"))), RULES).delta.partner_cents
        == {}
    )


def acc(own: int, **partners: int) -> Accumulator:
    total = own + sum(partners.values())
    return Accumulator(
        purchases_cents=total,
        regular_cents=total,
        partner_cents={k.replace("_", "-"): v for k, v in partners.items()},
    )


def test_settlement_with_each_household_months_tier() -> None:
    months = [
        # 15000 + 10000 = 25000 -> 150 bp: round(150 x 10000 / 10000) = 150
        (acc(15_000, P_ABC=10_000), "hok-elanto", False),
        # 3333 + 40000 = 43333 -> 250 bp: ABC round(83.325) = 83, XYZ 1000
        (acc(0, P_ABC=3333, P_XYZ=40_000), "hok-elanto", False),
        # a business: no tier, no Bonus, but it bought there
        (acc(0, P_ABC=5000), "hok-elanto", True),
        # 2002 alone is below the first tier: 0
        (acc(0, P_ABC=2002), "hok-elanto", False),
        # 5000 + 50 = 5050 -> 100 bp: 100 x 50 / 10000 = 0.5 -> 1 (half up)
        (acc(5000, P_ABC=50), "hok-elanto", False),
        (acc(70_000), "hok-elanto", False),  # no partner purchases at all
    ]
    totals = {t.partner_id: t.to_json() for t in settle(months, RULES)}
    assert totals == {
        "P-ABC": {
            "partner_id": "P-ABC",
            "name": "ABC Oy",
            "households": 5,
            "partner_amount_cents": 10_000 + 3333 + 5000 + 2002 + 50,
            "bonus_cents": 150 + 83 + 0 + 0 + 1,
        },
        "P-XYZ": {
            "partner_id": "P-XYZ",
            "name": "XYZ Ab",
            "households": 1,
            "partner_amount_cents": 40_000,
            "bonus_cents": 1000,
        },
    }


def test_a_partner_with_returns_only_is_never_credited() -> None:
    totals = settle([(acc(30_000, P_ABC=-2000), "hok-elanto", False)], RULES)
    assert [(t.partner_id, t.partner_amount_cents, t.bonus_cents) for t in totals] == [
        ("P-ABC", -2000, 0),
        ("P-XYZ", 0, 0),
    ]


def test_explain_shows_the_partner_share() -> None:
    lines = explain(acc(15_000, P_ABC=10_000), RULES, "hok-elanto", business=False)
    assert lines[-1] == (
        "partner P-ABC (ABC Oy): eligible non-fuel 10000 c there -> round(150 x 10000 / 10000) "
        "= 150 c of the base bonus, invoiced to the partner"
    )


@pytest.mark.parametrize("decode", [parse_swipe, decode_swipe], ids=["reference", "hot"])
@pytest.mark.parametrize("bad", ["", "x" * 33, "P\u00e9", 5, ["P-ABC"], "\x00no partner"])
def test_a_malformed_partner_id_is_an_invalid_field_on_both_paths(
    decode: object, bad: object
) -> None:
    raw = events.encode(events.swipe("P5", partner_id=bad))
    with pytest.raises(InvalidEvent) as info:
        decode(raw)  # type: ignore[operator]
    assert info.value.reason == "invalid_field"
    assert "partner_id" in info.value.detail


@pytest.mark.parametrize("decode", [parse_swipe, decode_swipe], ids=["reference", "hot"])
def test_a_null_or_absent_partner_id_is_no_partner(decode: object) -> None:
    for raw in (
        events.encode(events.swipe("P6", partner_id=None)),
        events.encode(events.swipe("P7")),
    ):
        assert decode(raw).partner_id == ""  # type: ignore[operator]
    spaced = decode(events.encode(events.swipe("P8", partner_id="Partner 1")))  # type: ignore[operator]
    assert spaced.partner_id == "Partner 1"  # printable ASCII includes the space
