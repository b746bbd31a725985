"""Swipe events (contract section 2): what parses, and the dead-letter reason of what does not."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.errors import InvalidEvent
from models.swipe import (
    MAX_BYTES,
    Swipe,
    SwipeLike,
    SwipeLine,
    decode_swipe,
    parse_swipe,
)
from tests.support.events import CONTRACT_EXAMPLE

Obj = dict[str, Any]


def example() -> Obj:
    obj: Obj = json.loads(CONTRACT_EXAMPLE)
    return obj


def encode(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def view(swipe: SwipeLike) -> tuple[Any, ...]:
    """Everything the pipeline reads of a swipe, quantities as the reference parser keeps them."""
    return (
        swipe.event_id,
        swipe.kind,
        swipe.sign,
        swipe.card,
        swipe.store_id,
        swipe.occurred_at,
        swipe.occurred_at.utcoffset(),
        swipe.payment_method,
        swipe.total_cents,
        getattr(swipe, "original_event_id", ""),
        tuple(
            (
                line.sku,
                line.product_group,
                Decimal(str(line.quantity)).quantize(Decimal("0.001")),
                line.amount_cents,
                line.fuel_ml,
            )
            for line in swipe.lines
        ),
    )


def parse(obj: Obj) -> Swipe:
    """``parse_swipe``, checking that the hot path (``decode_swipe``) reads the same swipe."""
    raw = encode(obj)
    swipe = parse_swipe(raw)
    assert view(decode_swipe(raw)) == view(swipe)
    return swipe


def reason(raw: bytes) -> str:
    """The dead-letter reason, the same from the reference parser and from the hot path."""
    with pytest.raises(InvalidEvent) as info:
        parse_swipe(raw)
    with pytest.raises(InvalidEvent) as fast:
        decode_swipe(raw)
    assert (fast.value.reason, fast.value.detail) == (info.value.reason, info.value.detail)
    return info.value.reason


def mutated(change: Callable[[Obj], None]) -> bytes:
    obj = example()
    change(obj)
    return encode(obj)


def setter(name: str, value: Any) -> Callable[[Obj], None]:
    def change(obj: Obj) -> None:
        obj[name] = value

    return change


def deleter(name: str) -> Callable[[Obj], None]:
    def change(obj: Obj) -> None:
        del obj[name]

    return change


def line_setter(index: int, name: str, value: Any) -> Callable[[Obj], None]:
    def change(obj: Obj) -> None:
        obj["lines"][index][name] = value

    return change


def line_deleter(index: int, name: str) -> Callable[[Obj], None]:
    def change(obj: Obj) -> None:
        del obj["lines"][index][name]

    return change


def one_line(amount: int = 100, **fields: Any) -> Obj:
    """The example with a single line of ``amount`` and a matching total."""
    obj = example()
    obj["lines"] = [
        {"sku": "X", "product_group": "dairy", "quantity": 1, "amount_cents": amount, **fields}
    ]
    obj["total_cents"] = amount
    return obj


# --- the example -------------------------------------------------------------------------


def test_contract_example_parses_into_every_field() -> None:
    swipe = parse_swipe(CONTRACT_EXAMPLE)
    assert swipe.event_id == "POS-0042-20261121-000173"
    assert swipe.kind == "purchase"
    assert swipe.sign == 1
    assert swipe.card == "6390001234567890"
    assert swipe.store_id == "S0042"
    assert swipe.occurred_at == datetime(2026, 11, 21, 12, 3, 12, tzinfo=UTC)
    assert swipe.occurred_at.utcoffset() == timedelta(hours=2)
    assert swipe.currency == "EUR"
    assert swipe.payment_method == "s_etukortti_visa"
    assert swipe.total_cents == 2347
    assert swipe.original_event_id == ""
    assert swipe.lines == (
        SwipeLine("6408430000012", "dairy", Decimal(2), 398, None),
        SwipeLine("FUEL95", "fuel", Decimal(1), 1949, 10250),
    )


def test_every_payment_method_of_the_contract_parses() -> None:
    methods = [
        "s_etukortti_visa",
        "payment_card",
        "cash",
        "mobile",
        "invoice",
        "company_card",
        "benefit_voucher",
        "other",
    ]
    for method in methods:
        assert parse(example() | {"payment_method": method}).payment_method == method


def test_a_return_has_sign_minus_one_and_keeps_positive_amounts() -> None:
    obj = example() | {"kind": "return", "original_event_id": "POS-0042-20261120-000001"}
    swipe = parse(obj)
    assert swipe.kind == "return"
    assert swipe.sign == -1
    assert swipe.original_event_id == "POS-0042-20261120-000001"
    assert [line.amount_cents for line in swipe.lines] == [398, 1949]
    assert swipe.total_cents == 2347


def test_a_return_with_negative_amounts_is_rejected() -> None:
    obj = example() | {"kind": "return", "total_cents": -2347}
    obj["lines"][0]["amount_cents"] = -398
    obj["lines"][1]["amount_cents"] = -1949
    assert reason(encode(obj)) == "invalid_field"


def test_unknown_fields_are_ignored_at_every_level() -> None:
    obj = example()
    obj["cashier"] = {"id": 7, "name": "Aino"}
    obj["receipt_footer"] = ["Kiitos", None, 1.5]
    obj["total_vat_cents"] = "not even a number"
    obj["lines"][0]["vat_bp"] = 1400
    obj["lines"][1]["pump"] = {"no": 3}
    assert parse(obj) == parse_swipe(CONTRACT_EXAMPLE)


def test_null_fuel_ml_is_the_same_as_no_fuel_ml() -> None:
    obj = example()
    obj["lines"][0]["fuel_ml"] = None
    assert parse(obj).lines[0].fuel_ml is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-21T12:03:12Z", datetime(2026, 11, 21, 12, 3, 12, tzinfo=UTC)),
        ("2026-11-21t12:03:12z", datetime(2026, 11, 21, 12, 3, 12, tzinfo=UTC)),
        ("2026-11-21T12:03:12+00:00", datetime(2026, 11, 21, 12, 3, 12, tzinfo=UTC)),
        ("2026-11-21T07:03:12-05:00", datetime(2026, 11, 21, 12, 3, 12, tzinfo=UTC)),
        ("2026-11-21T14:03:12.5+02:00", datetime(2026, 11, 21, 12, 3, 12, 500000, tzinfo=UTC)),
        (
            "2026-11-21T14:03:12.123456789+02:00",
            datetime(2026, 11, 21, 12, 3, 12, 123456, tzinfo=UTC),
        ),
    ],
)
def test_rfc3339_forms_parse_to_the_same_instant(text: str, expected: datetime) -> None:
    assert parse(example() | {"occurred_at": text}).occurred_at == expected


def test_the_writer_offset_is_kept() -> None:
    swipe = parse(example() | {"occurred_at": "2026-11-21T07:03:12-05:00"})
    assert swipe.occurred_at.utcoffset() == timedelta(hours=-5)


# --- reasons -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"{",
        b"not json",
        b'{"schema": "swipe/1",}',
        b'{"a": 1} {"b": 2}',
        b"{'schema': 'swipe/1'}",
    ],
)
def test_syntax_errors_are_invalid_json(raw: bytes) -> None:
    assert reason(raw) == "invalid_json"


@pytest.mark.parametrize(
    "bad_bytes",
    [b"\xff", b"\xc3", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80"],
    ids=["ff", "truncated", "overlong", "surrogate", "five-byte"],
)
def test_invalid_utf8_is_invalid_json(bad_bytes: bytes) -> None:
    raw = CONTRACT_EXAMPLE.replace(b"POS-0042", b"POS-" + bad_bytes, 1)
    assert raw != CONTRACT_EXAMPLE
    assert reason(raw) == "invalid_json"


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e400"])
def test_non_finite_numbers_are_rejected(literal: bytes) -> None:
    raw = CONTRACT_EXAMPLE.replace(b'"quantity": 2', b'"quantity": ' + literal)
    assert raw != CONTRACT_EXAMPLE
    assert reason(raw) == "invalid_json"


def test_nan_in_an_ignored_field_still_rejects_the_event() -> None:
    raw = CONTRACT_EXAMPLE.replace(b'"kind"', b'"extra": NaN, "kind"')
    assert reason(raw) == "invalid_json"


@pytest.mark.parametrize("raw", [b"[]", b"[{}]", b'"swipe/1"', b"1", b"null", b"true"])
def test_json_that_is_not_an_object(raw: bytes) -> None:
    assert reason(raw) == "not_an_object"


@pytest.mark.parametrize(
    "change",
    [
        deleter("schema"),
        setter("schema", "swipe/2"),
        setter("schema", "register/1"),
        setter("schema", 1),
        setter("schema", None),
        setter("schema", "SWIPE/1"),
    ],
)
def test_unsupported_schema(change: Callable[[Obj], None]) -> None:
    assert reason(mutated(change)) == "unsupported_schema"


def test_schema_is_checked_before_anything_else() -> None:
    assert reason(b'{"schema": "swipe/2"}') == "unsupported_schema"
    assert reason(b'{"schema": "swipe/1"}') == "missing_field"


REQUIRED = [
    "event_id",
    "kind",
    "card",
    "store_id",
    "occurred_at",
    "currency",
    "payment_method",
    "total_cents",
    "lines",
]
REQUIRED_LINE = ["sku", "product_group", "quantity", "amount_cents"]


@pytest.mark.parametrize("name", REQUIRED)
def test_a_missing_field_is_missing_field(name: str) -> None:
    assert reason(mutated(deleter(name))) == "missing_field"
    assert reason(mutated(setter(name, None))) == "missing_field"


@pytest.mark.parametrize("name", REQUIRED_LINE)
def test_a_missing_line_field_is_missing_field(name: str) -> None:
    assert reason(mutated(line_deleter(1, name))) == "missing_field"
    with pytest.raises(InvalidEvent) as info:
        parse_swipe(mutated(line_setter(1, name, None)))
    assert info.value.reason == "missing_field"
    assert "lines[1]" in info.value.detail


INVALID_FIELD = {
    # event_id: 1-128 printable ASCII
    "event_id int": setter("event_id", 173),
    "event_id empty": setter("event_id", ""),
    "event_id 129": setter("event_id", "E" * 129),
    "event_id non-ascii": setter("event_id", "kuitti-ä"),
    "event_id tab": setter("event_id", "a\tb"),
    "event_id newline at end": setter("event_id", "abc\n"),
    "event_id DEL": setter("event_id", "abc\x7f"),
    "event_id list": setter("event_id", ["a"]),
    # kind / payment_method must be strings
    "kind int": setter("kind", 1),
    "kind bool": setter("kind", True),
    "payment_method list": setter("payment_method", ["cash"]),
    # card: 6-20 digits
    "card 5": setter("card", "12345"),
    "card 21": setter("card", "1" * 21),
    "card int": setter("card", 6390001234567890),
    "card letter": setter("card", "63900012345678a0"),
    "card space": setter("card", "639000 1234567890"),
    "card plus": setter("card", "+639000123"),
    "card newline at end": setter("card", "6390001234567890\n"),
    "card arabic digits": setter("card", "٦٣٩٠٠٠١٢٣٤"),
    "card empty": setter("card", ""),
    # store_id: 1-32 printable ASCII
    "store_id 33": setter("store_id", "S" * 33),
    "store_id empty": setter("store_id", ""),
    "store_id int": setter("store_id", 42),
    "store_id non-ascii": setter("store_id", "Sö"),
    # occurred_at: RFC 3339 with an offset
    "occurred_at no offset": setter("occurred_at", "2026-11-21T14:03:12"),
    "occurred_at date": setter("occurred_at", "2026-11-21"),
    "occurred_at basic offset": setter("occurred_at", "2026-11-21T14:03:12+0200"),
    "occurred_at hour offset": setter("occurred_at", "2026-11-21T14:03:12+02"),
    "occurred_at month 13": setter("occurred_at", "2026-13-01T00:00:00Z"),
    "occurred_at feb 30": setter("occurred_at", "2026-02-30T00:00:00Z"),
    "occurred_at hour 25": setter("occurred_at", "2026-11-21T25:00:00Z"),
    "occurred_at epoch": setter("occurred_at", 1795000000),
    "occurred_at no seconds": setter("occurred_at", "2026-11-21T14:03+02:00"),
    "occurred_at newline": setter("occurred_at", "2026-11-21T14:03:12+02:00\n"),
    "occurred_at week": setter("occurred_at", "2026-W47-6T14:03:12+02:00"),
    # currency must be a string before it can be a currency
    "currency int": setter("currency", 978),
    # total_cents: integer >= 0
    "total string": setter("total_cents", "2347"),
    "total float": setter("total_cents", 2347.0),
    "total negative": setter("total_cents", -2347),
    "total bool": setter("total_cents", True),
    # lines
    "lines object": setter("lines", {"0": {}}),
    "lines string": setter("lines", "[]"),
    "line not object": setter("lines", ["dairy"]),
    "line null": setter("lines", [None]),
    # line fields
    "sku int": line_setter(0, "sku", 6408430000012),
    "sku empty": line_setter(0, "sku", ""),
    "group empty": line_setter(0, "product_group", ""),
    "group int": line_setter(0, "product_group", 5),
    "group control": line_setter(0, "product_group", "dai\x00ry"),
    "amount negative": line_setter(0, "amount_cents", -398),
    "amount float": line_setter(0, "amount_cents", 398.0),
    "amount string": line_setter(0, "amount_cents", "398"),
    "amount bool": line_setter(0, "amount_cents", False),
    "fuel_ml negative": line_setter(1, "fuel_ml", -1),
    "fuel_ml float": line_setter(1, "fuel_ml", 10250.5),
    "fuel_ml string": line_setter(1, "fuel_ml", "10250"),
    "fuel_ml bool": line_setter(1, "fuel_ml", True),
    "quantity zero": line_setter(0, "quantity", 0),
    "quantity zero float": line_setter(0, "quantity", 0.0),
    "quantity negative": line_setter(0, "quantity", -1),
    "quantity negative zero": line_setter(0, "quantity", -0.0),
    "quantity string": line_setter(0, "quantity", "2"),
    "quantity bool": line_setter(0, "quantity", True),
    "quantity list": line_setter(0, "quantity", [2]),
    "original_event_id int": setter("original_event_id", 5),
    "original_event_id empty": setter("original_event_id", ""),
    "original_event_id 129": setter("original_event_id", "E" * 129),
}


@pytest.mark.parametrize("change", INVALID_FIELD.values(), ids=INVALID_FIELD.keys())
def test_wrong_type_or_range_is_invalid_field(change: Callable[[Obj], None]) -> None:
    assert reason(mutated(change)) == "invalid_field"


@pytest.mark.parametrize(
    "change",
    [
        setter("kind", "refund"),
        setter("kind", "Purchase"),
        setter("kind", ""),
        setter("payment_method", "visa"),
        setter("payment_method", "CASH"),
        setter("payment_method", "s_etukortti"),
    ],
)
def test_a_value_outside_the_enumeration_is_unknown_enum(change: Callable[[Obj], None]) -> None:
    assert reason(mutated(change)) == "unknown_enum"


@pytest.mark.parametrize("currency", ["SEK", "NOK", "USD", "eur", "EURO", ""])
def test_another_currency_is_unsupported_currency(currency: str) -> None:
    assert reason(mutated(setter("currency", currency))) == "unsupported_currency"


@pytest.mark.parametrize("total", [0, 2346, 2348, 398, 1949])
def test_total_must_equal_the_sum_of_the_lines(total: int) -> None:
    assert reason(mutated(setter("total_cents", total))) == "total_mismatch"


def test_total_mismatch_on_a_return_too() -> None:
    assert reason(encode(example() | {"kind": "return", "total_cents": 2000})) == "total_mismatch"


def test_lines_between_1_and_500() -> None:
    assert reason(mutated(setter("lines", []))) == "invalid_lines"
    line = {"sku": "X", "product_group": "dairy", "quantity": 1, "amount_cents": 1}
    for count, ok in [(1, True), (500, True), (501, False)]:
        obj = example() | {"lines": [dict(line) for _ in range(count)], "total_cents": count}
        if ok:
            assert len(parse(obj).lines) == count
        else:
            assert reason(encode(obj)) == "invalid_lines"


def test_oversize_is_checked_on_the_raw_bytes() -> None:
    base = encode(example() | {"padding": ""})
    fill = MAX_BYTES - len(base)
    at_limit = encode(example() | {"padding": "x" * fill})
    assert len(at_limit) == MAX_BYTES
    assert parse_swipe(at_limit).event_id == "POS-0042-20261121-000173"
    over = encode(example() | {"padding": "x" * (fill + 1)})
    assert len(over) == MAX_BYTES + 1
    assert reason(over) == "oversize"
    # Size is checked before syntax: a huge broken document is oversize, not invalid_json.
    assert reason(b"{" * (MAX_BYTES + 1)) == "oversize"


def test_invalid_event_carries_reason_and_detail() -> None:
    with pytest.raises(ValueError, match="invalid_field") as info:
        parse_swipe(mutated(line_setter(1, "amount_cents", -1)))
    assert isinstance(info.value, InvalidEvent)
    assert info.value.reason == "invalid_field"
    assert info.value.detail.startswith("lines[1].amount_cents")


# --- booleans, numbers, quantities -------------------------------------------------------


@pytest.mark.parametrize("value", [True, False])
def test_booleans_are_not_integers(value: bool) -> None:
    amount = one_line(amount=int(value))
    amount["lines"][0]["amount_cents"] = value
    total = one_line(amount=int(value))
    total["total_cents"] = value
    fuel = one_line(amount=1, product_group="fuel", fuel_ml=value)
    quantity = one_line(amount=1)
    quantity["lines"][0]["quantity"] = value
    for obj in (amount, total, fuel, quantity):
        with pytest.raises(InvalidEvent) as info:
            parse(obj)
        assert info.value.reason == "invalid_field"
        assert "must be" in info.value.detail


def test_integers_beyond_64_bits_are_not_accepted_as_amounts() -> None:
    raw = CONTRACT_EXAMPLE.replace(b'"amount_cents": 398', b'"amount_cents": 18446744073709551617')
    assert reason(raw) in {"invalid_field", "invalid_json"}


def test_amount_bounds() -> None:
    zero = one_line(amount=0)
    assert parse(zero).lines[0].amount_cents == 0
    assert reason(encode(one_line(amount=10_000_000_001))) == "invalid_field"


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        (b"2", Decimal(2)),
        (b"1", Decimal(1)),
        (b"0.1", Decimal("0.1")),
        (b"0.3", Decimal("0.3")),
        (b"1.25", Decimal("1.25")),
        (b"0.001", Decimal("0.001")),
        (b"2.345", Decimal("2.345")),
        (b"1e2", Decimal(100)),
        (b"2.0", Decimal(2)),
        (b"1000000", Decimal(1_000_000)),
    ],
)
def test_quantity_is_the_decimal_that_was_written(written: bytes, expected: Decimal) -> None:
    raw = CONTRACT_EXAMPLE.replace(b'"quantity": 2', b'"quantity": ' + written)
    quantity = parse_swipe(raw).lines[0].quantity
    assert isinstance(quantity, Decimal)
    # Exactly the written decimal, not the binary float's expansion (0.1000000000000000055...).
    assert quantity == expected


def test_quantity_keeps_three_decimals() -> None:
    raw = CONTRACT_EXAMPLE.replace(b'"quantity": 2', b'"quantity": 1.0004')
    assert parse_swipe(raw).lines[0].quantity == Decimal("1.000")


def test_quantity_above_the_limit_is_rejected() -> None:
    raw = CONTRACT_EXAMPLE.replace(b'"quantity": 2', b'"quantity": 1000000.5')
    assert reason(raw) == "invalid_field"


# --- field limits ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "event_id",
    ["E", " ", "E" * 128, "~!@#$%^&*()_+{}|:<>?`-=[]\\;',./\"", "POS 0042/2026-11-21#173"],
)
def test_event_id_accepts_printable_ascii(event_id: str) -> None:
    assert parse(example() | {"event_id": event_id}).event_id == event_id


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1))
def test_any_printable_ascii_event_id_up_to_128(event_id: str) -> None:
    raw = encode(example() | {"event_id": event_id})
    if len(event_id) <= 128:
        assert parse_swipe(raw).event_id == event_id
    else:
        assert reason(raw) == "invalid_field"


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=1, max_size=128).filter(lambda s: any(not " " <= c <= "~" for c in s)))
def test_an_event_id_with_any_other_character_is_rejected(event_id: str) -> None:
    assert reason(encode(example() | {"event_id": event_id})) == "invalid_field"


@pytest.mark.parametrize("card", ["123456", "0" * 20, "000123", "63900012345678901234"])
def test_card_of_6_to_20_digits_is_kept_as_text(card: str) -> None:
    assert parse(example() | {"card": card}).card == card


@settings(max_examples=40, deadline=None)
@given(st.text(alphabet="0123456789", min_size=0, max_size=30))
def test_card_length_limits(card: str) -> None:
    raw = encode(example() | {"card": card})
    if 6 <= len(card) <= 20:
        assert parse_swipe(raw).card == card
    else:
        assert reason(raw) == "invalid_field"


@pytest.mark.parametrize("store_id", ["S", "S" * 32, "S 0042", "store#1"])
def test_store_id_limits(store_id: str) -> None:
    assert parse(example() | {"store_id": store_id}).store_id == store_id


def test_a_swipe_is_immutable() -> None:
    swipe = parse_swipe(CONTRACT_EXAMPLE)
    with pytest.raises(AttributeError):
        swipe.card = "123456"  # type: ignore[misc]


def test_parsing_does_not_depend_on_key_order() -> None:
    obj = example()
    reordered = dict(reversed(list(copy.deepcopy(obj).items())))
    reordered["lines"] = [dict(reversed(list(line.items()))) for line in reordered["lines"]]
    assert parse(reordered) == parse(obj)


def test_offsets_other_than_whole_hours() -> None:
    swipe = parse(example() | {"occurred_at": "2026-11-21T17:48:12+05:45"})
    assert swipe.occurred_at == datetime(2026, 11, 21, 12, 3, 12, tzinfo=UTC)
    assert swipe.occurred_at.tzinfo == timezone(timedelta(hours=5, minutes=45))
