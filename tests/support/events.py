"""Contract-shaped events for tests, built as dicts and encoded as the wire bytes."""

from __future__ import annotations

from typing import Any

import orjson

CARD = "6390001234567890"

# The contract's example, verbatim.
CONTRACT_EXAMPLE = b"""{
  "schema": "swipe/1",
  "event_id": "POS-0042-20261121-000173",
  "kind": "purchase",
  "card": "6390001234567890",
  "store_id": "S0042",
  "occurred_at": "2026-11-21T14:03:12+02:00",
  "currency": "EUR",
  "payment_method": "s_etukortti_visa",
  "total_cents": 2347,
  "lines": [
    {"sku": "6408430000012", "product_group": "dairy", "quantity": 2, "amount_cents": 398},
    {"sku": "FUEL95", "product_group": "fuel", "quantity": 1, "amount_cents": 1949, "fuel_ml": 10250}
  ]
}"""  # noqa: E501


def swipe(
    event_id: str,
    card: str = CARD,
    *,
    kind: str = "purchase",
    store_id: str = "S0001",
    occurred_at: str = "2026-11-21T14:03:12+02:00",
    payment_method: str = "payment_card",
    lines: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    lines = lines or [
        {"sku": "6408430000012", "product_group": "dairy", "quantity": 2, "amount_cents": 398}
    ]
    return {
        "schema": "swipe/1",
        "event_id": event_id,
        "kind": kind,
        "card": card,
        "store_id": store_id,
        "occurred_at": occurred_at,
        "currency": "EUR",
        "payment_method": payment_method,
        "total_cents": sum(line["amount_cents"] for line in lines),
        "lines": lines,
        **extra,
    }


def household(
    household_id: str,
    *,
    co_op: str = "hok-elanto",
    business: bool = False,
    capital_required_cents: int = 0,
    updated_at: str = "2026-11-01T09:00:00+02:00",
    person_ids: list[str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    persons = person_ids or [f"P-{household_id}"]
    return {
        "schema": "register/1",
        "type": "household",
        "household_id": household_id,
        "co_op": co_op,
        "head_person_id": persons[0],
        "person_ids": persons,
        "business": business,
        "status": "active",
        "capital_required_cents": capital_required_cents,
        "payout_account": f"FI21{household_id}",
        "updated_at": updated_at,
        **extra,
    }


def card(
    number: str,
    household_id: str,
    *,
    status: str = "active",
    valid_until: str = "2030-12-31",
    updated_at: str = "2026-11-01T09:00:00+02:00",
) -> dict[str, Any]:
    return {
        "schema": "register/1",
        "type": "card",
        "card": number,
        "household_id": household_id,
        "person_id": f"P-{household_id}",
        "status": status,
        "valid_until": valid_until,
        "updated_at": updated_at,
    }


def households_with_cards(cards: dict[str, str]) -> list[dict[str, Any]]:
    """A household event and a card event for each ``card number -> household id``."""
    return [e for c, h in cards.items() for e in (household(h), card(c, h))]


def person(person_id: str, household_id: str, bans: list[str] | None = None) -> dict[str, Any]:
    return {
        "schema": "register/1",
        "type": "person",
        "person_id": person_id,
        "household_id": household_id,
        "bans": bans or [],
        "email_marketing": True,
        "sms_marketing": False,
        "updated_at": "2026-09-01T09:00:00+02:00",
    }


def capital_payment(payment_id: str, household_id: str, amount_cents: int) -> dict[str, Any]:
    return {
        "schema": "register/1",
        "type": "capital_payment",
        "payment_id": payment_id,
        "household_id": household_id,
        "amount_cents": amount_cents,
        "paid_at": "2026-11-03T12:00:00+02:00",
    }


def encode(event: dict[str, Any]) -> bytes:
    return orjson.dumps(event)


def keyed(event: dict[str, Any]) -> tuple[bytes, bytes]:
    """(key, value) as the contract keys them."""
    if event["schema"] == "swipe/1":
        key = event["card"]
    elif event["type"] == "capital_payment":
        key = f"capital:{event['payment_id']}"
    elif event["type"] == "card":
        key = f"card:{event['card']}"
    elif event["type"] == "erasure":
        key = f"erasure:{event['request_id']}"
    else:
        key = f"{event['type']}:{event[event['type'] + '_id']}"
    return key.encode(), encode(event)
