"""The checkout's swipe event (contract section 2), validated at the edge."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from operator import attrgetter
from typing import Annotated, Any, Literal, Protocol

import msgspec

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
    partner_id: str = ""  # contract section 12: "" when not from a partner's checkout

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
    partner_id = v.ascii_text(obj, "partner_id", 32, optional=True)
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
        partner_id=partner_id,
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


# --- the hot path ------------------------------------------------------------------------
#
# ``decode_swipe`` gives the same answer as ``parse_swipe`` for every input, several times
# faster: msgspec decodes and type-checks the event in C into the structs below, and a few
# cheap checks in Python finish the contract's rules. It only ever *accepts* (a subset of what
# ``parse_swipe`` accepts, with the same values); anything it is not sure of (any msgspec error,
# a value at a limit, bytes orjson might reject that msgspec skips) goes to ``parse_swipe``,
# which then accepts it or raises the dead-letter reason. So the reason codes are
# ``parse_swipe``'s by construction, and the tests compare both paths on every case.
#
# A new optional swipe field: add it to ``Swipe`` (with a default) and ``swipe_from_dict``, to
# ``WireSwipe`` (same name and default) and ``_checked``, and to ``SwipeLike`` if the pipeline
# reads it; ``tests/models/test_swipe.py`` runs every case through both paths.


class LineLike(Protocol):
    """What the bonus arithmetic and the analytics rows read of a line (either path)."""

    @property
    def sku(self) -> str: ...
    @property
    def product_group(self) -> str: ...
    @property
    def quantity(self) -> Decimal | int | float: ...
    @property
    def amount_cents(self) -> int: ...
    @property
    def fuel_ml(self) -> int | None: ...


class SwipeLike(Protocol):
    """A validated swipe: ``Swipe`` (reference parser) or ``WireSwipe`` (hot path)."""

    @property
    def event_id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def card(self) -> str: ...
    @property
    def store_id(self) -> str: ...
    @property
    def occurred_at(self) -> datetime: ...
    @property
    def payment_method(self) -> str: ...
    @property
    def total_cents(self) -> int: ...
    @property
    def lines(self) -> Sequence[LineLike]: ...
    @property
    def partner_id(self) -> str: ...
    @property
    def sign(self) -> int: ...


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# orjson rejects numbers that overflow a double (1e400) even in ignored fields; msgspec skips
# them. A digit before an exponent, or 300 digits in a row, sends the event to the slow path
# (digits mapped to 0 first: two substring searches, far cheaper than a regular expression).
_DIGITS_TO_ZERO = bytes.maketrans(b"123456789E", b"000000000e")
_EXPONENT = b"0e"
_LONG_NUMBER = b"0" * 300
# orjson refuses nesting deeper than 1024; msgspec's limit differs. Far below both: fast path.
_MAX_FAST_NESTING = 500
_MIN_FAST_QUANTITY = 0.001  # quantize(0.001) of anything >= this is > 0
_MAX_QUANTITY_NUMBER = 1_000_000
_NO_PARTNER = "\x00no partner"  # compared by identity: never a decoded string


# Constraints msgspec checks in C while decoding. They only choose the fast path: a value
# outside them sends the swipe to ``parse_swipe``, which accepts it or names the reason.
_Text64 = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
_Cents = Annotated[int, msgspec.Meta(ge=0, le=v.MAX_CENTS)]
_Millilitres = Annotated[int, msgspec.Meta(ge=0, le=v.MAX_ML)]
_Quantity = (
    Annotated[int, msgspec.Meta(ge=1, le=_MAX_QUANTITY_NUMBER)]
    | Annotated[float, msgspec.Meta(ge=_MIN_FAST_QUANTITY, le=_MAX_QUANTITY_NUMBER)]
)


class WireLine(msgspec.Struct, gc=False, frozen=True):
    """A line as msgspec decodes it; ``quantity`` is the number as written (see ``_checked``)."""

    sku: _Text64
    product_group: _Text64
    quantity: _Quantity
    amount_cents: _Cents
    fuel_ml: _Millilitres | None = None


class WireSwipe(msgspec.Struct, gc=False):
    """A swipe as msgspec decodes it; valid only once ``decode_swipe`` returned it."""

    schema: Literal["swipe/1"]
    event_id: str
    kind: Literal["purchase", "return"]
    card: str
    store_id: str
    occurred_at_text: str = msgspec.field(name="occurred_at")
    currency: Literal["EUR"]
    payment_method: str
    total_cents: int
    lines: list[WireLine]
    original_event_id: str | None = None  # "" once checked, as in ``Swipe``
    # ``_NO_PARTNER`` (this very object) when absent, "" once checked, as in ``Swipe``; a null
    # fails msgspec's type check and goes to ``parse_swipe``, which accepts it as absent.
    partner_id: str = _NO_PARTNER
    # Not on the wire (no JSON key can reach it usefully: it is always set after decoding).
    occurred_at: datetime = msgspec.field(default=_EPOCH, name="~occurred_at (not on the wire)")

    @property
    def sign(self) -> int:
        return -1 if self.kind == "return" else 1


_decoder = msgspec.json.Decoder(WireSwipe)
_AMOUNT = attrgetter("amount_cents")


def decode_swipe(raw: bytes) -> SwipeLike:
    """``parse_swipe``, fast: the same swipes accepted, the same reasons for the rest."""
    fast = _fast(raw)
    return fast if fast is not None else parse_swipe(raw)


def _fast(raw: bytes) -> WireSwipe | None:
    if len(raw) > MAX_BYTES:
        return None
    zeroed = raw.translate(_DIGITS_TO_ZERO)
    if _EXPONENT in zeroed or _LONG_NUMBER in zeroed:
        return None
    if raw.count(b"[") + raw.count(b"{") > _MAX_FAST_NESTING:
        return None
    # ASCII without a backslash or DEL: JSON allows no raw control characters in a string, so
    # every decoded string is printable ASCII and the per-line printable checks can be skipped.
    plain = raw.isascii() and b"\\" not in raw and b"\x7f" not in raw
    if not raw.isascii():
        try:
            raw.decode()
        except UnicodeDecodeError:
            return None
    try:
        wire = _decoder.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        return None
    return wire if _checked(wire, plain) else None


def _printable_ascii(value: str, max_len: int) -> bool:
    return 1 <= len(value) <= max_len and value.isascii() and value.isprintable()


def _checked(w: WireSwipe, plain: bool) -> bool:
    """The rules msgspec's types do not cover; False: let ``parse_swipe`` decide."""
    if not (
        _printable_ascii(w.event_id, 128)
        and 6 <= len(w.card) <= 20
        and w.card.isascii()
        and w.card.isdigit()
        and _printable_ascii(w.store_id, 32)
        and w.payment_method in PAYMENT_METHODS
        and 0 <= w.total_cents <= v.MAX_CENTS * MAX_LINES
        and 1 <= len(w.lines) <= MAX_LINES
        and (w.original_event_id is None or _printable_ascii(w.original_event_id, 128))
        and (w.partner_id is _NO_PARTNER or _printable_ascii(w.partner_id, 32))
    ):
        return False
    if w.original_event_id is None:
        w.original_event_id = ""
    if w.partner_id is _NO_PARTNER:
        w.partner_id = ""
    # Lengths and ranges of the lines were checked by msgspec (``WireLine``'s constraints).
    if not plain:
        for line in w.lines:
            if not (line.sku.isprintable() and line.product_group.isprintable()):
                return False
    if sum(map(_AMOUNT, w.lines)) != w.total_cents:
        return False
    text = w.occurred_at_text
    if not v.RFC3339.fullmatch(text):
        return False
    try:
        w.occurred_at = datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError:
        return False
    return True
