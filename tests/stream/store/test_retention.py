"""Retention of per-month Redis state, on a real Redis."""

from __future__ import annotations

import asyncio
from collections import Counter

import redis

from models.months import Month
from stream.devstack.redis_server import RedisServer
from stream.store.keys import month_of_key
from stream.store.store import Store


def test_month_of_key_reads_every_per_month_key_and_nothing_else() -> None:
    assert month_of_key("acc:H1:2024-10") == ("acc", Month(2024, 10))
    assert month_of_key("seen:H-1.x:2024-10") == ("seen", Month(2024, 10))
    assert month_of_key("payout:H1:2024-10:3") == ("payout", Month(2024, 10))
    assert month_of_key("month:2024-10:households") == ("month", Month(2024, 10))
    for other in ("hh:H1", "hh:H1:capital", "card:6390000000000000", "held:index", "outbox"):
        assert month_of_key(other) is None


def _expire(url: str, prefix: str, keep_from: Month, *, dry_run: bool = False) -> Counter[str]:
    async def run() -> Counter[str]:
        store = Store.from_url(url, prefix)
        try:
            return await store.expire_months(keep_from, dry_run=dry_run)
        finally:
            await store.close()

    return asyncio.run(run())


def test_expire_months_removes_exactly_the_old_months(
    redis_client: redis.Redis, redis_prefix: str, redis_server: RedisServer
) -> None:
    months = ["2024-09", "2024-10", "2024-11", "2024-12", "2026-11"]
    for m in months:
        redis_client.hset(f"{redis_prefix}acc:H1:{m}", "swipes", 1)
        redis_client.sadd(f"{redis_prefix}seen:H1:{m}", "E")
        redis_client.set(f"{redis_prefix}payout:H1:{m}:1", "{}")
        redis_client.sadd(f"{redis_prefix}month:{m}:households", "H1")
    redis_client.hset(f"{redis_prefix}hh:H1", "co_op", "x")
    # a key that merely contains a per-month name is not one
    redis_client.hset(f"{redis_prefix}x:acc:H1:2024-09", "swipes", 1)
    keep_from = Month(2024, 11)

    planned = _expire(redis_server.url, redis_prefix, keep_from, dry_run=True)
    assert planned == {"acc": 2, "seen": 2, "payout": 2, "month": 2}
    assert redis_client.exists(f"{redis_prefix}acc:H1:2024-09") == 1  # dry run kept it

    removed = _expire(redis_server.url, redis_prefix, keep_from)
    assert removed == planned
    left = sorted(
        k.decode().removeprefix(redis_prefix) for k in redis_client.scan_iter(f"{redis_prefix}*")
    )
    assert left == sorted(
        ["hh:H1", "x:acc:H1:2024-09"]
        + [f"{kind}:H1:{m}" for kind in ("acc", "seen") for m in months[2:]]
        + [f"payout:H1:{m}:1" for m in months[2:]]
        + [f"month:{m}:households" for m in months[2:]]
    )
