"""What the agents do with a batch, free of Faust: parse, resolve, apply, route.

The agents hand each batch of raw Kafka records to ``SwipeProcessor.process`` or
``RegisterProcessor.process`` and ack the batch only after it returned; these never raise
for bad input (it goes to dead letters) and retry transient faults of Redis until they pass.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import redis.exceptions

from models.bonus import SwipeFields, swipe_fields
from models.errors import InvalidEvent
from models.months import Month, days_after
from models.rules import Rules
from models.swipe import SwipeLike, decode_swipe
from stream import metrics
from stream.analytics.lines import encode as encode_lines
from stream.analytics.lines import swipe_item
from stream.analytics.pseudonym import household_key
from stream.kafka.deadletters import dead_letter
from stream.kafka.publisher import Publisher
from stream.kafka.topics import Record, Topics
from stream.retry import retry_forever
from stream.settings import Settings
from stream.store.store import Store, SwipeOutcome

log = logging.getLogger(__name__)
ROWS_PER_MESSAGE = 1000  # purchase lines per message of the internal topic (about 50 kB)


# A month's cached facts (``SwipeProcessor._month``): its ``YYYY-MM``, the seen set's and the
# accumulator's expiry (epoch seconds), and its first day (ISO), for the analytics rows.
_MonthFacts = tuple[str, int, int, str]


@dataclass(slots=True)
class _Parsed:
    record: Record
    swipe: SwipeLike
    effect: SwipeFields
    month: _MonthFacts
    from_hold: bool = False


@dataclass(slots=True)
class Prepared:
    """A batch decoded, validated and turned into Redis entries (``SwipeProcessor.prepare``),
    not yet applied."""

    size: int
    parsed: list[_Parsed]
    entries: list[dict[str, Any]]  # one per ``parsed``, for ``apply_swipes.lua``
    rejected: list[tuple[Record, str, str]]  # (record, reason, detail)
    started: float


class SwipeProcessor:
    def __init__(
        self,
        settings: Settings,
        rules: Rules,
        store: Store,
        publisher: Publisher,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.rules = rules
        self.store = store
        self.publisher = publisher
        self.topics = Topics(settings)
        self.now = now
        self._pseudonym_key = settings.pseudonym_key.get_secret_value().encode()
        self._accumulator_days = 31 * settings.retention_months
        self._month_cache: dict[tuple[int, int], _MonthFacts] = {}
        self._household_keys: dict[str, int] = {}
        self._utc_texts: dict[datetime, str] = {}
        self._swipes_total = metrics.SWIPES.labels  # bound once: called per batch and outcome

    async def process(self, records: list[Record]) -> dict[str, int]:
        """Process one batch from ``loyalty.swipes``; returns outcome counts."""
        return await self.apply(self.prepare(records))

    def prepare(self, records: list[Record], *, from_hold: bool = False) -> Prepared:
        """Decode, validate, compute each swipe's fields and its Redis entry: CPU only, no I/O
        (the batch consumer runs it for the next batch while this one waits on Redis and the
        producer)."""
        prepared = Prepared(len(records), [], [], [], time.perf_counter())
        parsed, entries, rejected = prepared.parsed, prepared.entries, prepared.rejected
        rules = self.rules
        tz = rules.timezone
        months = self._month_cache
        hold = 1 if from_hold else 0
        for record in records:
            try:
                swipe = decode_swipe(record.value or b"")
                effect = swipe_fields(swipe, rules)
            except InvalidEvent as exc:
                rejected.append((record, exc.reason, exc.detail))
                continue
            except Exception as exc:  # a bug must not lose the event: it is kept in dead letters
                log.exception("unexpected error parsing a swipe")
                rejected.append((record, "internal_error", type(exc).__name__))
                continue
            local = swipe.occurred_at.astimezone(tz)  # the bonus month is the local month
            month = months.get((local.year, local.month)) or self._month(local.year, local.month)
            parsed.append(_Parsed(record, swipe, effect, month, from_hold))
            entries.append(
                {
                    "e": swipe.event_id,
                    "c": swipe.card,
                    "m": month[0],
                    "d": local.date().isoformat(),
                    "i": effect.fields,  # the accumulator's and the insights' increments
                    "x": month[1],
                    "a": month[2],
                    "h": hold,
                }
            )
        return prepared

    async def apply(self, prepared: Prepared) -> dict[str, int]:
        """Apply a prepared batch to Redis, publish its lines and dead letters, and confirm."""
        for record, reason, detail in prepared.rejected:
            await self._reject(record, reason, detail, kind="unknown")
        counts = await self._apply(prepared)
        await self.publisher.flush()
        metrics.BATCH_SIZE.labels(stage="swipes").observe(prepared.size)
        metrics.BATCH_SECONDS.labels(stage="swipes").observe(time.perf_counter() - prepared.started)
        counts["rejected"] = prepared.size - len(prepared.parsed)
        return counts

    async def credit_held(self, cards: list[str]) -> dict[str, int]:
        """Re-run the held swipes of cards that are now known, as one batch (idempotent)."""
        held = await retry_forever(lambda: self.store.held_swipes(cards), dependency="redis")
        records = [
            Record(card.encode(), raw) for card, swipes in held.items() for raw in swipes.values()
        ]
        prepared = self.prepare(records, from_hold=True)
        for record, reason, detail in prepared.rejected:
            await self._reject(record, reason, detail, kind="unknown")
        counts = await self._apply(prepared)
        await self.publisher.flush()
        return counts

    async def _apply(self, prepared: Prepared) -> dict[str, int]:
        counts: dict[str, int] = {}
        parsed, entries = prepared.parsed, prepared.entries
        if not parsed:
            return counts
        raws = [p.record.value or b"" for p in parsed]  # sent only for unknown cards
        try:
            outcomes = await retry_forever(
                lambda: self.store.apply_swipes(entries, raws), dependency="redis"
            )
        except redis.exceptions.ResponseError:
            # A script error on one entry fails the batch: isolate the bad one(s).
            log.exception("swipe batch failed in Redis; applying one by one")
            outcomes = []
            for p, entry, raw in zip(parsed, entries, raws, strict=True):
                try:
                    outcomes += await retry_forever(
                        functools.partial(self.store.apply_swipes, [entry], [raw]),
                        dependency="redis",
                    )
                except redis.exceptions.ResponseError as exc:
                    await self._reject(p.record, "store_error", str(exc)[:200], kind=p.swipe.kind)
                    outcomes.append(SwipeOutcome("rejected", "", "", False))
        now = self.now()
        items: list[list[Any]] = []
        # Metrics once per batch: (kind, outcome) -> swipes, (co_op, kind) -> eligible cents.
        by_outcome: dict[tuple[str, str], int] = {}
        eligible: dict[tuple[str, str], int] = {}
        lags: list[float] = []
        for p, outcome in zip(parsed, outcomes, strict=True):
            name = outcome.outcome
            swipe = p.swipe
            if name == "applied":
                items.append(self._analytics_item(p, outcome))
                lags.append(max(0.0, (now - swipe.occurred_at).total_seconds()))
                if not outcome.business:
                    ekey = (outcome.co_op or "unknown", swipe.kind)
                    eligible[ekey] = eligible.get(ekey, 0) + abs(p.effect.purchases_cents)
                if p.from_hold:
                    name = "credited"
            elif name == "duplicate":
                # Duplicates are re-sent too: a crash may have come between Redis and Kafka,
                # and the analytics table keeps one row per (event_id, line_no).
                items.append(self._analytics_item(p, outcome))
            elif name == "blocked":
                await self._reject(p.record, "card_blocked", "the card is blocked", swipe.kind)
            elif name == "expired":
                await self._reject(p.record, "card_expired", "the card has expired", swipe.kind)
            counts[name] = counts.get(name, 0) + 1
            okey = (swipe.kind, name)
            by_outcome[okey] = by_outcome.get(okey, 0) + 1
        for (kind, name), n in by_outcome.items():
            self._swipes_total(kind=kind, outcome=name).inc(n)
        for (co_op, kind), cents in eligible.items():
            metrics.ELIGIBLE_CENTS.labels(co_op=co_op, kind=kind).inc(cents)
        metrics.observe_many(metrics.EVENT_TO_BALANCE_SECONDS, lags)
        # Few large messages, not one per swipe: far less producer work per swipe.
        for chunk in chunks_of_lines(items, ROWS_PER_MESSAGE):
            key = str(chunk[0][0]).encode()
            await self.publisher.send(self.topics.purchase_lines, key, encode_lines(chunk))
        return counts

    def _month(self, year: int, month_number: int) -> _MonthFacts:
        """The facts of a month (``_MonthFacts``), computed once and cached."""
        found = self._month_cache.get((year, month_number))
        if found is None:
            tz = self.rules.timezone
            month = Month(year, month_number)
            found = self._month_cache[(year, month_number)] = (
                str(month),
                int(days_after(month, self.settings.dedupe_days, tz).timestamp()),
                int(days_after(month, self._accumulator_days, tz).timestamp()),
                month.first_day.isoformat(),
            )
        return found

    def _utc_text(self, instant: datetime) -> str:
        """``instant`` as UTC ``...Z`` text (cached: a backlog repeats the same seconds)."""
        text = self._utc_texts.get(instant)
        if text is None:
            if len(self._utc_texts) > 10_000:
                self._utc_texts.clear()
            text = self._utc_texts[instant] = instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return text

    def _analytics_item(self, p: _Parsed, outcome: SwipeOutcome) -> list[Any]:
        """The swipe's purchase lines for the analytics stage (``stream.analytics.lines``)."""
        swipe = p.swipe
        hid = outcome.household_id
        hkey = self._household_keys.get(hid)
        if hkey is None:
            if len(self._household_keys) > 100_000:
                self._household_keys.clear()
            hkey = self._household_keys[hid] = household_key(self._pseudonym_key, hid)
        return swipe_item(
            event_id=swipe.event_id,
            occurred_at=self._utc_text(swipe.occurred_at),
            month=p.month[3],
            store_id=swipe.store_id,
            household_key=hkey,
            co_op=outcome.co_op,
            payment_method=swipe.payment_method,
            kind=swipe.kind,
            campaign_id=p.effect.campaign_id,
            business=outcome.business,
            lines=swipe.lines,
            codes=p.effect.line_codes,
        )

    async def _reject(self, record: Record, reason: str, detail: str, kind: str) -> None:
        metrics.DEAD_LETTERS.labels(source="swipes", reason=reason).inc()
        if reason not in {"card_blocked", "card_expired"}:
            metrics.SWIPES.labels(kind=kind, outcome="rejected").inc()
        value = dead_letter(self.topics.swipes, record.key, record.value, reason, detail)
        await self.publisher.send(self.topics.dead_letters, record.key, value)


def _micros(instant: datetime) -> int:
    return int((instant - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(microseconds=1))


def chunks_of_lines(items: list[list[Any]], lines: int) -> Iterable[list[list[Any]]]:
    """Swipe items in messages of about ``lines`` purchase lines (a swipe is never split)."""
    chunk: list[list[Any]] = []
    count = 0
    for item in items:
        chunk.append(item)
        count += len(item[10])
        if count >= lines:
            yield chunk
            chunk, count = [], 0
    if chunk:
        yield chunk
