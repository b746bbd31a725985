"""The ``purchase_lines`` sink (rows from ``loyalty.purchase-lines`` into ClickHouse in batches)
and the retention of the monthly partitions.

Redeliveries are harmless (ReplacingMergeTree on ``(event_id, line_no)``, read with FINAL), so
the sink only has to avoid losing rows: a failed insert keeps the buffer for the next flush.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from stream import metrics
from stream.clickhouse.engine import ClickHouse
from stream.errors import ClickHouseDataError

TABLE = "purchase_lines"
#: version 3 messages' rows go here; its view (migration 010) writes them to ``TABLE``
SWIPES_TABLE = "purchase_swipes"
#: the order of the tuples ``row_to_tuple`` returns (``inserted_at`` is the table's default)
COLUMNS: tuple[str, ...] = (
    "event_id",
    "line_no",
    "occurred_at",
    "month",
    "store_id",
    "household_key",
    "co_op",
    "sku",
    "product_group",
    "quantity",
    "amount_cents",
    "fuel_ml",
    "payment_method",
    "bonus_eligible",
    "kind",
    "campaign_id",
)
KINDS = frozenset({"purchase", "return"})
_QUANTUM = Decimal("0.001")
_MAX_QUANTITY = Decimal(10) ** 15  # Decimal(18, 3)
_INT64 = (-(2**63), 2**63 - 1)
_UINT64_MAX = 2**64 - 1


def _text(row: Mapping[str, Any], name: str, *, required: bool = True) -> str:
    value = row.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise ValueError(f"purchase line: {name} must be a non-empty string, got {value!r}")
    return value


def _int(row: Mapping[str, Any], name: str, low: int, high: int, default: int | None = None) -> int:
    value = row.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"purchase line: {name} must be an integer, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"purchase line: {name} = {value} is out of range")
    return value


def row_to_tuple(row: Mapping[str, Any]) -> tuple[Any, ...]:
    """One line as it travels on ``loyalty.purchase-lines`` -> a tuple in ``COLUMNS`` order.

    Raises ``ValueError`` for a row that does not fit the table (the caller dead-letters the
    message instead of inserting half of it).
    """
    try:
        occurred = datetime.fromisoformat(_text(row, "occurred_at"))
    except ValueError:
        raise ValueError(f"purchase line: bad occurred_at {row.get('occurred_at')!r}") from None
    if occurred.tzinfo is None:
        raise ValueError("purchase line: occurred_at must carry an offset (UTC, ...Z)")
    try:
        month = date.fromisoformat(_text(row, "month"))
    except ValueError:
        raise ValueError(f"purchase line: bad month {row.get('month')!r}") from None
    if month.day != 1:
        raise ValueError(f"purchase line: month must be the first day of a month, got {month}")
    raw_quantity = row.get("quantity")
    if isinstance(raw_quantity, bool) or not isinstance(raw_quantity, str | int):
        raise ValueError(f"purchase line: quantity must be a decimal string, got {raw_quantity!r}")
    try:
        quantity = Decimal(str(raw_quantity)).quantize(_QUANTUM)
    except InvalidOperation:
        raise ValueError(f"purchase line: bad quantity {raw_quantity!r}") from None
    if not quantity.is_finite() or abs(quantity) >= _MAX_QUANTITY:
        raise ValueError(f"purchase line: quantity out of range: {raw_quantity!r}")
    kind = _text(row, "kind")
    if kind not in KINDS:
        raise ValueError(f"purchase line: kind must be purchase or return, got {kind!r}")
    return (
        _text(row, "event_id"),
        _int(row, "line_no", 0, 65535),
        # DateTime has whole seconds; UTC so both engines store the same instant.
        occurred.astimezone(UTC).replace(microsecond=0),
        month,
        _text(row, "store_id"),
        _int(row, "household_key", 0, _UINT64_MAX),
        _text(row, "co_op", required=False),
        _text(row, "sku", required=False),
        _text(row, "product_group", required=False),
        quantity,
        _int(row, "amount_cents", *_INT64),
        _int(row, "fuel_ml", *_INT64, default=0),
        _text(row, "payment_method", required=False),
        _int(row, "bonus_eligible", 0, 1),
        kind,
        _text(row, "campaign_id", required=False),
    )


class SwipesMessage:
    """A version 3 message waiting in the sink: its rows (``JSONCompactEachRow`` text that
    ClickHouse parses), what its header says, and the record it came in (for a dead letter)."""

    __slots__ = ("households", "key", "lines", "rows", "value")

    def __init__(
        self, key: bytes | None, value: bytes, rows: bytes, lines: int, households: list[int]
    ) -> None:
        self.key, self.value, self.rows = key, value, rows
        self.lines, self.households = lines, households


class PurchaseLineSink:
    """Buffers converted rows and inserts them in batches (quix-streams style).

    ``add`` converts (and may raise ``ValueError`` for a bad row, before anything is
    buffered); ``flush`` inserts when ``batch_size`` rows are buffered or the oldest has waited
    ``batch_seconds`` (or always, with ``force=True``); ``write`` inserts at once. An insert
    that fails raises and leaves the buffer as it was, so the caller can retry the flush and
    must not commit the Kafka offsets of buffered rows until a flush returned.

    Version 3 messages (``add_swipes``) wait whole, unread, and go to ``SWIPES_TABLE`` in one
    INSERT per ``batch_size`` lines (by their headers' counts). When ClickHouse refuses such an
    INSERT's data (:class:`ClickHouseDataError`), the messages are inserted one by one and the
    ones refused are moved to ``rejected`` (message, reason) for the caller's dead letters;
    one INSERT per message into a Null table with one view is all or nothing for that message.
    """

    def __init__(
        self,
        client: ClickHouse,
        batch_size: int,
        batch_seconds: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.client = client
        self.batch_size = batch_size
        self.batch_seconds = batch_seconds
        self._clock = clock
        self._buffer: list[tuple[Any, ...]] = []
        self._swipes: list[SwipesMessage] = []
        self._swipe_lines = 0
        self._oldest: float | None = None
        self._written = metrics.LINES_WRITTEN.labels(engine=client.engine)
        self.rejected: list[tuple[SwipesMessage, str]] = []

    @property
    def pending(self) -> int:
        """Rows buffered, not yet written (a version 3 message's by its header)."""
        return len(self._buffer) + self._swipe_lines

    def add_swipes(self, message: SwipesMessage) -> None:
        """A version 3 message whose header was checked; ClickHouse reads its rows."""
        if not self.pending:
            self._oldest = self._clock()
        self._swipes.append(message)
        self._swipe_lines += message.lines

    def add(self, rows: Iterable[Mapping[str, Any]]) -> None:
        self.add_tuples([row_to_tuple(row) for row in rows])  # all or nothing

    def add_tuples(self, converted: list[tuple[Any, ...]]) -> None:
        """Rows already converted and checked (``stream.analytics.lines.message_tuples``)."""
        if converted and not self.pending:
            self._oldest = self._clock()
        self._buffer.extend(converted)

    def due(self) -> bool:
        """Whether :meth:`flush` would write now."""
        if not self._buffer and not self._swipes:
            return False
        if self.pending >= self.batch_size:
            return True
        return self._oldest is not None and self._clock() - self._oldest >= self.batch_seconds

    def seconds_until_due(self) -> float | None:
        """How long until the oldest buffered row is due (``None`` with nothing buffered)."""
        if (not self._buffer and not self._swipes) or self._oldest is None:
            return None
        if self.pending >= self.batch_size:
            return 0.0
        return max(0.0, self._oldest + self.batch_seconds - self._clock())

    def household_keys(self) -> set[int]:
        """The household keys of the buffered rows and messages."""
        keys = {row[_HOUSEHOLD_KEY] for row in self._buffer}
        return keys.union(*[message.households for message in self._swipes])

    def drop_households(self, keys: set[int]) -> int:
        """Drop buffered rows of ``keys`` (erased households); returns how many.

        A version 3 message naming one of ``keys`` is read here, in Python, and its other
        rows are kept as rows; one that does not read goes to ``rejected``."""
        if not keys:
            return 0
        if self._swipes and not keys.isdisjoint(self.household_keys()):
            from stream.analytics.lines import message_tuples  # noqa: PLC0415 (it imports us)

            kept = []
            for message in self._swipes:
                if keys.isdisjoint(message.households):
                    kept.append(message)
                    continue
                self._swipe_lines -= message.lines
                try:
                    self._buffer.extend(message_tuples(message.value))
                except (ValueError, TypeError, KeyError) as exc:
                    self.rejected.append((message, str(exc)))
            self._swipes = kept
        before = len(self._buffer)
        self._buffer = [row for row in self._buffer if row[_HOUSEHOLD_KEY] not in keys]
        if not self.pending:
            self._oldest = None
        return before - len(self._buffer)

    def flush(self, *, force: bool = False) -> int:
        """Insert the buffer if it is due (or ``force``); return the rows written."""
        if not (self._buffer or self._swipes) or not (force or self.due()):
            return 0
        written = 0
        while self._buffer:
            chunk = self._buffer[: self.batch_size]
            self._insert(chunk)
            # Dropped only once inserted: a retry after a failure resends the rest, not these.
            del self._buffer[: len(chunk)]
            written += len(chunk)
        while self._swipes:
            count, lines = 0, 0
            for message in self._swipes:
                if count and lines + message.lines > self.batch_size:
                    break
                count, lines = count + 1, lines + message.lines
            written += self._insert_swipes(count)
        self._oldest = None
        return written

    def _insert_swipes(self, count: int) -> int:
        """Insert the first ``count`` messages (one INSERT; one each if their data is refused)
        and take them off the buffer; returns the lines written."""
        chunk = self._swipes[:count]
        try:
            self.client.insert_json_rows(SWIPES_TABLE, b"\n".join([m.rows for m in chunk]))
        except ClickHouseDataError as exc:
            if count > 1:
                return sum(self._insert_swipes(1) for _ in range(count))
            self.rejected.append((chunk[0], _data_error_reason(exc)))
            lines = 0
        else:
            lines = sum(m.lines for m in chunk)
            self._written.inc(lines)
        del self._swipes[:count]
        self._swipe_lines -= sum(m.lines for m in chunk)
        return lines

    def write(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Convert and insert ``rows`` now, bypassing the buffer; return the rows written."""
        converted = [row_to_tuple(row) for row in rows]
        for start in range(0, len(converted), self.batch_size):
            self._insert(converted[start : start + self.batch_size])
        return len(converted)

    def _insert(self, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            self.client.insert(TABLE, COLUMNS, rows)
            self._written.inc(len(rows))


def _data_error_reason(exc: ClickHouseDataError) -> str:
    """The reason a view's check gave (``purchase line: ...``), else the error's first line."""
    text = str(exc)
    found = _CHECK_REASON.search(text)
    return (
        found.group(1)
        if found
        else " ".join(text.split("Stack trace", maxsplit=1)[0].split())[:500]
    )


_CHECK_REASON = re.compile(r"'(purchase line: [^']*)'")
_HOUSEHOLD_KEY = COLUMNS.index("household_key")
_PARTITION_ID = re.compile(r"^(\d{4})(0[1-9]|1[0-2])$")
