"""Redis: the payout ledger, the outboxes (contract sections 5 and 11), and the month close.

A payout is recorded by ``record_payout.lua`` (ledger, payout record and outbox entry in one
step), then sent by whoever claims it (``sending:{payout_id}``), then taken off the outbox.
The outbox methods work on any outbox, named by its :class:`~stream.store.keys.OutboxKeys`
(``Keys.payout_outbox()``, ``Keys.member_payment_outbox()``); ``stream.bonus.outbox`` sends.
The close itself runs under a redis-py :class:`~redis.asyncio.lock.Lock` (``month_lock``):
its release and extension are atomic scripts that touch the lock only while it holds our token.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.asyncio.lock import Lock

from models.payout import Payout
from stream.store.keys import Keys, OutboxKeys

_LUA = Path(__file__).with_name("lua")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else ("" if value is None else str(value))


@dataclass(frozen=True, slots=True)
class OutboxStats:
    entries: int  # recorded, not yet confirmed sent
    oldest_age_seconds: float  # 0 when the outbox is empty


class PayoutStore:
    """The payout and month-close part of :class:`stream.store.store.Store`."""

    redis: aioredis.Redis
    keys: Keys

    def __init__(self, client: aioredis.Redis, keys: Keys) -> None:
        self.redis = client
        self.keys = keys
        self._record_payout = client.register_script((_LUA / "record_payout.lua").read_text())

    # -- the payout ledger -------------------------------------------------------

    async def record_payout(self, payout: Payout, expected_seq: int, *, expire_at: int) -> bool:
        """Record the payout and move the ledger, only if its sequence is still expected."""
        k = self.keys
        hid, month = payout.household_id, payout.month
        done = await self._record_payout(
            keys=[
                k.paid(hid, month),
                k.household_ledger(hid),
                k.household(hid),
                k.payout(payout.payout_id),
                k.outbox(),
            ],
            args=[
                expected_seq,
                payout.payout_id,
                orjson.dumps(payout.to_json()),
                payout.base_bonus_cents,
                payout.fuel_bonus_cents,
                payout.payment_benefit_cents,
                payout.to_capital_cents,
                int(time.time()),
                expire_at,
                month,
            ],
        )
        return bool(done)

    async def outbox_ids(self, box: OutboxKeys) -> list[str]:
        """Ids recorded but not yet confirmed sent, oldest first."""
        return [_text(i) for i in await self.redis.zrange(box.outbox, 0, -1)]

    async def outbox_pending_among(self, box: OutboxKeys, ids: list[str]) -> set[str]:
        """The ids of ``ids`` still on the outbox (one round trip)."""
        if not ids:
            return set()
        scores = await self.redis.zmscore(box.outbox, ids)
        return {i for i, score in zip(ids, scores, strict=True) if score is not None}

    async def outbox_stats(self, box: OutboxKeys, now: float | None = None) -> OutboxStats:
        """How many entries wait on the outbox, and for how long the oldest has."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zcard(box.outbox)
            pipe.zrange(box.outbox, 0, 0, withscores=True)
            count, oldest = await pipe.execute()
        if not oldest:
            return OutboxStats(int(count), 0.0)
        now = time.time() if now is None else now
        return OutboxStats(int(count), max(0.0, now - float(oldest[0][1])))

    async def claim_outbox(self, box: OutboxKeys, ids: list[str], *, seconds: int) -> list[str]:
        """The ids of ``ids`` this sender may send: claimed now (for ``seconds``), and still on
        the outbox (another sender may have sent one and released its claim since the outbox
        was read). Give them back with :meth:`outbox_sent` or :meth:`release_outbox_claims`."""
        if not ids:
            return []
        token = secrets.token_hex(8)
        async with self.redis.pipeline(transaction=False) as pipe:
            for event_id in ids:
                pipe.set(box.claim(event_id), token, nx=True, ex=seconds)
            claimed = await pipe.execute()
        ours = [i for i, ok in zip(ids, claimed, strict=True) if ok]
        still = await self.outbox_pending_among(box, ours)
        await self.release_outbox_claims(box, [i for i in ours if i not in still])
        return [i for i in ours if i in still]

    async def release_outbox_claims(self, box: OutboxKeys, ids: list[str]) -> None:
        """Give up claims without sending (the next sender sends these)."""
        if ids:
            await self.redis.delete(*(box.claim(i) for i in ids))

    async def outbox_sent(self, box: OutboxKeys, ids: list[str]) -> None:
        """The broker confirmed these: off the outbox, claims released."""
        if not ids:
            return
        await self.redis.zrem(box.outbox, *ids)
        await self.release_outbox_claims(box, ids)

    async def outbox_records(self, box: OutboxKeys, ids: list[str]) -> list[bytes | None]:
        """The recorded JSON of each id (None where it expired)."""
        if not ids:
            return []
        bodies = await self.redis.mget([box.record(i) for i in ids])
        return [b if b is None or isinstance(b, bytes) else str(b).encode() for b in bodies]

    async def payouts_of(self, household_id: str, month: str, seq: int) -> list[dict[str, Any]]:
        """The payouts 1..``seq`` of a household-month that are still recorded."""
        ids = [f"{household_id}:{month}:{n}" for n in range(1, seq + 1)]
        found = await self.outbox_records(self.keys.payout_outbox(), ids)
        return [orjson.loads(b) for b in found if b is not None]

    # -- the month close -----------------------------------------------------------------

    def month_lock(self, month: str, *, seconds: float) -> Lock:
        """The close lock of ``month`` (not yet acquired): ``acquire(blocking=False)``,
        ``reacquire()`` to extend it to ``seconds`` again, ``release()``."""
        return Lock(
            self.redis,
            self.keys.month_closing(month),
            timeout=seconds,
            blocking=False,
            thread_local=False,
        )

    async def month_closed(self, month: str) -> bool:
        return bool(await self.redis.exists(self.keys.month_closed(month)))

    async def mark_month_closed(self, month: str, at: str) -> None:
        """Keep the time of the first close; count every completed close."""
        await self.redis.set(self.keys.month_closed(month), at, nx=True)
        await self.redis.incr(self.keys.month_closes(month))

    async def month_closes(self, month: str) -> int:
        return int(await self.redis.get(self.keys.month_closes(month)) or 0)

    async def scheduled_close_done(self, month: str, close_day_month: str) -> bool:
        return bool(await self.redis.exists(self.keys.month_scheduled(month, close_day_month)))

    async def mark_scheduled_close(
        self, month: str, close_day_month: str, at: str, *, keep_seconds: int
    ) -> None:
        key = self.keys.month_scheduled(month, close_day_month)
        await self.redis.set(key, at, ex=keep_seconds)
