"""Register events (contract section 3): snapshots and capital payments."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import pytest

from models.errors import InvalidEvent
from models.register import (
    MAX_BYTES,
    CapitalPayment,
    CardSnapshot,
    ErasureRequest,
    HouseholdSnapshot,
    PersonSnapshot,
    parse_register,
)

# The contract's four examples, verbatim.
HOUSEHOLD = b"""{"schema": "register/1", "type": "household", "household_id": "H100234",
 "co_op": "hok-elanto", "head_person_id": "P77", "person_ids": ["P77", "P78"],
 "business": false, "status": "active", "capital_required_cents": 10000,
 "payout_account": "FI2112345600000785", "updated_at": "2026-11-01T09:00:00+02:00"}"""
CARD = b"""{"schema": "register/1", "type": "card", "card": "6390001234567890",
 "household_id": "H100234", "person_id": "P78", "status": "active",
 "valid_until": "2030-12-31", "updated_at": "2026-11-01T09:00:00+02:00"}"""
PERSON = b"""{"schema": "register/1", "type": "person", "person_id": "P78",
 "household_id": "H100234", "bans": ["product_data_marketing"],
 "email_marketing": false, "sms_marketing": true,
 "updated_at": "2026-11-01T09:00:00+02:00"}"""
CAPITAL = b"""{"schema": "register/1", "type": "capital_payment", "payment_id": "CP-991",
 "household_id": "H100234", "amount_cents": 2500,
 "paid_at": "2026-11-03T12:00:00+02:00"}"""

EXAMPLES = {"household": HOUSEHOLD, "card": CARD, "person": PERSON, "capital_payment": CAPITAL}
NOV_1_0900_HELSINKI = datetime(2026, 11, 1, 7, 0, tzinfo=UTC)
DELETE = object()


def obj(kind: str, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(EXAMPLES[kind])
    for name, value in changes.items():
        if value is DELETE:
            del data[name]
        else:
            data[name] = value
    return data


def reason(data: Any) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    with pytest.raises(InvalidEvent) as info:
        parse_register(raw)
    return info.value.reason


def parse(data: dict[str, Any]) -> Any:
    return parse_register(json.dumps(data).encode())


# --- the four examples -------------------------------------------------------------------


def test_household_example() -> None:
    assert parse_register(HOUSEHOLD) == HouseholdSnapshot(
        household_id="H100234",
        co_op="hok-elanto",
        head_person_id="P77",
        person_ids=("P77", "P78"),
        business=False,
        status="active",
        ended_at=None,
        capital_required_cents=10000,
        payout_account="FI2112345600000785",
        updated_at=NOV_1_0900_HELSINKI,
    )


def test_card_example() -> None:
    assert parse_register(CARD) == CardSnapshot(
        card="6390001234567890",
        household_id="H100234",
        person_id="P78",
        status="active",
        valid_until=date(2030, 12, 31),
        updated_at=NOV_1_0900_HELSINKI,
    )


def test_person_example() -> None:
    assert parse_register(PERSON) == PersonSnapshot(
        person_id="P78",
        household_id="H100234",
        bans=frozenset({"product_data_marketing"}),
        email_marketing=False,
        sms_marketing=True,
        updated_at=NOV_1_0900_HELSINKI,
    )


def test_capital_payment_example() -> None:
    assert parse_register(CAPITAL) == CapitalPayment(
        payment_id="CP-991",
        household_id="H100234",
        amount_cents=2500,
        paid_at=datetime(2026, 11, 3, 10, 0, tzinfo=UTC),
    )


def test_an_ended_business_household() -> None:
    snap = parse(obj("household", business=True, status="ended", ended_at="2026-11-30T12:00:00Z"))
    assert isinstance(snap, HouseholdSnapshot)
    assert snap.business is True
    assert snap.status == "ended"
    assert snap.ended_at == datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def test_optional_fields_may_be_left_out() -> None:
    household = parse(obj("household", head_person_id=DELETE, payout_account=DELETE))
    assert (household.head_person_id, household.payout_account) == ("", "")
    card = parse(obj("card", valid_until=DELETE, person_id=DELETE))
    assert (card.valid_until, card.person_id) == (None, "")
    card = parse(obj("card", valid_until=None))
    assert card.valid_until is None


def test_every_ban_code_of_the_contract_is_known() -> None:
    codes = [
        "owner_mail",
        "direct_mail",
        "phone_marketing",
        "surveys",
        "warranty_receipts",
        "product_data_marketing",
        "product_data_services",
        "email",
    ]
    assert parse(obj("person", bans=codes)).bans == frozenset(codes)
    assert parse(obj("person", bans=[])).bans == frozenset()


@pytest.mark.parametrize("status", ["active", "blocked", "expired"])
def test_card_statuses(status: str) -> None:
    assert parse(obj("card", status=status)).status == status


# --- reasons -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["shop", "Household", "", "capital", "swipe"])
def test_unknown_type_is_unknown_enum(kind: str) -> None:
    assert reason(obj("household", type=kind)) == "unknown_enum"


@pytest.mark.parametrize("kind", [None, 1, ["household"]])
def test_type_that_is_not_a_string_is_rejected(kind: Any) -> None:
    assert reason(obj("household", type=kind)) == "unknown_enum"


@pytest.mark.parametrize("schema", ["register/2", "swipe/1", None, 1])
def test_unsupported_schema(schema: Any) -> None:
    assert reason(obj("card", schema=schema)) == "unsupported_schema"


@pytest.mark.parametrize(
    "bans", [["spam"], ["email", "Email"], ["product_data_marketing", "sms"], ["owner mail"]]
)
def test_unknown_ban_code_is_unknown_enum(bans: list[str]) -> None:
    assert reason(obj("person", bans=bans)) == "unknown_enum"


@pytest.mark.parametrize("bans", ["email", [1], [None], [""], {"email": True}])
def test_bans_of_the_wrong_type(bans: Any) -> None:
    assert reason(obj("person", bans=bans)) == "invalid_field"
    assert reason(obj("person", bans=None)) == "missing_field"


@pytest.mark.parametrize(
    ("kind", "status"),
    [("household", "closed"), ("household", "Active"), ("card", "lost"), ("card", "")],
)
def test_unknown_status_is_unknown_enum(kind: str, status: str) -> None:
    assert reason(obj(kind, status=status)) == "unknown_enum"


@pytest.mark.parametrize("kind", ["household", "card"])
def test_status_that_is_not_a_string(kind: str) -> None:
    assert reason(obj(kind, status=1)) == "invalid_field"
    assert reason(obj(kind, status=DELETE)) == "missing_field"


@pytest.mark.parametrize(
    "valid_until",
    [
        "2030-02-30",
        "2030-13-01",
        "2030-12-31T00:00:00+02:00",
        "31.12.2030",
        "2030-1-1",
        "20301231",
        20301231,
        "2030-12-31\n",
        "",
    ],
)
def test_bad_valid_until(valid_until: Any) -> None:
    assert reason(obj("card", valid_until=valid_until)) == "invalid_field"


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        ("household", "updated_at"),
        ("card", "updated_at"),
        ("person", "updated_at"),
        ("capital_payment", "paid_at"),
        ("household", "ended_at"),
    ],
)
@pytest.mark.parametrize(
    "value",
    [
        "2026-11-01T09:00:00",
        "2026-11-01",
        "2026-11-31T09:00:00+02:00",
        "2026-11-01T24:00:00+02:00",
        "1.11.2026 9:00",
        1793516400,
    ],
)
def test_bad_timestamps(kind: str, name: str, value: Any) -> None:
    assert reason(obj(kind, **{name: value})) == "invalid_field"


@pytest.mark.parametrize(("kind", "name"), [(k, "updated_at") for k in ("household", "card")])
def test_snapshots_need_updated_at(kind: str, name: str) -> None:
    assert reason(obj(kind, **{name: DELETE})) == "missing_field"


BAD_IDS = ["H 100", "H:100", "H/100", "H100*", "Hä100", "", "H" * 65, "H100\n", "{H100}", "H\x00"]


@pytest.mark.parametrize("bad", BAD_IDS)
@pytest.mark.parametrize(
    ("kind", "name"),
    [
        ("household", "household_id"),
        ("card", "household_id"),
        ("person", "household_id"),
        ("capital_payment", "household_id"),
        ("person", "person_id"),
        ("household", "head_person_id"),
        ("card", "person_id"),
    ],
)
def test_ids_outside_the_key_alphabet_are_rejected(kind: str, name: str, bad: str) -> None:
    assert reason(obj(kind, **{name: bad})) == "invalid_field"


@pytest.mark.parametrize("bad", BAD_IDS)
def test_person_ids_outside_the_key_alphabet_are_rejected(bad: str) -> None:
    assert reason(obj("household", person_ids=["P77", bad])) == "invalid_field"


@pytest.mark.parametrize("good", ["A", "a-B_c.9", "H" * 64, "0", "..", "-_-"])
def test_ids_inside_the_key_alphabet_are_accepted(good: str) -> None:
    assert parse(obj("household", household_id=good)).household_id == good
    assert parse(obj("person", person_id=good)).person_id == good
    assert parse(obj("household", person_ids=[good])).person_ids == (good,)


@pytest.mark.parametrize("value", [123, None, ["H1"]])
def test_id_of_the_wrong_type(value: Any) -> None:
    expected = "missing_field" if value is None else "invalid_field"
    assert reason(obj("card", household_id=value)) == expected


@pytest.mark.parametrize(
    ("kind", "changes"),
    [
        ("household", {"business": "false"}),
        ("household", {"business": 0}),
        ("household", {"capital_required_cents": -1}),
        ("household", {"capital_required_cents": True}),
        ("household", {"capital_required_cents": 100.0}),
        ("household", {"person_ids": "P77"}),
        ("household", {"person_ids": [f"P{i}" for i in range(101)]}),
        ("household", {"co_op": ""}),
        ("household", {"co_op": 7}),
        ("card", {"card": "12345"}),
        ("card", {"card": "1" * 21}),
        ("card", {"card": 6390001234567890}),
        ("person", {"email_marketing": "no"}),
        ("person", {"sms_marketing": 1}),
        ("capital_payment", {"amount_cents": 0}),
        ("capital_payment", {"amount_cents": -2500}),
        ("capital_payment", {"amount_cents": "2500"}),
        ("capital_payment", {"amount_cents": False}),
        ("capital_payment", {"payment_id": ""}),
        ("capital_payment", {"payment_id": "CP\n991"}),
    ],
)
def test_wrong_type_or_range_is_invalid_field(kind: str, changes: dict[str, Any]) -> None:
    assert reason(obj(kind, **changes)) == "invalid_field"


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        ("household", "business"),
        ("household", "co_op"),
        ("household", "person_ids"),
        ("household", "capital_required_cents"),
        ("card", "card"),
        ("card", "household_id"),
        ("person", "email_marketing"),
        ("capital_payment", "amount_cents"),
        ("capital_payment", "payment_id"),
    ],
)
def test_missing_required_field(kind: str, name: str) -> None:
    assert reason(obj(kind, **{name: DELETE})) == "missing_field"


def test_syntax_size_and_shape() -> None:
    assert reason(b"{") == "invalid_json"
    assert reason(HOUSEHOLD.replace(b"hok-elanto", b"hok-\xffelanto")) == "invalid_json"
    assert reason(b"[]") == "not_an_object"
    padded = obj("household", note="x" * MAX_BYTES)
    assert reason(padded) == "oversize"


def test_unknown_fields_are_ignored() -> None:
    data = obj("card", colour="green", issued={"at": "2020-01-01"})
    assert parse(data) == parse_register(CARD)


# --- erasure (contract section 9) --------------------------------------------------------

ERASURE = b"""{"schema": "register/1", "type": "erasure", "request_id": "ER-77",
 "household_id": "H100234", "requested_at": "2026-12-01T10:00:00+02:00"}"""


def test_erasure_example() -> None:
    event = parse_register(ERASURE)
    assert event == ErasureRequest(
        request_id="ER-77",
        household_id="H100234",
        requested_at=datetime(2026, 12, 1, 8, 0, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    ("name", "value", "why"),
    [
        ("household_id", "H:1", "invalid_field"),
        ("household_id", None, "missing_field"),
        ("request_id", "", "invalid_field"),
        ("request_id", None, "missing_field"),
        ("requested_at", "2026-12-01T10:00:00", "invalid_field"),
        ("requested_at", None, "missing_field"),
    ],
)
def test_bad_erasure_requests_are_rejected(name: str, value: Any, why: str) -> None:
    data: dict[str, Any] = json.loads(ERASURE)
    if value is None:
        del data[name]
    else:
        data[name] = value
    assert reason(data) == why
