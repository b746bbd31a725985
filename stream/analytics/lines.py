"""The messages of ``loyalty.purchase-lines`` (internal): one item per swipe, its lines as columns.

Version 3 (what the worker sends): a header line, then one ``JSONCompactEachRow`` row per
swipe item (the item below, as is), which ClickHouse parses and explodes into lines itself
(``purchase_swipes`` and its view, migration 010)::

    {"v":3,"lines":N,"households":[household_key, ...]}
    [event_id, occurred_at, month, store_id, household_key, ..., [code, ...]]
    [...]

The header says what the analytics stage needs without reading the rows: ``lines``, the
purchase lines the items hold (the rows-written metric), and ``households``, the distinct
household keys (the erased-households check: a message naming an erased household takes the
Python path, which drops that household's rows).

Version 2 (still read: messages already on the topic at an upgrade, and tools)::

    {"v": 2, "swipes": [[event_id, occurred_at (UTC, ...Z), month (first day), store_id,
                         household_key, co_op, payment_method, kind, campaign_id, business (0/1),
                         [sku, ...], [product_group, ...], [quantity, ...], [amount_cents, ...],
                         [fuel_ml, ...], [code, ...]], ...]}

Amounts, quantities and fuel are as on the swipe (positive); the sink signs a return's.
``code`` is ``models.bonus``'s line code (not eligible, eligible, in the campaign). One small
list per swipe instead of a 16-key object per line: the swipe path builds it with a few list
comprehensions and the sink checks the swipe's fields once, not once per line.

Version 1 (a JSON array of row objects, ``row_to_tuple``'s input) is still read: messages
already on the topic when a worker is upgraded, and tools that write rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from operator import attrgetter, itemgetter
from typing import Any

import orjson

from models.bonus import IN_CAMPAIGN, NOT_ELIGIBLE
from stream.analytics.sink import COLUMNS, KINDS, row_to_tuple

VERSION = 3
_V2 = 2
_V3_PREFIX = b'{"v":3,'
_QUANTUM = Decimal("0.001")
_MAX_QUANTITY = Decimal(10) ** 15
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_UINT64_MAX = 2**64 - 1
_CODES = frozenset({0, 1, 2})
_FIELDS = 16
_quantities: dict[tuple[Any, int], Decimal] = {}
_instants: dict[str, datetime] = {}
_months: dict[str, date] = {}


def swipe_item(
    *,
    event_id: str,
    occurred_at: str,
    month: str,
    store_id: str,
    household_key: int,
    co_op: str,
    payment_method: str,
    kind: str,
    campaign_id: str,
    business: bool,
    lines: Sequence[Any],
    codes: tuple[int, ...],
) -> list[Any]:
    """One swipe's entry of a version 2 message (``lines``: the swipe's line objects).

    The line columns come from one C-level pass (``attrgetter`` over the lines, transposed by
    ``zip``): no Python bytecode per line on the swipe path. Columns are tuples (JSON arrays).
    """
    columns: list[tuple[Any, ...]] = [(), (), (), (), ()]
    if lines:
        columns = list(zip(*map(_LINE_COLUMNS, lines), strict=True))
    skus, groups, quantities, amounts, fuels = columns
    if lines:
        if type(quantities[0]) is Decimal:  # one parser made all of a swipe's lines
            quantities = tuple(str(q) for q in quantities)  # the reference parser's Decimals
        if None in fuels:
            fuels = tuple(map(_NO_FUEL.get, fuels, fuels))  # None -> 0, in C
    return [
        event_id,
        occurred_at,
        month,
        store_id,
        household_key,
        co_op,
        payment_method,
        kind,
        campaign_id,
        1 if business else 0,
        skus,
        groups,
        quantities,
        amounts,
        fuels,
        codes,
    ]


_NO_FUEL: dict[Any, int] = {None: 0}
_LINE_COLUMNS = attrgetter("sku", "product_group", "quantity", "amount_cents", "fuel_ml")


def encode(items: list[list[Any]]) -> bytes:
    """A version 3 message of ``items`` (``swipe_item``'s), one row per item after the header.

    No Python loop per swipe: the line count, the household keys and the rows are C-level
    passes (``map``) over the items.
    """
    header = {
        "v": VERSION,
        "lines": sum(map(len, map(_SKUS, items))),
        "households": sorted(set(map(_HOUSEHOLD, items))),
    }
    return b"\n".join([orjson.dumps(header), *map(orjson.dumps, items)])


def encode_v2(items: list[list[Any]]) -> bytes:
    """A version 2 message of ``items`` (tools, tests and the benchmark compare the paths)."""
    return orjson.dumps({"v": _V2, "swipes": items})


class SwipesHeader:
    """A version 3 message's header and rows (``rows``: ``JSONCompactEachRow`` text)."""

    __slots__ = ("households", "lines", "rows")

    def __init__(self, lines: int, households: list[int], rows: bytes) -> None:
        self.lines, self.households, self.rows = lines, households, rows


def is_v3(value: bytes) -> bool:
    """Whether ``value`` is (meant to be) a version 3 message: its header comes first."""
    return value.startswith(_V3_PREFIX)


def swipes_header(value: bytes) -> SwipesHeader:
    """A version 3 message's header, checked, and its rows, not read (ClickHouse reads them).

    ``ValueError`` for a header that is not ``{"v":3,"lines":N,"households":[...]}`` with
    ``N`` a count and the households UInt64 keys. Only C-level passes over the
    household list; the rows are ClickHouse's to check.
    """
    end = value.find(b"\n")
    head = value if end < 0 else value[:end]
    try:
        header = orjson.loads(head)
    except orjson.JSONDecodeError as exc:
        raise ValueError(
            f"purchase lines: a version 3 header must be a JSON object: {exc}"
        ) from None
    if type(header) is not dict or header.get("v") != VERSION:
        raise ValueError("purchase lines: a version 3 header must be an object with v = 3")
    lines, households = header.get("lines"), header.get("households")
    if type(lines) is not int or lines < 0:
        raise ValueError(f"purchase lines: the header's lines must be a count, got {lines!r:.40}")
    if type(households) is not list or (
        households
        and (
            set(map(type, households)) != {int}
            or min(households) < 0
            or max(households) > _UINT64_MAX
        )
    ):
        raise ValueError("purchase lines: the header's households must be a list of UInt64 keys")
    if (lines == 0) != (end < 0 or not value[end + 1 :].strip()):
        raise ValueError("purchase lines: the header's line count does not match its rows")
    return SwipesHeader(lines, households, b"" if end < 0 else value[end + 1 :])


def _v3_tuples(value: bytes) -> list[tuple[Any, ...]]:
    header = swipes_header(value)
    out: list[tuple[Any, ...]] = []
    keys: set[int] = set()
    for line in header.rows.splitlines():
        if line.strip():
            item = orjson.loads(line)
            out += _item_tuples(item)
            keys.add(item[4])
    if len(out) != header.lines or keys != set(header.households):
        raise ValueError("purchase lines: the version 3 header does not match its rows")
    return out


def message_tuples(value: bytes) -> list[tuple[Any, ...]]:
    """A message (any version) -> rows in ``sink.COLUMNS`` order; ``ValueError`` (or
    ``TypeError``/``KeyError``) for anything that does not fit the table: nothing of it is used.

    The Python path: versions 1 and 2, and a version 3 message the analytics stage cannot
    hand to ClickHouse whole (one naming an erased household), or a tool reading the topic.
    """
    if is_v3(value):
        return _v3_tuples(value)
    payload = orjson.loads(value)
    if isinstance(payload, list):
        return [row_to_tuple(row) for row in payload]
    if not isinstance(payload, dict) or payload.get("v") != _V2:
        raise ValueError("expected a JSON array of rows, a version 2 object or a version 3 header")
    items = payload.get("swipes")
    if not isinstance(items, list):
        raise ValueError("purchase lines: swipes must be a list")
    out: list[tuple[Any, ...]] = []
    for item in items:
        out += _item_tuples(item)
    return out


def message_rows(value: bytes) -> list[dict[str, Any]]:
    """A message (either version) -> row objects (version 1's shape), for tools and tests."""
    rows = []
    for row in message_tuples(value):
        d = dict(zip(COLUMNS, row, strict=True))
        d["occurred_at"] = d["occurred_at"].strftime("%Y-%m-%dT%H:%M:%SZ")
        d["month"] = d["month"].isoformat()
        d["quantity"] = str(d["quantity"])
        rows.append(d)
    return rows


_SKUS = itemgetter(10)
_HOUSEHOLD = itemgetter(4)


def _text(value: Any, name: str, *, required: bool = True) -> str:
    if type(value) is not str or (required and not value):
        raise ValueError(f"purchase line: {name} must be a non-empty string, got {value!r}")
    return value


def _instant(text: Any) -> datetime:
    found = _instants.get(text) if type(text) is str else None
    if found is None:
        try:
            parsed = datetime.fromisoformat(_text(text, "occurred_at"))
        except ValueError:
            raise ValueError(f"purchase line: bad occurred_at {text!r}") from None
        if parsed.tzinfo is None:
            raise ValueError("purchase line: occurred_at must carry an offset (UTC, ...Z)")
        found = parsed.astimezone(UTC).replace(microsecond=0)
        if len(_instants) > 10_000:
            _instants.clear()
        _instants[text] = found
    return found


def _month(text: Any) -> date:
    found = _months.get(text) if type(text) is str else None
    if found is None:
        try:
            found = date.fromisoformat(_text(text, "month"))
        except ValueError:
            raise ValueError(f"purchase line: bad month {text!r}") from None
        if found.day != 1:
            raise ValueError(f"purchase line: month must be the first day of a month: {found}")
        _months[text] = found
    return found


def _quantity(raw: Any, sign: int) -> Decimal:
    key = (raw, sign)
    found = _quantities.get(key) if type(raw) in (int, float, str) else None
    if found is None:
        if type(raw) not in (int, float, str):
            raise ValueError(f"purchase line: quantity must be a number, got {raw!r}")
        try:
            found = (Decimal(str(raw)) * sign).quantize(_QUANTUM)
        except InvalidOperation:
            raise ValueError(f"purchase line: bad quantity {raw!r}") from None
        if not found.is_finite() or abs(found) >= _MAX_QUANTITY:
            raise ValueError(f"purchase line: quantity out of range: {raw!r}")
        if len(_quantities) > 10_000:
            _quantities.clear()
        _quantities[key] = found
    return found


def _item_tuples(item: Any) -> list[tuple[Any, ...]]:
    if type(item) is not list or len(item) != _FIELDS:
        raise ValueError(f"purchase line: a swipe item has {_FIELDS} fields")
    (
        event_id,
        occurred_text,
        month_text,
        store_id,
        household_key,
        co_op,
        payment_method,
        kind,
        campaign_id,
        business,
        skus,
        groups,
        quantities,
        amounts,
        fuels,
        codes,
    ) = item
    _text(event_id, "event_id")
    _text(store_id, "store_id")
    _text(co_op, "co_op", required=False)
    _text(payment_method, "payment_method", required=False)
    _text(campaign_id, "campaign_id", required=False)
    if kind not in KINDS:
        raise ValueError(f"purchase line: kind must be purchase or return, got {kind!r}")
    if type(household_key) is not int or not 0 <= household_key <= _UINT64_MAX:
        raise ValueError(f"purchase line: bad household_key {household_key!r}")
    if business not in (0, 1) or type(business) is not int:
        raise ValueError(f"purchase line: business must be 0 or 1, got {business!r}")
    occurred = _instant(occurred_text)
    month = _month(month_text)
    count = len(skus) if type(skus) is list else -1
    columns = (groups, quantities, amounts, fuels, codes)
    if not 0 < count <= 65536 or any(type(c) is not list or len(c) != count for c in columns):
        raise ValueError("purchase line: the line columns must be lists of one length")
    sign = -1 if kind == "return" else 1
    eligible_ok = not business
    rows = []
    for line_no in range(count):
        sku, group, amount, fuel, code = (
            skus[line_no],
            groups[line_no],
            amounts[line_no],
            fuels[line_no],
            codes[line_no],
        )
        if type(sku) is not str or type(group) is not str:
            raise ValueError("purchase line: sku and product_group must be strings")
        if type(amount) is not int or type(fuel) is not int or type(code) is not int:
            raise ValueError("purchase line: amount_cents, fuel_ml and code must be integers")
        if code not in _CODES:
            raise ValueError("purchase line: amount_cents, fuel_ml and code must be integers")
        amount *= sign
        fuel *= sign
        if not (_INT64_MIN <= amount <= _INT64_MAX and _INT64_MIN <= fuel <= _INT64_MAX):
            raise ValueError("purchase line: amount_cents or fuel_ml out of range")
        rows.append(
            (
                event_id,
                line_no,
                occurred,
                month,
                store_id,
                household_key,
                co_op,
                sku,
                group,
                _quantity(quantities[line_no], sign),
                amount,
                fuel,
                payment_method,
                1 if eligible_ok and code != NOT_ELIGIBLE else 0,
                kind,
                campaign_id if code == IN_CAMPAIGN else "",
            )
        )
    return rows
