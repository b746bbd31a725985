"""The hold sweep on a real Redis and broker: late credits, and expiry to dead letters."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest

from models.register import parse_register
from models.rules import load_rules
from stream import metrics
from stream.bonus.housekeeping import set_held_gauges, sweep_hold
from stream.bonus.register import register_op
from stream.bonus.swipes import SwipeProcessor
from stream.devstack.broker import TansuBroker
from stream.devstack.redis_server import RedisServer
from stream.kafka.publisher import KafkaPublisher
from stream.kafka.topics import Record
from stream.settings import Settings
from stream.store.store import Store
from tests.support import events
from tests.support.services import consume
from tests.support.settings import isolated_settings

RULES = load_rules("stream/rules.default.toml")


def settings_for(kafka: TansuBroker, redis_server: RedisServer, unique: str) -> Settings:
    return isolated_settings(
        kafka,
        redis_server,
        unique,
        hold_days=35,
    )


async def _scenario(settings: Settings) -> dict[str, object]:
    store = Store.from_url(settings.redis_url, settings.redis_prefix)
    async with KafkaPublisher(settings.kafka_url) as publisher:
        swipes = SwipeProcessor(settings, RULES, store, publisher)
        held = await swipes.process(
            [
                Record(*events.keyed(events.swipe("H-1", "6390000000000001"))),
                Record(*events.keyed(events.swipe("H-2", "6390000000000002"))),
                Record(*events.keyed(events.swipe("H-3", "6390000000000002"))),
            ]
        )
        # Card 1 becomes known without its hold being drained (as after a crash between the
        # register's two steps); card 2 never does, and its swipes were held 36 days ago.
        for event in (events.household("HK"), events.card("6390000000000001", "HK")):
            await store.apply_register([register_op(parse_register(events.encode(event)))])
        old = time.time() - 36 * 86400
        await store.redis.zadd(store.keys.held_index(), {"6390000000000002": old}, xx=True)
        oldest = await store.held_oldest_at()
        await set_held_gauges(store)
        age = metrics.HELD_OLDEST_AGE._value.get()
        first = await sweep_hold(settings, store, swipes, publisher)
        second = await sweep_hold(settings, store, swipes, publisher)
        state = await store.month_state("HK", "2026-11")
        left = await store.held_count()
        index = await store.redis.zcard(store.keys.held_index())
        oldest_after = await store.held_oldest_at()
        age_after = metrics.HELD_OLDEST_AGE._value.get()
    await store.close()
    return {
        "held": held,
        "first": first,
        "second": second,
        "swipes": state.accumulator.swipes,
        "left": left,
        "index": index,
        "oldest": (old, oldest, age, oldest_after, age_after),
    }


def test_the_sweep_credits_known_cards_and_dead_letters_holds_past_the_hold_period(
    kafka: TansuBroker, redis_server: RedisServer, unique: str
) -> None:
    settings = settings_for(kafka, redis_server, unique)
    result = asyncio.run(_scenario(settings))
    assert result["held"] == {"held": 3, "rejected": 0}
    assert result["first"] == {"credited_cards": 1, "expired": 2}
    assert result["second"] == {"credited_cards": 0, "expired": 0}
    assert (result["swipes"], result["left"], result["index"]) == (1, 0, 0)
    old, oldest, age, oldest_after, age_after = result["oldest"]
    assert oldest == pytest.approx(old, abs=0.01), "the oldest held card is the one held 36 days"
    assert 36 * 86400 <= age < 36 * 86400 + 60, "the gauge: seconds since it was held"
    assert (oldest_after, age_after) == (None, 0), "nothing held: no oldest, age 0"
    letters = [
        orjson.loads(r.value) for r in consume(kafka.bootstrap, settings.topic("dead-letters"), 2)
    ]
    assert sorted(orjson.loads(letter["value"])["event_id"] for letter in letters) == ["H-2", "H-3"]
    assert {letter["reason"] for letter in letters} == {"card_unknown"}
