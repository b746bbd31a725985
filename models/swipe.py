"""The checkout's swipe event (contract section 2), validated at the edge."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from models import validate as v
from models.errors import InvalidEvent
from models.jsonload import load_object

SCHEMA = "swipe/1"
MAX_BYTES = 512 * 1024
MAX_LINES = 500
KINDS = frozenset({"purchase", "return"})
PAYMENT_METHODS = frozenset(
    {
        "s_etukortti_visa",
        "payment_card",
        "cash",
        "mobile",
        "invoice",
        "company_card",
        "benefit_voucher",
        "other",
    }
)
CURRENCIES = frozenset({"EUR"})
MAX_QUANTITY = Decimal(1_000_000)


@dataclass(frozen=True, slots=True)
class SwipeLine:
    sku: str
    product_group: str
    quantity: Decimal
    amount_cents: int
    fuel_ml: int | None


@dataclass(frozen=True, slots=True)
class Swipe:
    event_id: str
    kind: str
    card: str
    store_id: str
    occurred_at: datetime
    currency: str
    payment_method: str
    total_cents: int
    lines: tuple[SwipeLine, ...]
    original_event_id: str = ""

    @property
    def sign(self) -> int:
        """+1 for a purchase, -1 for a return (whose amounts are positive on the wire)."""
        return -1 if self.kind == "return" else 1


def parse_swipe(raw: bytes) -> Swipe:
    """Parse and validate one swipe; raise ``InvalidEvent`` with a dead-letter reason."""
    obj = load_object(raw, MAX_BYTES)
    schema = obj.get("schema")
    if schema != SCHEMA:
        raise InvalidEvent("unsupported_schema", f"schema must be {SCHEMA!r}, got {schema!r}")
    return swipe_from_dict(obj)


def swipe_from_dict(obj: dict[str, Any]) -> Swipe:
    event_id = v.ascii_text(obj, "event_id", 128)
    kind = v.choice(obj, "kind", KINDS)
    card = v.digits(obj, "card", 6, 20)
    store_id = v.ascii_text(obj, "store_id", 32)
    occurred_at = v.timestamp(obj, "occurred_at")
    currency = v.require(obj, "currency")
    if not isinstance(currency, str):
        raise InvalidEvent("invalid_field", "currency must be a string")
    if currency not in CURRENCIES:
        raise InvalidEvent("unsupported_currency", f"currency {currency[:8]!r} is not supported")
    payment_method = v.choice(obj, "payment_method", PAYMENT_METHODS)
    total_cents = v.integer(obj, "total_cents", 0, v.MAX_CENTS * MAX_LINES)
    original = v.ascii_text(obj, "original_event_id", 128, optional=True)
    raw_lines = v.require(obj, "lines")
    if not isinstance(raw_lines, list):
        raise InvalidEvent("invalid_field", "lines must be a list")
    if not 1 <= len(raw_lines) <= MAX_LINES:
        raise InvalidEvent(
            "invalid_lines", f"a swipe has 1-{MAX_LINES} lines, got {len(raw_lines)}"
        )
    lines = tuple(_line(i, item) for i, item in enumerate(raw_lines))
    line_sum = sum(line.amount_cents for line in lines)
    if line_sum != total_cents:
        raise InvalidEvent(
            "total_mismatch", f"total_cents {total_cents} != sum of line amounts {line_sum}"
        )
    return Swipe(
        event_id=event_id,
        kind=kind,
        card=card,
        store_id=store_id,
        occurred_at=occurred_at,
        currency=currency,
        payment_method=payment_method,
        total_cents=total_cents,
        lines=lines,
        original_event_id=original,
    )


def _line(index: int, item: Any) -> SwipeLine:
    if not isinstance(item, dict):
        raise InvalidEvent("invalid_field", f"lines[{index}] must be an object")
    try:
        sku = v.text(item, "sku", 64)
        group = v.text(item, "product_group", 64)
        amount = v.integer(item, "amount_cents", 0, v.MAX_CENTS)
        fuel_ml = None if item.get("fuel_ml") is None else v.integer(item, "fuel_ml", 0, v.MAX_ML)
        quantity = _quantity(v.require(item, "quantity"))
    except InvalidEvent as exc:
        raise InvalidEvent(exc.reason, f"lines[{index}].{exc.detail}") from None
    return SwipeLine(sku, group, quantity, amount, fuel_ml)


def _quantity(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidEvent("invalid_field", "quantity must be a number")
    try:
        # str() first: the decimal a person wrote, not the binary float's expansion.
        quantity = Decimal(str(value)).quantize(Decimal("0.001"))
    except InvalidOperation:
        raise InvalidEvent("invalid_field", "quantity must be a finite number") from None
    if not Decimal(0) < quantity <= MAX_QUANTITY:
        raise InvalidEvent("invalid_field", f"quantity must be > 0 and <= {MAX_QUANTITY}")
    return quantity
