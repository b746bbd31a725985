"""The key names of stream/store/keys.py, and that the Lua scripts write exactly those keys."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import redis

from models.register import ErasureRequest, parse_register
from stream.bonus.register import register_op
from stream.devstack.redis_server import RedisServer
from stream.store import keys as keys_module
from stream.store.keys import Keys
from stream.store.store import Store
from tests.support import events


def test_every_key_carries_the_prefix_once() -> None:
    k = Keys("loyalty:")
    assert k.card("6390000000000001") == "loyalty:card:6390000000000001"
    assert k.household("H1") == "loyalty:hh:H1"
    assert k.household_ledger("H1") == "loyalty:hh:H1:ledger"
    assert k.household_capital("H1") == "loyalty:hh:H1:capital"
    assert k.person("P1") == "loyalty:person:P1"
    assert k.accumulator("H1", "2026-11") == "loyalty:acc:H1:2026-11"
    assert k.seen("H1", "2026-11") == "loyalty:seen:H1:2026-11"
    assert k.paid("H1", "2026-11") == "loyalty:paid:H1:2026-11"
    assert k.payout("H1:2026-11:2") == "loyalty:payout:H1:2026-11:2"
    assert k.outbox() == "loyalty:outbox"
    assert k.sending("H1:2026-11:2") == "loyalty:sending:H1:2026-11:2"
    assert k.held("6390000000000001") == "loyalty:held:6390000000000001"
    assert (k.held_index(), k.held_count()) == ("loyalty:held:index", "loyalty:held:count")
    assert k.month_households("2026-11") == "loyalty:month:2026-11:households"
    assert k.month_closed("2026-11") == "loyalty:month:2026-11:closed"
    assert k.month_closing("2026-11") == "loyalty:month:2026-11:closing"
    assert k.month_closes("2026-11") == "loyalty:month:2026-11:closes"
    assert k.month_scheduled("2026-11", "2026-12") == "loyalty:month:2026-11:scheduled:2026-12"
    assert k.member_payment("M1") == "loyalty:member-payment:M1"
    assert k.member_payments("2026") == "loyalty:member-payments:2026"
    payouts, members = k.payout_outbox(), k.member_payment_outbox()
    assert (payouts.outbox, payouts.record("X"), payouts.claim("X")) == (
        "loyalty:outbox",
        "loyalty:payout:X",
        "loyalty:sending:X",
    )
    assert (members.outbox, members.record("M1"), members.claim("M1")) == (
        "loyalty:outbox:member-payments",
        "loyalty:member-payment:M1",
        "loyalty:sending-member-payment:M1",
    )


def test_household_records_are_told_from_their_sub_keys_and_patterns_are_escaped() -> None:
    k = Keys("a*b:")
    assert k.household_id_of("a*b:hh:H1") == "H1"
    assert k.household_id_of("a*b:hh:H1:ledger") is None
    assert k.household_id_of("a*b:hh:") is None
    assert k.household_id_of("other:hh:H1") is None
    assert k.households_pattern() == "a\\*b:hh:*"
    assert k.all_pattern() == "a\\*b:*"
    assert k.unprefixed("a*b:outbox") == "outbox"
    assert k.unprefixed("c:outbox") is None


def _swipe_entry(event_id: str, card: str, *, from_hold: bool = False) -> dict[str, object]:
    now = int(time.time())
    return {
        "e": event_id,
        "c": card,
        "m": "2026-11",
        "d": "2026-11-10",
        "i": {"swipes": 1, "purchases_cents": 500},
        "x": now + 3600,
        "a": now + 3600,
        "h": 1 if from_hold else 0,
    }


async def _write_everything(store: Store) -> list[str]:
    ops = [
        register_op(parse_register(events.encode(e)), ZoneInfo("Europe/Helsinki"))
        for e in (
            events.household("HK", person_ids=["PK1"], capital_required_cents=100),
            events.card("6390000000000001", "HK"),
            events.capital_payment("CP1", "HK", 40),
        )
    ]
    assert await store.apply_register(ops) == ["applied"] * 3
    outcomes = await store.apply_swipes(
        [_swipe_entry("E1", "6390000000000001"), _swipe_entry("E2", "6390000000000009")],
        [b"{}", b"{}"],
    )
    assert [o.outcome for o in outcomes] == ["applied", "held"]
    ledger = await store.redis.hgetall(store.keys.household_ledger("HK"))
    assert ledger == {b"capital_paid_cents": b"40", b"capital_paid_cents:2026": b"40"}
    return [
        store.keys.household("HK"),
        store.keys.household_capital("HK"),
        store.keys.household_ledger("HK"),
        store.keys.card("6390000000000001"),
        store.keys.household_cards("HK"),
        store.keys.seen("HK", "2026-11"),
        store.keys.accumulator("HK", "2026-11"),
        store.keys.month_households("2026-11"),
        store.keys.held("6390000000000009"),
        store.keys.held_index(),
        store.keys.held_count(),
    ]


def test_the_lua_scripts_write_the_keys_that_keys_py_names(
    redis_server: RedisServer, redis_client: redis.Redis, redis_prefix: str
) -> None:
    async def run() -> list[str]:
        store = Store.from_url(redis_server.url, redis_prefix)
        try:
            return await _write_everything(store)
        finally:
            await store.close()

    expected = asyncio.run(run())
    written = sorted(k.decode() for k in redis_client.scan_iter(f"{redis_prefix}*"))
    assert written == sorted(expected)


async def _erase(store: Store) -> list[str]:
    """The keys of ``_write_everything``, then the household's erasure (contract section 9)."""
    await _write_everything(store)
    erasure = ErasureRequest("R1", "HK", datetime(2026, 11, 20, tzinfo=UTC))
    now = datetime(2026, 11, 21, tzinfo=UTC)
    op = register_op(erasure, months=["2026-11"], now=now)
    assert await store.apply_register([op]) == ["applied"]
    hk = op["hk"]
    return [
        store.keys.household_capital("HK"),  # member capital stays (contract section 9)
        store.keys.household_ledger("HK"),
        store.keys.held_count(),
        store.keys.erased(hk),
        store.keys.erased_recent(),
        store.keys.erasure_pending(),
        store.keys.erasure_request("R1"),
    ]


def test_the_erasure_leaves_only_the_keys_that_keys_py_names(
    redis_server: RedisServer, redis_client: redis.Redis, redis_prefix: str
) -> None:
    async def run() -> list[str]:
        store = Store.from_url(redis_server.url, redis_prefix)
        try:
            return await _erase(store)
        finally:
            await store.close()

    expected = asyncio.run(run())
    left = sorted(k.decode() for k in redis_client.scan_iter(f"{redis_prefix}*"))
    # the held swipe's card was never registered to the household: its hold stays
    assert left == sorted(
        [*expected, f"{redis_prefix}held:6390000000000009", f"{redis_prefix}held:index"]
    )


def test_nothing_outside_the_store_talks_to_redis() -> None:
    """Every Redis call of the service is a Store method: no client, no ``.redis.`` call
    elsewhere (the development stack's own readiness probe aside; the close holds the Store's
    ``Lock``)."""
    root = Path(__file__).resolve().parents[3]
    talks = re.compile(
        r"\.redis\.[a-z_]+\(|\b(Strict)?Redis(\.from_url)?\(|aioredis"
        r"|^\s*(import|from) redis\.asyncio(?!\.lock)"
    )
    found = [
        f"{path.relative_to(root)}:{n}"
        for base in ("stream", "agents")
        for path in sorted((root / base).rglob("*.py"))
        if not path.is_relative_to(root / "stream" / "store")
        and not path.is_relative_to(root / "stream" / "devstack")
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if talks.search(line)
    ]
    assert found == []


def test_every_key_name_a_lua_script_composes_is_one_of_keys_py() -> None:
    k = Keys("")
    named = {
        *(v for n, v in vars(keys_module).items() if n.isupper() and isinstance(v, str)),
        k.held_index(),
        k.held_count(),
        k.outbox(),
        k.erased_recent(),
        k.erasure_pending(),
        k.erasure_confirm(),
        k.erasure_request(""),
    }
    lua = Path(keys_module.__file__).with_name("lua")
    composed = {
        name
        for script in sorted(lua.glob("*.lua"))
        for name in re.findall(r"\bp \.\. '([^']*)'", script.read_text())
    }
    assert composed  # the pattern still finds them
    assert composed - named == set()


def test_the_raw_swipe_crosses_to_redis_only_for_an_unknown_card(
    redis_server: RedisServer, redis_client: redis.Redis, redis_prefix: str
) -> None:
    async def run() -> tuple[list[str], list[str]]:
        store = Store.from_url(redis_server.url, redis_prefix)
        try:
            await _write_everything(store)  # card ...0001 known, ...0009 unknown
            entries = [
                _swipe_entry("E3", "6390000000000001"),
                _swipe_entry("E4", "6390000000000008"),
            ]
            first = [o.outcome for o in await store.apply_swipes(entries, [b"raw-3", b"raw-4"])]
            try:
                await store.apply_swipes([_swipe_entry("E5", "6390000000000007")])
            except ValueError as exc:
                refused = [str(exc)]
            else:
                refused = []
            return first, refused
        finally:
            await store.close()

    outcomes, refused = asyncio.run(run())
    assert outcomes == ["applied", "held"]
    keys = Keys(redis_prefix)
    assert redis_client.hgetall(keys.held("6390000000000008")) == {b"E4": b"raw-4"}
    assert redis_client.hgetall(keys.held("6390000000000001")) == {}  # known: nothing held
    assert refused and "raw swipe" in refused[0]
    assert not redis_client.exists(keys.held("6390000000000007"))  # refused: nothing written
