"""The scheduled month close: which months are due (pure), and that it closes once per close
day on the session's real Redis and Tansu broker."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from models.months import Month
from models.rules import Rules, load_rules
from stream.bonus.housekeeping import months_due, scheduled_close
from stream.bonus.register import RegisterProcessor
from stream.bonus.swipes import SwipeProcessor
from stream.devstack.broker import TansuBroker
from stream.devstack.redis_server import RedisServer
from stream.kafka.publisher import KafkaPublisher
from stream.kafka.topics import Record, Topics, create_topics_async
from stream.settings import DEFAULT_RULES, Settings
from stream.store.store import Store
from tests.support import events
from tests.support.settings import isolated_settings

RULES = load_rules(DEFAULT_RULES)


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# -- months_due (pure) -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "due"),
    [
        # Default: the 5th at 03:00 Helsinki (winter time, UTC+2, in December).
        (utc(2026, 12, 5, 0, 59), []),  # 02:59 local
        (utc(2026, 12, 5, 1, 0), ["2026-11", "2026-10"]),  # 03:00 local
        (utc(2026, 12, 4, 23, 0), []),  # the 5th at 01:00 local, still before 03:00
        (utc(2026, 12, 1, 12, 0), []),  # November ended, but the close day has not come
        (utc(2026, 12, 20, 12, 0), ["2026-11", "2026-10"]),  # later days too (marker: once)
        # January: the year wraps.
        (utc(2027, 1, 5, 1, 0), ["2026-12", "2026-11"]),
        # Summer time (UTC+3): 03:00 local on 5 July is 00:00 UTC.
        (utc(2026, 7, 4, 23, 59), []),
        (utc(2026, 7, 5, 0, 0), ["2026-06", "2026-05"]),
    ],
)
def test_months_due_by_default_the_5th_at_03_local(now: datetime, due: list[str]) -> None:
    assert [str(m) for m in months_due(now, RULES, settings())] == due


def test_months_due_follows_the_configured_day_and_hour() -> None:
    s = settings(close_day=1, close_hour=0)
    # 2026-12-01T00:00 Helsinki = 2026-11-30T22:00Z; the minute before, the close of the
    # 1st of November is still the latest one due
    assert months_due(utc(2026, 11, 30, 21, 59), RULES, s) == [Month(2026, 10), Month(2026, 9)]
    assert months_due(utc(2026, 11, 30, 22, 0), RULES, s) == [Month(2026, 11), Month(2026, 10)]
    s = settings(close_day=28, close_hour=23)
    assert months_due(utc(2026, 12, 28, 20, 59), RULES, s) == []  # 22:59 local
    assert months_due(utc(2026, 12, 28, 21, 0), RULES, s) == [Month(2026, 11), Month(2026, 10)]


# -- scheduled_close on real Redis and Kafka ------------------------------------------------


class Services:
    def __init__(self, kafka: TansuBroker, redis_server: RedisServer, unique: str) -> None:
        self.bootstrap = kafka.bootstrap
        self.settings = isolated_settings(
            kafka,
            redis_server,
            unique,
            group_id=unique,
            _env_file=None,  # type: ignore[call-arg]
        )
        self.rules: Rules = RULES
        self.topics = Topics(self.settings)

    def run(self, scenario: Callable[[Store, KafkaPublisher], Awaitable[None]]) -> None:
        async def main() -> None:
            await create_topics_async(
                self.bootstrap,
                {
                    self.topics.payouts: 1,
                    self.topics.purchase_lines: 1,
                    self.topics.dead_letters: 1,
                },
            )
            store = Store.from_url(self.settings.redis_url, self.settings.redis_prefix)
            try:
                async with KafkaPublisher(self.settings.kafka_url) as publisher:
                    await scenario(store, publisher)
            finally:
                await store.close()

        asyncio.run(main())

    async def seed(
        self, store: Store, publisher: KafkaPublisher, swipes: list[dict[str, Any]]
    ) -> None:
        processor = SwipeProcessor(self.settings, self.rules, store, publisher)
        register = RegisterProcessor(self.settings, store, publisher, processor)
        await register.process(
            [Record(*events.keyed(e)) for e in (events.household("H1"), events.card(CARD, "H1"))]
        )
        counts = await processor.process([Record(*events.keyed(s)) for s in swipes])
        assert counts.get("applied") == len(swipes), counts

    async def sent(self) -> list[tuple[str, int, bool]]:
        """(payout_id, total_cents, adjustment) of every payout on the topic, in order."""
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        await consumer.start()
        out = []
        try:
            tp = TopicPartition(self.topics.payouts, 0)
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            async with asyncio.timeout(20):
                while (hw := consumer.highwater(tp)) is None or await consumer.position(tp) < hw:
                    for batch in (await consumer.getmany(timeout_ms=200)).values():
                        for record in batch:
                            p = orjson.loads(record.value)
                            out.append((p["payout_id"], p["total_cents"], p["adjustment"]))
        finally:
            await consumer.stop()
        return out


CARD = "6390000000000601"


def purchase(event_id: str, occurred_at: str, cents: int) -> dict[str, Any]:
    lines = [{"sku": "x", "product_group": "dairy", "quantity": 1, "amount_cents": cents}]
    return events.swipe(event_id, CARD, occurred_at=occurred_at, lines=lines)


@pytest.fixture
def services(kafka: TansuBroker, redis_server: RedisServer, unique: str) -> Services:
    return Services(kafka, redis_server, unique)


def test_the_scheduled_close_runs_once_per_close_day(services: Services) -> None:
    async def scenario(store: Store, publisher: KafkaPublisher) -> None:
        async def close(now: datetime) -> list[str]:
            return await scheduled_close(services.settings, services.rules, store, publisher, now)

        await services.seed(
            store,
            publisher,
            [
                purchase("O-1", "2026-10-15T12:00:00+03:00", 12000),  # 100 bp -> 120
                purchase("N-1", "2026-11-15T12:00:00+02:00", 25000),  # 150 bp -> 375
            ],
        )
        assert await close(utc(2026, 12, 5, 0, 59)) == []  # 02:59 in Helsinki: not yet
        assert await services.sent() == []

        assert await close(utc(2026, 12, 5, 1, 0)) == ["2026-11", "2026-10"]
        first = [("H1:2026-11:1", 375, False), ("H1:2026-10:1", 120, False)]
        assert await services.sent() == first

        # Again the same day, and later in the month: done already, nothing closed or sent.
        assert await close(utc(2026, 12, 5, 1, 1)) == []
        # A late November swipe: 25000 + 8000 = 33000 -> 200 bp -> 660, difference 285.
        await services.seed(store, publisher, [purchase("N-2", "2026-11-30T20:00:00+02:00", 8000)])
        assert await close(utc(2026, 12, 20, 12, 0)) == []
        assert await services.sent() == first

        # The next close day re-closes November (December has nobody): one adjustment.
        assert await close(utc(2027, 1, 5, 1, 0)) == ["2026-12", "2026-11"]
        assert await services.sent() == [*first, ("H1:2026-11:2", 285, True)]
        assert await close(utc(2027, 1, 5, 2, 0)) == []
        assert len(await services.sent()) == 3

    services.run(scenario)


def test_a_month_whose_close_is_running_elsewhere_is_closed_at_the_next_round(
    services: Services,
) -> None:
    async def scenario(store: Store, publisher: KafkaPublisher) -> None:
        await services.seed(store, publisher, [purchase("N-1", "2026-11-15T12:00:00+02:00", 25000)])
        lock = store.keys.month_closing("2026-11")
        await store.redis.set(lock, "an operator's close-month")  # another close is running
        now = utc(2026, 12, 5, 1, 0)
        done = await scheduled_close(services.settings, services.rules, store, publisher, now)
        assert done == ["2026-10"]  # November skipped, and not marked as done
        assert await services.sent() == []

        await store.redis.delete(lock)
        later = utc(2026, 12, 5, 1, 1)
        done = await scheduled_close(services.settings, services.rules, store, publisher, later)
        assert done == ["2026-11"]
        assert await services.sent() == [("H1:2026-11:1", 375, False)]

    services.run(scenario)
