"""Redis: the live tables and accumulators. Every write is one atomic, idempotent Lua call.

The Store owns every Redis call of the service: nothing outside ``stream/store`` talks to
Redis. Its keys are named in :mod:`stream.store.keys` (all start with
``Settings.redis_prefix``); the payout ledger, the outboxes and the month close are in
:mod:`stream.store.outbox`.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import orjson
import redis.asyncio as aioredis

from models.bonus import Accumulator
from models.consent import product_data_banned_households
from models.member_payment import MemberPayment
from models.months import Month
from models.payout import PaidSoFar
from stream.store.keys import Keys, glob_escape, month_of_key
from stream.store.outbox import PayoutStore

_LUA = Path(__file__).with_name("lua")


class SwipeOutcome(NamedTuple):
    """What ``apply_swipes.lua`` did with one swipe (a tuple: one is made per swipe)."""

    outcome: str  # applied | duplicate | held | blocked | expired
    household_id: str
    co_op: str
    business: bool


@dataclass(frozen=True, slots=True)
class Household:
    household_id: str
    co_op: str
    business: bool
    status: str
    capital_required_cents: int
    payout_account: str
    person_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class YearFacts:
    """What the member payments of one household and year are computed from."""

    household: Household | None
    head_person_id: str
    ledger: dict[str, int]
    monthly_purchases_cents: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class MonthState:
    """Everything the API and the close need about one household-month, read at once."""

    household: Household | None
    accumulator: Accumulator
    paid: PaidSoFar
    closed: bool
    capital_paid_cents: int
    bonus_to_capital_cents: int

    @property
    def capital_remaining_cents(self) -> int:
        if self.household is None:
            return 0
        return max(
            0,
            self.household.capital_required_cents
            - self.capital_paid_cents
            - self.bonus_to_capital_cents,
        )


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else ("" if value is None else str(value))


def _pairs(flat: Any) -> dict[str, str]:
    """A hash from ``read_many``'s flat ``[field, value, ...]`` (``{}`` when it was absent)."""
    if not flat:
        return {}
    return dict(zip(flat[::2], flat[1::2], strict=True))


def household_from_hash(household_id: str, data: dict[Any, Any]) -> Household | None:
    if not data:
        return None
    d = {_text(k): _text(v) for k, v in data.items()}
    return Household(
        household_id=household_id,
        co_op=d.get("co_op", ""),
        business=d.get("business") == "1",
        status=d.get("status", ""),
        capital_required_cents=int(d.get("capital_required_cents") or 0),
        payout_account=d.get("payout_account", ""),
        person_ids=tuple(orjson.loads(d.get("person_ids") or "[]")),
    )


def paid_from_hash(data: dict[Any, Any]) -> PaidSoFar:
    d = {_text(k): int(_text(v)) for k, v in data.items()}
    return PaidSoFar(
        seq=d.get("seq", 0),
        base_bonus_cents=d.get("base_bonus_cents", 0),
        fuel_bonus_cents=d.get("fuel_bonus_cents", 0),
        payment_benefit_cents=d.get("payment_benefit_cents", 0),
    )


class Store(PayoutStore):
    """Async access to our Redis keys. One instance per process.

    ``redis`` is the client, for tests that set up or inspect keys by hand; the service itself
    calls only the Store's methods.
    """

    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        super().__init__(client, Keys(prefix))
        self.prefix = prefix
        self._apply_swipes = client.register_script((_LUA / "apply_swipes.lua").read_text())
        self._apply_register = client.register_script((_LUA / "apply_register.lua").read_text())
        self._release_held = client.register_script((_LUA / "release_held.lua").read_text())
        self._record_member_payment = client.register_script(
            (_LUA / "record_member_payment.lua").read_text()
        )
        self._read_many = client.register_script((_LUA / "read_many.lua").read_text())
        self._set_household_key = client.register_script(
            (_LUA / "set_household_key.lua").read_text()
        )

    @classmethod
    def from_url(cls, url: str, prefix: str) -> Store:
        client = aioredis.Redis.from_url(
            url, socket_timeout=10, socket_connect_timeout=5, health_check_interval=30
        )
        return cls(client, prefix)

    async def close(self) -> None:
        await self.redis.aclose()

    async def ping(self) -> bool:
        return bool(await self.redis.ping())

    async def apply_swipes(
        self, entries: list[dict[str, Any]], raws: Sequence[bytes] | None = None
    ) -> list[SwipeOutcome]:
        """Apply swipe entries (``apply_swipes.lua``) in one atomic step; one outcome each.

        An entry without ``r`` (the raw swipe, kept while its card is unknown) takes it from
        ``raws`` (same order) only if its card turns out to be unknown: those entries are sent
        again with it, so the common case sends no raw swipe at all.
        """
        if not entries:
            return []
        now = int(time.time())
        found = orjson.loads(
            await self._apply_swipes(args=[self.prefix, orjson.dumps(entries), now])
        )
        unknown = [n for n, item in enumerate(found) if item[0] == "unknown"]
        if unknown:
            if raws is None:
                raise ValueError("apply_swipes: an entry of an unknown card needs its raw swipe")
            again = [entries[n] | {"r": raws[n].decode("utf-8", errors="replace")} for n in unknown]
            answers = orjson.loads(
                await self._apply_swipes(args=[self.prefix, orjson.dumps(again), now])
            )
            for n, item in zip(unknown, answers, strict=True):
                found[n] = item
        return [SwipeOutcome(o, h, c, b == "1") for o, h, c, b in found]

    async def apply_register(self, ops: list[dict[str, Any]]) -> list[str]:
        """Apply register ops (``stream.bonus.register.register_op``). Their keys are
        unprefixed names from :mod:`stream.store.keys`; the script adds the prefix (an erasure
        finds most of its keys only from what it reads)."""
        if not ops:
            return []
        return [_text(r) for r in await self._apply_register(args=[self.prefix, orjson.dumps(ops)])]

    async def release_held(self, card: str, event_ids: list[str]) -> int:
        """Take swipes off the hold without crediting them (they went to dead letters)."""
        if not event_ids:
            return 0
        k = self.keys
        return int(
            await self._release_held(
                keys=[k.held(card), k.held_count(), k.held_index()], args=[card, *event_ids]
            )
        )

    async def held_swipes(self, cards: list[str]) -> dict[str, dict[str, bytes]]:
        """card -> {event_id: swipe JSON} on hold, for many cards in one round trip."""
        if not cards:
            return {}
        async with self.redis.pipeline(transaction=False) as pipe:
            for card in cards:
                pipe.hgetall(self.keys.held(card))
            found = await pipe.execute()
        return {
            card: {_text(k): v if isinstance(v, bytes) else v.encode() for k, v in data.items()}
            for card, data in zip(cards, found, strict=True)
            if data
        }

    async def held_cards(self, older_than: float | None = None, limit: int = 1000) -> list[str]:
        """Cards with held swipes, oldest first (optionally only those held before a time)."""
        top = "+inf" if older_than is None else older_than
        cards = await self.redis.zrangebyscore(
            self.keys.held_index(), "-inf", top, start=0, num=limit
        )
        return [_text(c) for c in cards]

    async def held_cards_count(self, older_than: float) -> int:
        """How many cards have swipes held since before ``older_than`` (epoch seconds)."""
        return int(await self.redis.zcount(self.keys.held_index(), "-inf", older_than))

    async def held_count(self) -> int:
        return int(await self.redis.get(self.keys.held_count()) or 0)

    async def held_oldest_at(self) -> float | None:
        """When the longest-waiting card's first swipe was held (epoch seconds), or None."""
        oldest = await self.redis.zrange(self.keys.held_index(), 0, 0, withscores=True)
        return float(oldest[0][1]) if oldest else None

    async def cards_with_held(self, cards: list[str]) -> list[str]:
        """The cards among ``cards`` that have swipes on hold (one round trip)."""
        if not cards:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for card in cards:
                pipe.exists(self.keys.held(card))
            found = await pipe.execute()
        return [card for card, n in zip(cards, found, strict=True) if n]

    async def known_cards(self, cards: list[str]) -> set[str]:
        if not cards:
            return set()
        async with self.redis.pipeline(transaction=False) as pipe:
            for card in cards:
                pipe.exists(self.keys.card(card))
            found = await pipe.execute()
        return {card for card, n in zip(cards, found, strict=True) if n}

    async def card_household(self, card: str) -> str | None:
        hid = await self.redis.hget(self.keys.card(card), "household_id")
        return _text(hid) if hid else None

    async def month_state(self, household_id: str, month: str) -> MonthState:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(self.keys.household(household_id))
            pipe.hgetall(self.keys.accumulator(household_id, month))
            pipe.hgetall(self.keys.paid(household_id, month))
            pipe.exists(self.keys.month_closed(month))
            pipe.hgetall(self.keys.household_ledger(household_id))
            hh, acc, paid, closed, ledger = await pipe.execute()
        ledger_d = {_text(k): int(_text(v)) for k, v in ledger.items()}
        return MonthState(
            household=household_from_hash(household_id, hh),
            accumulator=Accumulator.from_fields({_text(k): _text(v) for k, v in acc.items()}),
            paid=paid_from_hash(paid),
            closed=bool(closed),
            capital_paid_cents=ledger_d.get("capital_paid_cents", 0),
            bonus_to_capital_cents=ledger_d.get("bonus_to_capital_cents", 0),
        )

    # -- member payments (contract section 11) -------------------------------------------

    async def household_id_batches(self, count: int = 1000) -> AsyncIterator[list[str]]:
        """Every household with a snapshot (``hh:{H}``), in batches (SCAN: no order, and a
        household may come twice if Redis rehashes meanwhile; callers deduplicate)."""
        batch: list[str] = []
        async for raw in self.redis.scan_iter(match=self.keys.households_pattern(), count=count):
            household_id = self.keys.household_id_of(_text(raw))
            if household_id is None:
                continue
            batch.append(household_id)
            if len(batch) >= count:
                yield batch
                batch = []
        if batch:
            yield batch

    async def set_household_keys(self, keys: dict[str, int], chunk: int = 1000) -> int:
        """Store each household's new pseudonymous key (``household_key``, the key of its
        ClickHouse rows) after a pseudonym key rotation; households not held are skipped.
        Returns how many snapshots were updated."""
        items = sorted(keys.items())
        updated = 0
        for start in range(0, len(items), chunk):
            part = items[start : start + chunk]
            updated += int(
                await self._set_household_key(
                    keys=[self.keys.household(h) for h, _ in part],
                    args=[str(k) for _, k in part],
                )
            )
        return updated

    async def households(self, household_ids: list[str]) -> list[Household | None]:
        """Snapshots of many households in one round trip (None where there is none)."""
        found = await self.read_many([["hgetall", self.keys.household(h)] for h in household_ids])
        return [
            household_from_hash(h, _pairs(d)) for h, d in zip(household_ids, found, strict=True)
        ]

    async def read_many(self, reads: list[list[str]]) -> list[Any]:
        """Many hash reads in one Lua call and one JSON reply (see ``read_many.lua``);
        full keys (``self.keys``). Absent: ``[]``/``{}`` for hgetall, ``False`` for a value."""
        if not reads:
            return []
        answer = await self._read_many(args=[orjson.dumps(reads)])
        return list(orjson.loads(answer))

    async def year_facts(self, household_ids: list[str], year: int) -> list[YearFacts]:
        """Snapshot, capital ledger and the twelve months' purchases of each household."""
        months = [f"{year:04d}-{m:02d}" for m in range(1, 13)]
        reads: list[list[str]] = []
        for household_id in household_ids:
            reads.append(["hgetall", self.keys.household(household_id)])
            reads.append(["hgetall", self.keys.household_ledger(household_id)])
            reads += [
                ["hget", self.keys.accumulator(household_id, m), "purchases_cents"] for m in months
            ]
        found = await self.read_many(reads)
        step = 2 + len(months)
        out = []
        for n, household_id in enumerate(household_ids):
            hh, ledger, *purchases = found[n * step : (n + 1) * step]
            d = _pairs(hh)
            out.append(
                YearFacts(
                    household=household_from_hash(household_id, d),
                    head_person_id=d.get("head_person_id", ""),
                    ledger={k: int(v) for k, v in _pairs(ledger).items()},
                    monthly_purchases_cents=tuple(int(p) for p in purchases if p),
                )
            )
        return out

    async def record_member_payments(
        self, entries: list[tuple[MemberPayment, str]], *, now: int, expire_at: int
    ) -> list[bool]:
        """Record each ``(payment, head_person_id)`` once per ``payment_id`` and put it on the
        member payments' outbox; True where recorded now, False where it already was. The
        payments of one call must be of one year."""
        if not entries:
            return []
        years = {payment.year for payment, _ in entries}
        if len(years) != 1:
            raise ValueError(f"member payments of one year at a time, got {sorted(years)}")
        batch = [
            [
                payment.payment_id,
                orjson.dumps(payment.to_json()).decode(),
                head_person_id,
                self.keys.member_payment(payment.payment_id),
            ]
            for payment, head_person_id in entries
        ]
        done = await self._record_member_payment(
            keys=[
                self.keys.member_payments(str(years.pop())),
                self.keys.member_payment_outbox().outbox,
            ],
            args=[now, expire_at, orjson.dumps(batch)],
        )
        return [bool(d) for d in done]

    async def member_payment_index(self, year: int) -> dict[str, str]:
        """payment_id -> head_person_id of every member payment recorded for ``year``."""
        found = await self.redis.hgetall(self.keys.member_payments(str(year)))
        return {_text(k): _text(v) for k, v in found.items()}

    async def member_payment_records(self, payment_ids: list[str]) -> list[dict[str, Any] | None]:
        if not payment_ids:
            return []
        bodies = await self.redis.mget([self.keys.member_payment(i) for i in payment_ids])
        return [orjson.loads(b) if b is not None else None for b in bodies]

    # -- what-if (loyalty simulate) ---------------------------------------------------------

    async def month_household_batches(
        self, month: str, count: int = 1000
    ) -> AsyncIterator[list[str]]:
        """The households with an accumulator in ``month``, in batches (deduplicated)."""
        seen: set[str] = set()
        cursor = 0
        members = self.keys.month_households(month)
        while True:
            cursor, found = await self.redis.sscan(members, cursor=cursor, count=count)
            batch = sorted({_text(b) for b in found} - seen)
            seen.update(batch)
            if batch:
                yield batch
            if cursor == 0:
                break

    async def accumulators(self, household_ids: list[str], month: str) -> list[Accumulator]:
        """The household-months' accumulators in one round trip (empty where there is none)."""
        found = await self.read_many(
            [["hgetall", self.keys.accumulator(h, month)] for h in household_ids]
        )
        return [Accumulator.from_fields(_pairs(d)) for d in found]

    # -- register rights (contract section 9) ---------------------------------------------

    async def erased_among(self, keys: Iterable[int]) -> set[int]:
        """The household keys among ``keys`` whose household was erased (recently)."""
        wanted = sorted(set(keys))
        if not wanted or not await self.redis.zcard(self.keys.erased_recent()):
            return set()  # the common case: no recent erasure, no keys to send
        scores = await self.redis.zmscore(self.keys.erased_recent(), [str(k) for k in wanted])
        return {k for k, score in zip(wanted, scores, strict=True) if score is not None}

    async def due_erasures(self, now: float) -> tuple[list[int], list[int]]:
        """(first pass, confirming pass): household keys whose ClickHouse rows are due for
        deletion now. The confirming pass, a while after the first, catches rows another
        worker was inserting while the erasure happened."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zrangebyscore(self.keys.erasure_pending(), "-inf", now)
            pipe.zrangebyscore(self.keys.erasure_confirm(), "-inf", now)
            first, second = await pipe.execute()
        return [int(_text(k)) for k in first], [int(_text(k)) for k in second]

    async def erasures_done(self, first: list[int], second: list[int], confirm_at: float) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            if first:
                pipe.zrem(self.keys.erasure_pending(), *map(str, first))
                pipe.zadd(self.keys.erasure_confirm(), {str(k): confirm_at for k in first})
            if second:
                pipe.zrem(self.keys.erasure_confirm(), *map(str, second))
            await pipe.execute()

    async def prune_erased(self, before: float) -> int:
        """Forget erasures older than ``before`` for the analytics filter (the tombstones
        that keep stale snapshots out stay)."""
        return int(await self.redis.zremrangebyscore(self.keys.erased_recent(), "-inf", before))

    # -- register records in bulk (the marketing export) ---------------------------------

    async def _hashes(self, keys: list[str]) -> list[dict[str, str]]:
        out: list[dict[str, str]] = []
        for start in range(0, len(keys), 500):
            async with self.redis.pipeline(transaction=False) as pipe:
                for key in keys[start : start + 500]:
                    pipe.hgetall(key)
                found = await pipe.execute()
            out.extend({_text(k): _text(v) for k, v in d.items()} for d in found)
        return out

    async def household_records(self, household_ids: list[str]) -> list[dict[str, str]]:
        """The raw ``hh:{H}`` hash of each household ({} where there is none)."""
        return await self._hashes([self.keys.household(h) for h in household_ids])

    async def person_records(self, person_ids: list[str]) -> list[dict[str, str]]:
        """The raw ``person:{P}`` hash of each person ({} where there is none)."""
        return await self._hashes([self.keys.person(p) for p in person_ids])

    # -- retention -----------------------------------------------------------------------

    async def expire_months(
        self,
        keep_from: Month,
        *,
        dry_run: bool = False,
        expire_at: Callable[[Month], int] | None = None,
    ) -> Counter[str]:
        """Delete per-month keys of months before ``keep_from``; returns counts by kind.

        Accumulators, seen-sets and payout records carry an expiry from the moment they are
        written; this sweep covers a shortened retention period and keys from before that.
        With ``expire_at`` (epoch of a month's end of retention), every ``month:*`` key still
        kept that has no expiry gets one, so none outlives the retention period.
        """
        removed: Counter[str] = Counter()
        batch: list[bytes | str] = []
        lasting: list[tuple[bytes | str, int]] = []
        async for raw in self.redis.scan_iter(match=self.keys.all_pattern(), count=1000):
            name = self.keys.unprefixed(_text(raw))
            found = None if name is None else month_of_key(name)
            if found is None:
                continue
            if found[1] >= keep_from:
                if expire_at is not None and found[0] == "month" and not dry_run:
                    lasting.append((raw, expire_at(found[1])))
                continue
            removed[found[0]] += 1
            if not dry_run:
                batch.append(raw)
                if len(batch) >= 1000:
                    await self.redis.unlink(*batch)
                    batch.clear()
        if batch:
            await self.redis.unlink(*batch)
        for start in range(0, len(lasting), 1000):
            async with self.redis.pipeline(transaction=False) as pipe:
                for raw, at in lasting[start : start + 1000]:
                    pipe.expireat(raw, at, nx=True)
                await pipe.execute()
        return removed

    async def ended_households(self) -> list[tuple[str, str]]:
        """``(household_id, ended_at)`` of every household whose snapshot says ended."""
        out: list[tuple[str, str]] = []
        async for batch in self.household_id_batches():
            async with self.redis.pipeline(transaction=False) as pipe:
                for household_id in batch:
                    pipe.hmget(self.keys.household(household_id), "status", "ended_at")
                found = await pipe.execute()
            for household_id, (status, ended_at) in zip(batch, found, strict=True):
                if _text(status) == "ended" and ended_at:
                    out.append((household_id, _text(ended_at)))
        return sorted(set(out))

    async def product_data_banned_households(self) -> set[str]:
        """Households a current person of which bans ``product_data_marketing`` (read from
        every person and household snapshot: for segment building, not per request)."""
        persons: dict[str, tuple[str, frozenset[str]]] = {}
        head = self.keys.person("")
        ids = [
            _text(raw)[len(head) :]
            async for raw in self.redis.scan_iter(match=glob_escape(head) + "*", count=1000)
        ]
        for start in range(0, len(ids), 1000):
            chunk = ids[start : start + 1000]
            async with self.redis.pipeline(transaction=False) as pipe:
                for pid in chunk:
                    pipe.hmget(self.keys.person(pid), "household_id", "bans")
                found = await pipe.execute()
            for pid, (hid, bans) in zip(chunk, found, strict=True):
                persons[pid] = (_text(hid), frozenset(orjson.loads(_text(bans) or "[]")))
        households: dict[str, list[str]] = {}
        async for batch in self.household_id_batches():
            async with self.redis.pipeline(transaction=False) as pipe:
                for household_id in batch:
                    pipe.hget(self.keys.household(household_id), "person_ids")
                found = await pipe.execute()
            for household_id, listed in zip(batch, found, strict=True):
                households[household_id] = list(orjson.loads(_text(listed) or "[]"))
        return product_data_banned_households(persons, households)

    async def build_member_indexes(self) -> int:
        """Once per Redis: the household index sets (``hh:{H}:cards``, ``hh:{H}:persons``)
        of cards and persons registered before the register script kept them (an erasure
        finds a household's cards and persons through them). Returns the entries added."""
        if await self.redis.exists(self.keys.rights_indexed()):
            return 0
        added = 0
        for head, index in (
            (self.keys.card(""), self.keys.household_cards),
            (self.keys.person(""), self.keys.household_persons),
        ):
            ids = [
                _text(raw)[len(head) :]
                async for raw in self.redis.scan_iter(match=glob_escape(head) + "*", count=1000)
            ]
            for start in range(0, len(ids), 1000):
                chunk = ids[start : start + 1000]
                async with self.redis.pipeline(transaction=False) as pipe:
                    for entity in chunk:
                        pipe.hget(head + entity, "household_id")
                    owners = await pipe.execute()
                async with self.redis.pipeline(transaction=False) as pipe:
                    for entity, owner in zip(chunk, owners, strict=True):
                        if owner:
                            pipe.sadd(index(_text(owner)), entity)
                    added += sum(int(n) for n in await pipe.execute())
        await self.redis.set(self.keys.rights_indexed(), "1")
        return added

    async def rights_run_due(self, now: float, interval: float) -> bool:
        """Whether the worker's rights run (retention, ended customers) is due."""
        last = await self.redis.get(self.keys.rights_last_run())
        return last is None or now - float(_text(last)) >= interval

    async def rights_run_done(self, now: float) -> None:
        await self.redis.set(self.keys.rights_last_run(), repr(now))

    # -- right of access (contract section 9) ---------------------------------------------

    async def person_record(self, person_id: str) -> dict[str, str]:
        """The raw ``person:{P}`` hash ({} when there is none)."""
        return (await self._hashes([self.keys.person(person_id)]))[0]

    async def subject_records(self, household_id: str) -> dict[str, Any]:
        """Everything Redis holds on a household, raw: its snapshot, cards and persons (by the
        index and the snapshot's list), capital payments and ledger, the months it has
        accumulators or payouts in, payout records, held swipes of its cards."""
        keys = self.keys
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(keys.household(household_id))
            pipe.smembers(keys.household_cards(household_id))
            pipe.smembers(keys.household_persons(household_id))
            pipe.hgetall(keys.household_capital(household_id))
            pipe.hgetall(keys.household_ledger(household_id))
            hh, cards, persons, capital, ledger = await pipe.execute()
        household = {_text(k): _text(v) for k, v in hh.items()}
        person_ids = {_text(p) for p in persons}
        person_ids.update(orjson.loads(household.get("person_ids") or "[]"))
        months: set[str] = set()
        for head in (keys.accumulator(household_id, ""), keys.paid(household_id, "")):
            async for raw in self.redis.scan_iter(match=glob_escape(head) + "*", count=1000):
                months.add(_text(raw)[len(head) :])
        ordered = sorted(months)
        card_list = sorted(_text(c) for c in cards)
        person_list = sorted(person_ids)
        card_records = await self._hashes([keys.card(c) for c in card_list])
        person_records = await self._hashes([keys.person(p) for p in person_list])
        paid = await self._hashes([keys.paid(household_id, m) for m in ordered])
        payout_ids = [
            f"{household_id}:{m}:{n}"
            for m, p in zip(ordered, paid, strict=True)
            for n in range(1, int(p.get("seq") or 0) + 1)
        ]
        bodies = await self.redis.mget([keys.payout(i) for i in payout_ids]) if payout_ids else []
        held = await self.held_swipes(card_list)
        return {
            "household": household,
            "cards": {
                c: r
                for c, r in zip(card_list, card_records, strict=True)
                if r and r.get("household_id") == household_id
            },
            "persons": {
                p: r
                for p, r in zip(person_list, person_records, strict=True)
                if r and r.get("household_id") in {household_id, ""}
            },
            "capital_payments": {_text(k): int(_text(v)) for k, v in capital.items()},
            "ledger": {_text(k): int(_text(v)) for k, v in ledger.items()},
            "months": ordered,
            "payouts": [orjson.loads(b) for b in bodies if b is not None],
            "held": {c: [orjson.loads(v) for v in s.values()] for c, s in held.items()},
        }

    # -- member insights (contract section 13) --------------------------------------------

    async def insight_months(
        self, household_id: str, months: list[str]
    ) -> tuple[dict[str, str], list[dict[str, str]]]:
        """The household's snapshot and each month's raw accumulator (with its by-group
        fields), in one round trip."""
        found = await self._hashes(
            [self.keys.household(household_id)]
            + [self.keys.accumulator(household_id, m) for m in months]
        )
        return found[0], found[1:]

    async def household_bans(self, household_id: str) -> set[str]:
        """Every ban of the household's current persons (listed or naming it)."""
        keys = self.keys
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hget(keys.household(household_id), "person_ids")
            pipe.smembers(keys.household_persons(household_id))
            listed, indexed = await pipe.execute()
        persons = {_text(p) for p in indexed} | set(orjson.loads(_text(listed) or "[]"))
        records = await self._hashes([keys.person(p) for p in sorted(persons)])
        bans: set[str] = set()
        for record in records:
            if record and record.get("household_id") in {household_id, ""}:
                bans.update(orjson.loads(record.get("bans") or "[]"))
        return bans
