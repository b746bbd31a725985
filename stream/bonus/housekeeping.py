"""Periodic work of the worker: the hold, gauges, and the scheduled month close."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

from models.months import Month
from models.rules import Rules
from stream import metrics
from stream.bonus.close import close_month
from stream.bonus.swipes import SwipeProcessor
from stream.errors import CloseError
from stream.kafka.deadletters import dead_letter
from stream.kafka.publisher import Publisher
from stream.kafka.topics import Topics
from stream.settings import Settings
from stream.store.store import Store

log = logging.getLogger(__name__)


async def sweep_hold(
    settings: Settings, store: Store, processor: SwipeProcessor, publisher: Publisher
) -> dict[str, int]:
    """Credit held swipes of cards that became known (a crash may have come between the
    card's registration and the credit), and dead-letter those held past ``hold_days``."""
    counts = {"credited_cards": 0, "expired": 0}
    known = sorted(await store.known_cards(await store.held_cards(limit=1000)))
    await processor.credit_held(known)
    counts["credited_cards"] = len(known)
    cutoff = time.time() - settings.hold_days * 86400
    stale = await store.held_cards(older_than=cutoff, limit=1000)
    topics = Topics(settings)
    unknown = sorted(set(stale) - await store.known_cards(stale))
    for card, held in (await store.held_swipes(unknown)).items():
        for raw in held.values():
            value = dead_letter(
                topics.swipes,
                card.encode(),
                raw,
                "card_unknown",
                f"no register event for the card within {settings.hold_days} days",
            )
            await publisher.send(topics.dead_letters, card.encode(), value)
            metrics.DEAD_LETTERS.labels(source="swipes", reason="card_unknown").inc()
        await publisher.flush()
        counts["expired"] += await store.release_held(card, list(held))
    await set_held_gauges(store)
    return counts


async def set_held_gauges(store: Store) -> None:
    """``loyalty_held_swipes`` and ``loyalty_held_oldest_age_seconds`` from Redis."""
    metrics.HELD_SWIPES.set(await store.held_count())
    oldest = await store.held_oldest_at()
    metrics.HELD_OLDEST_AGE.set(0 if oldest is None else max(0.0, time.time() - oldest))


async def outbox_gauges(store: Store) -> None:
    """Set the outbox gauges: entries not yet confirmed sent and the age of the oldest, for
    the payouts and for the member payments (label ``outbox``)."""
    for box in (store.keys.payout_outbox(), store.keys.member_payment_outbox()):
        stats = await store.outbox_stats(box)
        metrics.PAYOUT_OUTBOX_ENTRIES.labels(outbox=box.name).set(stats.entries)
        metrics.PAYOUT_OUTBOX_OLDEST_AGE.labels(outbox=box.name).set(stats.oldest_age_seconds)


def consumer_lag(consumer: Any) -> dict[tuple[str, int], int]:
    """Messages not yet committed per assigned partition (high watermark from fetches)."""
    lag: dict[tuple[str, int], int] = {}
    for tp in consumer.assignment():
        try:
            highwater = consumer.highwater(tp)
            committed = consumer._committed_offset.get(tp)  # Faust keeps no public accessor
        except (AttributeError, KeyError):
            continue
        if highwater is None:
            continue
        lag[(tp.topic, tp.partition)] = max(0, highwater - (committed or 0))
    return lag


def months_due(now: datetime, rules: Rules, settings: Settings) -> list[Month]:
    """Months the scheduled close should (re)close now: after the close day and hour of the
    month that follows, the previous month, and the one before it again for late swipes."""
    local = now.astimezone(rules.timezone)
    current = Month(local.year, local.month)
    if (local.day, local.hour) < (settings.close_day, settings.close_hour):
        return []
    return [current.previous(), current.minus(2)]


async def scheduled_close(
    settings: Settings,
    rules: Rules,
    store: Store,
    publisher: Publisher,
    now: datetime | None = None,
) -> list[str]:
    """Close what is due, once per month and close day; returns the months closed now."""
    now = now or datetime.now(UTC)
    done = []
    for month in months_due(now, rules, settings):
        local = now.astimezone(rules.timezone)
        close_day = f"{local.year}-{local.month:02d}"
        if await store.scheduled_close_done(str(month), close_day):
            continue
        try:
            report = await close_month(settings, rules, store, publisher, month, now=now)
        except CloseError as exc:
            log.info("scheduled close of %s skipped: %s", month, exc)
            continue
        await store.mark_scheduled_close(
            str(month), close_day, now.isoformat(), keep_seconds=120 * 86400
        )
        log.info("scheduled close of %s: %d payouts", month, report.payouts)
        done.append(str(month))
    return done
