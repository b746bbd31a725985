"""The payout ledger, outbox and month-close bookkeeping of the Store, on a real Redis."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest
from prometheus_client import REGISTRY
from redis.exceptions import LockNotOwnedError

from models.payout import Payout
from stream.bonus.housekeeping import outbox_gauges
from stream.devstack.redis_server import RedisServer
from stream.store.keys import OutboxKeys
from stream.store.outbox import OutboxStats
from stream.store.store import Store

T = TypeVar("T")
Run = Callable[[Callable[[Store, Store], Awaitable[T]]], T]


@pytest.fixture
def stores(redis_server: RedisServer, redis_prefix: str) -> Run[object]:
    """Run a scenario with two Stores on the same keys (two processes, as Redis sees it)."""

    def run(scenario: Callable[[Store, Store], Awaitable[T]]) -> T:
        async def main() -> T:
            a = Store.from_url(redis_server.url, redis_prefix)
            b = Store.from_url(redis_server.url, redis_prefix)
            try:
                return await scenario(a, b)
            finally:
                await a.close()
                await b.close()

        return asyncio.run(main())

    return run  # type: ignore[return-value]


def box(store: Store) -> OutboxKeys:
    return store.keys.payout_outbox()


def payout(household_id: str, seq: int = 1, cents: int = 300) -> Payout:
    return Payout(
        payout_id=f"{household_id}:2026-10:{seq}",
        household_id=household_id,
        month="2026-10",
        co_op="hok-elanto",
        purchases_cents=20000,
        tier_bp=150,
        base_bonus_cents=cents,
        fuel_bonus_cents=0,
        payment_benefit_cents=0,
        total_cents=cents,
        to_capital_cents=0,
        to_account_cents=cents,
        payout_account="FI21",
        adjustment=seq > 1,
    )


def test_recorded_payouts_wait_in_the_outbox_until_sent(stores: Run[None]) -> None:
    async def scenario(a: Store, b: Store) -> None:
        expire_at = int(time.time()) + 3600
        assert await a.outbox_stats(box(a)) == OutboxStats(0, 0.0)
        assert await a.record_payout(payout("H1"), 0, expire_at=expire_at)
        assert not await b.record_payout(payout("H1"), 0, expire_at=expire_at)  # seq moved
        assert await a.record_payout(payout("H2"), 0, expire_at=expire_at)
        assert await a.record_payout(payout("H1", 2, cents=-50), 1, expire_at=expire_at)
        # oldest first (by whole seconds; within one second by id)
        assert await a.outbox_ids(box(a)) == ["H1:2026-10:1", "H1:2026-10:2", "H2:2026-10:1"]

        stats = await a.outbox_stats(box(a), now=time.time() + 100)
        assert stats.entries == 3
        assert 99 <= stats.oldest_age_seconds <= 110

        # one sender claims, the other gets nothing of the same ids
        mine = await a.claim_outbox(box(a), ["H1:2026-10:1", "H2:2026-10:1"], seconds=60)
        assert mine == ["H1:2026-10:1", "H2:2026-10:1"]
        assert await b.claim_outbox(box(b), ["H1:2026-10:1", "H1:2026-10:2"], seconds=60) == [
            "H1:2026-10:2"
        ]
        bodies = await a.outbox_records(box(a), [*mine, "nobody:2026-10:1"])
        assert bodies[2] is None
        assert [b_ is not None and b"H1:2026-10:1" in b_ for b_ in bodies] == [True, False, False]

        await a.outbox_sent(box(a), mine)
        assert await a.outbox_ids(box(a)) == ["H1:2026-10:2"]
        # a claim released without sending can be taken again
        await b.release_outbox_claims(box(b), ["H1:2026-10:2"])
        assert await a.claim_outbox(box(a), ["H1:2026-10:2"], seconds=60) == ["H1:2026-10:2"]
        # a sent entry cannot be claimed again, even with no claim on it left
        assert await b.claim_outbox(box(b), ["H1:2026-10:1"], seconds=60) == []
        await a.outbox_sent(box(a), ["H1:2026-10:2"])
        assert (await a.outbox_stats(box(a))).entries == 0

        # explain still finds them, in order
        found = await a.payouts_of("H1", "2026-10", 2)
        assert [(p["payout_id"], p["total_cents"]) for p in found] == [
            ("H1:2026-10:1", 300),
            ("H1:2026-10:2", -50),
        ]
        assert (await a.month_state("H1", "2026-10")).paid.seq == 2

    stores(scenario)


def test_month_bookkeeping(stores: Run[None], redis_prefix: str) -> None:
    async def scenario(a: Store, _: Store) -> None:
        households = {f"H{n:04d}" for n in range(1200)}
        await a.redis.sadd(a.keys.month_households("2026-10"), *households)
        seen: list[str] = []
        batches = 0
        async for batch in a.month_household_batches("2026-10", count=500):
            seen += batch
            batches += 1
        assert sorted(seen) == sorted(households) and batches >= 2  # each once

        assert not await a.month_closed("2026-10")
        await a.mark_month_closed("2026-10", "2026-11-02T00:00:00+00:00")
        await a.mark_month_closed("2026-10", "2026-12-02T00:00:00+00:00")
        assert await a.month_closed("2026-10")
        assert await a.month_closes("2026-10") == 2
        first = await a.redis.get(a.keys.month_closed("2026-10"))
        assert first == b"2026-11-02T00:00:00+00:00"  # the time of the first close stays

        assert not await a.scheduled_close_done("2026-10", "2026-11")
        await a.mark_scheduled_close("2026-10", "2026-11", "now", keep_seconds=60)
        assert await a.scheduled_close_done("2026-10", "2026-11")
        assert not await a.scheduled_close_done("2026-10", "2026-12")
        assert 0 < await a.redis.ttl(a.keys.month_scheduled("2026-10", "2026-11")) <= 60

    stores(scenario)


def test_a_close_lock_whose_owner_expired_cannot_be_released_or_extended_by_it(
    stores: Run[None],
) -> None:
    async def scenario(a: Store, b: Store) -> None:
        old = a.month_lock("2026-10", seconds=0.2)
        assert await old.acquire()
        assert not await b.month_lock("2026-10", seconds=60).acquire()  # held
        await asyncio.sleep(0.4)  # the old owner's lock expires
        new = b.month_lock("2026-10", seconds=60)
        assert await new.acquire()
        with pytest.raises(LockNotOwnedError):
            await old.reacquire()
        with pytest.raises(LockNotOwnedError):
            await old.release()
        assert await new.owned()  # still the new owner's, with its own time
        assert await a.redis.pttl(a.keys.month_closing("2026-10")) > 50_000
        await new.release()
        assert not await a.redis.exists(a.keys.month_closing("2026-10"))

    stores(scenario)


def test_the_outbox_gauges_count_what_waits_per_outbox(stores: Run[None]) -> None:
    def gauge(name: str, outbox: str) -> float | None:
        return REGISTRY.get_sample_value(name, {"outbox": outbox})

    async def scenario(a: Store, _: Store) -> None:
        assert await a.record_payout(payout("H1"), 0, expire_at=int(time.time()) + 3600)
        await a.redis.zadd(a.keys.outbox(), {"H0:2026-09:1": time.time() - 7200})
        await outbox_gauges(a)
        assert gauge("loyalty_payout_outbox_entries", "payout") == 2
        age = gauge("loyalty_payout_outbox_oldest_age_seconds", "payout")
        assert age is not None and 7199 <= age <= 7300
        assert gauge("loyalty_payout_outbox_entries", "member_payment") == 0
        assert gauge("loyalty_payout_outbox_oldest_age_seconds", "member_payment") == 0
        await a.outbox_sent(box(a), await a.outbox_ids(box(a)))
        await outbox_gauges(a)
        assert gauge("loyalty_payout_outbox_entries", "payout") == 0
        assert gauge("loyalty_payout_outbox_oldest_age_seconds", "payout") == 0

    stores(scenario)
