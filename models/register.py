"""The register feed (contract section 3): entity snapshots and capital payments."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from models import validate as v
from models.errors import InvalidEvent
from models.jsonload import load_object

SCHEMA = "register/1"
MAX_BYTES = 64 * 1024
CARD_STATUSES = frozenset({"active", "blocked", "expired"})
HOUSEHOLD_STATUSES = frozenset({"active", "ended"})
BAN_CODES = frozenset(
    {
        "owner_mail",
        "direct_mail",
        "phone_marketing",
        "surveys",
        "warranty_receipts",
        "product_data_marketing",
        "product_data_services",
        "email",
    }
)


@dataclass(frozen=True, slots=True)
class HouseholdSnapshot:
    household_id: str
    co_op: str
    head_person_id: str
    person_ids: tuple[str, ...]
    business: bool
    status: str
    ended_at: datetime | None
    capital_required_cents: int
    payout_account: str
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class CardSnapshot:
    card: str
    household_id: str
    person_id: str
    status: str
    valid_until: date | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class PersonSnapshot:
    person_id: str
    household_id: str
    bans: frozenset[str]
    email_marketing: bool
    sms_marketing: bool
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class CapitalPayment:
    payment_id: str
    household_id: str
    amount_cents: int
    paid_at: datetime


@dataclass(frozen=True, slots=True)
class ErasureRequest:
    """Contract section 9: delete every piece of personal data held on the household."""

    request_id: str
    household_id: str
    requested_at: datetime


RegisterEvent = HouseholdSnapshot | CardSnapshot | PersonSnapshot | CapitalPayment | ErasureRequest


def parse_register(raw: bytes) -> RegisterEvent:
    """Parse and validate one register event; raise ``InvalidEvent`` with a reason."""
    obj = load_object(raw, MAX_BYTES)
    schema = obj.get("schema")
    if schema != SCHEMA:
        raise InvalidEvent("unsupported_schema", f"schema must be {SCHEMA!r}, got {schema!r}")
    kind = obj.get("type")
    parser = _PARSERS.get(kind) if isinstance(kind, str) else None
    if parser is None:
        raise InvalidEvent("unknown_enum", f"type must be one of {', '.join(sorted(_PARSERS))}")
    return parser(obj)


def _household(obj: dict[str, Any]) -> HouseholdSnapshot:
    status = v.choice(obj, "status", HOUSEHOLD_STATUSES)
    capital = v.integer(obj, "capital_required_cents", 0, v.MAX_CENTS)
    return HouseholdSnapshot(
        household_id=v.identifier(obj, "household_id"),
        co_op=v.ascii_text(obj, "co_op", 64),
        head_person_id=v.identifier(obj, "head_person_id", optional=True),
        person_ids=v.identifier_list(obj, "person_ids", 100),
        business=v.boolean(obj, "business"),
        status=status,
        ended_at=v.timestamp(obj, "ended_at") if obj.get("ended_at") is not None else None,
        capital_required_cents=capital,
        payout_account=v.ascii_text(obj, "payout_account", 64, optional=True),
        updated_at=v.timestamp(obj, "updated_at"),
    )


def _card(obj: dict[str, Any]) -> CardSnapshot:
    valid_until = (
        v.calendar_date(obj, "valid_until") if obj.get("valid_until") is not None else None
    )
    return CardSnapshot(
        card=v.digits(obj, "card", 6, 20),
        household_id=v.identifier(obj, "household_id"),
        person_id=v.identifier(obj, "person_id", optional=True),
        status=v.choice(obj, "status", CARD_STATUSES),
        valid_until=valid_until,
        updated_at=v.timestamp(obj, "updated_at"),
    )


def _person(obj: dict[str, Any]) -> PersonSnapshot:
    bans = v.string_list(obj, "bans", len(BAN_CODES), 64)
    unknown = sorted(set(bans) - BAN_CODES)
    if unknown:
        raise InvalidEvent("unknown_enum", f"unknown ban code(s): {', '.join(unknown)}")
    return PersonSnapshot(
        person_id=v.identifier(obj, "person_id"),
        household_id=v.identifier(obj, "household_id"),
        bans=frozenset(bans),
        email_marketing=v.boolean(obj, "email_marketing"),
        sms_marketing=v.boolean(obj, "sms_marketing"),
        updated_at=v.timestamp(obj, "updated_at"),
    )


def _capital(obj: dict[str, Any]) -> CapitalPayment:
    return CapitalPayment(
        payment_id=v.ascii_text(obj, "payment_id", 128),
        household_id=v.identifier(obj, "household_id"),
        amount_cents=v.integer(obj, "amount_cents", 1, v.MAX_CENTS),
        paid_at=v.timestamp(obj, "paid_at"),
    )


def _erasure(obj: dict[str, Any]) -> ErasureRequest:
    return ErasureRequest(
        request_id=v.ascii_text(obj, "request_id", 128),
        household_id=v.identifier(obj, "household_id"),
        requested_at=v.timestamp(obj, "requested_at"),
    )


_PARSERS: dict[str, Callable[[dict[str, Any]], RegisterEvent]] = {
    "household": _household,
    "card": _card,
    "person": _person,
    "capital_payment": _capital,
    "erasure": _erasure,
}
