"""Purchase-line messages (``stream.analytics.lines``): version 2 gives the rows version 1 gave.

The reference below is how the swipe path built its rows before version 2 (one object per
line, signed on the producer side); both go through the sink's conversion and must agree.
"""

from __future__ import annotations

import json
from datetime import UTC
from typing import Any

import orjson
import pytest

from models.bonus import IN_CAMPAIGN, NOT_ELIGIBLE, contribution
from models.rules import load_rules
from models.swipe import SwipeLike, decode_swipe, parse_swipe
from stream.analytics.lines import encode, message_rows, message_tuples, swipe_item
from stream.analytics.sink import row_to_tuple
from stream.settings import DEFAULT_RULES
from tests.support.events import CONTRACT_EXAMPLE

RULES = load_rules(DEFAULT_RULES)


def reference_rows(swipe: SwipeLike, hkey: int, co_op: str, business: bool) -> list[dict[str, Any]]:
    c = contribution(swipe, RULES)
    sign = swipe.sign
    return [
        {
            "event_id": swipe.event_id,
            "line_no": i,
            "occurred_at": swipe.occurred_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "month": c.month.first_day.isoformat(),
            "store_id": swipe.store_id,
            "household_key": hkey,
            "co_op": co_op,
            "sku": line.sku,
            "product_group": line.product_group,
            "quantity": str(sign * line.quantity),
            "amount_cents": sign * line.amount_cents,
            "fuel_ml": sign * (line.fuel_ml or 0),
            "payment_method": swipe.payment_method,
            "bonus_eligible": int(not business and code != NOT_ELIGIBLE),
            "kind": swipe.kind,
            "campaign_id": c.campaign_id if code == IN_CAMPAIGN else "",
        }
        for i, (line, code) in enumerate(zip(swipe.lines, c.line_codes, strict=True))
    ]


def item(swipe: SwipeLike, hkey: int, co_op: str, business: bool) -> list[Any]:
    c = contribution(swipe, RULES)
    return swipe_item(
        event_id=swipe.event_id,
        occurred_at=swipe.occurred_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        month=c.month.first_day.isoformat(),
        store_id=swipe.store_id,
        household_key=hkey,
        co_op=co_op,
        payment_method=swipe.payment_method,
        kind=swipe.kind,
        campaign_id=c.campaign_id,
        business=business,
        lines=list(swipe.lines),
        codes=c.line_codes,
    )


def variants() -> list[bytes]:
    example = json.loads(CONTRACT_EXAMPLE)
    out = [CONTRACT_EXAMPLE]
    out.append(json.dumps(example | {"kind": "return"}).encode())
    odd = json.loads(CONTRACT_EXAMPLE)
    odd["lines"][0]["quantity"] = 0.1
    odd["lines"][1]["quantity"] = 2.0005
    out.append(json.dumps(odd).encode())
    out.append(json.dumps(odd | {"kind": "return", "payment_method": "invoice"}).encode())
    return out


@pytest.mark.parametrize("raw", variants())
@pytest.mark.parametrize("parser", [decode_swipe, parse_swipe], ids=["hot", "reference"])
@pytest.mark.parametrize("business", [False, True])
def test_version_2_gives_the_rows_of_version_1(raw: bytes, parser: Any, business: bool) -> None:
    swipe = parser(raw)
    hkey = 2**64 - 5
    expected = [row_to_tuple(r) for r in reference_rows(swipe, hkey, "hok-elanto", business)]
    assert message_tuples(encode([item(swipe, hkey, "hok-elanto", business)])) == expected
    # and version 1 messages are still read
    v1 = orjson.dumps(reference_rows(swipe, hkey, "hok-elanto", business))
    assert message_tuples(v1) == expected
    assert [row_to_tuple(r) for r in message_rows(v1)] == expected


def good() -> list[Any]:
    swipe = decode_swipe(CONTRACT_EXAMPLE)
    return item(swipe, 7, "hok-elanto", False)


BAD = {
    "not a list": lambda i: "x",
    "short": lambda i: i[:15],
    "event_id": lambda i: [5, *i[1:]],
    "occurred_at": lambda i: [i[0], "yesterday", *i[2:]],
    "no offset": lambda i: [i[0], "2026-11-21T12:03:12", *i[2:]],
    "month": lambda i: [*i[:2], "2026-11-02", *i[3:]],
    "kind": lambda i: [*i[:7], "refund", *i[8:]],
    "household_key": lambda i: [*i[:4], -1, *i[5:]],
    "business": lambda i: [*i[:9], 2, *i[10:]],
    "columns of other lengths": lambda i: [*i[:11], i[11][:1], *i[12:]],
    "no lines": lambda i: [*i[:10], [], [], [], [], [], []],
    "amount string": lambda i: [*i[:13], ["398", 1949], *i[14:]],
    "amount bool": lambda i: [*i[:13], [True, 1949], *i[14:]],
    "code": lambda i: [*i[:15], [3, 1]],
    "quantity": lambda i: [*i[:12], ["x", 1], *i[13:]],
    "quantity list": lambda i: [*i[:12], [[1], 1], *i[13:]],
}


@pytest.mark.parametrize("change", BAD.values(), ids=BAD.keys())
def test_a_message_that_does_not_fit_is_refused_whole(change: Any) -> None:
    message = orjson.dumps({"v": 2, "swipes": [good(), change(good())]})
    with pytest.raises((ValueError, TypeError, KeyError)):
        message_tuples(message)


@pytest.mark.parametrize("payload", [b"{}", b'{"v": 3, "swipes": []}', b'{"v": 2}', b"1"])
def test_an_unknown_shape_is_refused(payload: bytes) -> None:
    with pytest.raises(ValueError):
        message_tuples(payload)
