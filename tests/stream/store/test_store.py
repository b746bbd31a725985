"""The Redis store and the batch processors on a real Redis and a real broker."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator

import pytest

from models.rules import load_rules
from stream.bonus.register import RegisterProcessor
from stream.bonus.swipes import SwipeProcessor
from stream.devstack.broker import TansuBroker
from stream.devstack.redis_server import RedisServer
from stream.kafka.publisher import KafkaPublisher
from stream.kafka.topics import Record
from stream.settings import Settings
from stream.store.store import Store
from tests.support import events
from tests.support.settings import isolated_settings

RULES = load_rules("stream/rules.default.toml")


@pytest.fixture
def settings(kafka: TansuBroker, redis_server: RedisServer, unique: str) -> Iterator[Settings]:
    yield isolated_settings(
        kafka,
        redis_server,
        unique,
    )


def record(event: dict[str, object]) -> Record:
    key, value = events.keyed(event)
    return Record(key, value)


async def _race(settings: Settings, cards: int, seed: int) -> tuple[list[int], int]:
    rng = random.Random(seed)
    # Two clients: as if the register and the swipes were in two workers.
    a = Store.from_url(settings.redis_url, settings.redis_prefix)
    b = Store.from_url(settings.redis_url, settings.redis_prefix)
    async with KafkaPublisher(settings.kafka_url) as pa, KafkaPublisher(settings.kafka_url) as pb:
        swipes = SwipeProcessor(settings, RULES, a, pa)
        register = RegisterProcessor(settings, b, pb, SwipeProcessor(settings, RULES, b, pb))
        await register.process([record(events.household("HX"))])
        jobs = []
        for n in range(cards):
            number = f"63900000{n:08d}"
            jobs.append(swipes.process([record(events.swipe(f"X-{n}", number))]))
            jobs.append(register.process([record(events.card(number, "HX"))]))
        rng.shuffle(jobs)
        await asyncio.gather(*jobs)
        held = await a.held_count()
        acc = await a.month_state("HX", "2026-11")
    await a.close()
    await b.close()
    return [acc.accumulator.swipes, acc.accumulator.purchases_cents], held


def test_a_card_registered_while_its_first_swipe_is_processed_is_credited_exactly_once(
    settings: Settings,
) -> None:
    swipes_and_cents, held = asyncio.run(_race(settings, cards=300, seed=1))
    assert swipes_and_cents == [300, 300 * 398]
    assert held == 0


async def _replay(settings: Settings) -> dict[str, object]:
    store = Store.from_url(settings.redis_url, settings.redis_prefix)
    async with KafkaPublisher(settings.kafka_url) as pub:
        swipes = SwipeProcessor(settings, RULES, store, pub)
        register = RegisterProcessor(settings, store, pub, swipes)
        newer = events.household(
            "HY", capital_required_cents=10000, updated_at="2026-11-02T09:00:00+02:00"
        )
        older = events.household(
            "HY", capital_required_cents=1, updated_at="2026-11-01T09:00:00+02:00"
        )
        payment = events.capital_payment("CP-1", "HY", 2500)
        first = await register.process(
            [record(newer), record(older), record(payment), record(payment)]
        )
        again = await register.process([record(newer), record(payment)])
        state = await store.month_state("HY", "2026-11")
    await store.close()
    return {"first": first, "again": again, "state": state}


def test_register_snapshots_are_last_write_wins_and_capital_payments_count_once(
    settings: Settings,
) -> None:
    result = asyncio.run(_replay(settings))
    assert result["first"] == {"applied": 2, "stale": 1, "duplicate": 1}
    assert result["again"] == {"stale": 1, "duplicate": 1}
    state = result["state"]
    assert state.household.capital_required_cents == 10000  # type: ignore[attr-defined]
    assert state.capital_paid_cents == 2500  # type: ignore[attr-defined]
    assert state.capital_remaining_cents == 7500  # type: ignore[attr-defined]


def test_household_keys_are_set_only_where_the_household_is_held(settings: Settings) -> None:
    async def scenario() -> tuple[int, list[bytes | None], int]:
        store = Store.from_url(settings.redis_url, settings.redis_prefix)
        try:
            await store.redis.hset(store.keys.household("HELD"), mapping={"co_op": "x"})
            updated = await store.set_household_keys({"HELD": 11, "GONE": 22})
            stored = [
                await store.redis.hget(store.keys.household(h), "household_key")
                for h in ("HELD", "GONE")
            ]
            return updated, stored, await store.redis.exists(store.keys.household("GONE"))
        finally:
            await store.close()

    updated, stored, gone_exists = asyncio.run(scenario())
    assert updated == 1
    assert stored == [b"11", None]
    assert gone_exists == 0  # an erased (or never held) household is not recreated
