"""Erasure (contract section 9) across every store: Redis, both ClickHouse engines, the API.

One household is seeded everywhere the service keeps data (register snapshots, swipes with a
return and held ones, a closed month with a payout, purchase lines, segments), next to a
household that must stay byte-for-byte as it was; then the erasure is processed.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from typing import Any

import orjson
import redis
from fastapi.testclient import TestClient

from models.months import Month
from models.register import parse_register
from models.rules import load_rules
from stream.analytics.erasure import rows_of
from stream.analytics.lines import message_rows
from stream.analytics.pseudonym import household_key
from stream.analytics.segments import build_segments
from stream.analytics.stage import LinesProcessor
from stream.api import create_api
from stream.auth import Clients
from stream.bonus.close import close_month
from stream.bonus.register import RegisterProcessor, register_op
from stream.bonus.swipes import SwipeProcessor
from stream.clickhouse.engine import ClickHouse
from stream.clickhouse.migrate import migrate
from stream.devstack.broker import TansuBroker
from stream.devstack.redis_server import RedisServer
from stream.kafka.publisher import KafkaPublisher
from stream.kafka.topics import Record
from stream.settings import Settings
from stream.store.store import Store
from tests.support import events
from tests.support.events import person
from tests.support.services import TeePublisher
from tests.support.settings import isolated_settings

RULES = load_rules("stream/rules.default.toml")
GONE, KEPT = "HE", "HK"
GONE_PERSONS, KEPT_PERSONS = ["PE1", "PE2"], ["PK1"]
GONE_CARDS = ["6390000000000101", "6390000000000102"]
HELD_CARD = GONE_CARDS[1]  # its swipes are on hold when the erasure comes
KEPT_CARD = "6390000000000201"
ERASURE = {
    "schema": "register/1",
    "type": "erasure",
    "request_id": "ER-1",
    "household_id": GONE,
    "requested_at": "2026-11-25T10:00:00+02:00",
}


def purchase(event_id: str, card: str, when: str, cents: int, **extra: Any) -> dict[str, Any]:
    lines = [
        {"sku": "A", "product_group": "dairy", "quantity": 1, "amount_cents": cents // 2},
        {"sku": "B", "product_group": "meat", "quantity": 1, "amount_cents": cents - cents // 2},
    ]
    return events.swipe(event_id, card, occurred_at=when, lines=lines, **extra)


def records(*items: dict[str, Any]) -> list[Record]:
    return [Record(*events.keyed(e)) for e in items]


def snapshot(client: redis.Redis, prefix: str) -> dict[str, Any]:
    """Every key of the prefix with its contents, read by type."""
    out: dict[str, Any] = {}
    for raw in client.scan_iter(match=f"{prefix}*", count=1000):
        key = raw.decode()[len(prefix) :]
        kind = client.type(raw).decode()
        if kind == "hash":
            out[key] = client.hgetall(raw)
        elif kind == "set":
            out[key] = client.smembers(raw)
        elif kind == "zset":
            out[key] = dict(client.zrange(raw, 0, -1, withscores=True))
        else:
            out[key] = client.get(raw)
    return out


def mentions(value: Any, needles: list[str]) -> bool:
    text = repr(value)
    return any(n in text for n in needles)


def kept_view(state: dict[str, Any], gone: list[str]) -> dict[str, Any]:
    """The keys that are not about the erased household (global sets minus its members)."""
    out: dict[str, Any] = {}
    for key, held in state.items():
        if mentions(key, gone) or key.startswith(("erased", "erasure", "held:")):
            continue
        value = held
        if isinstance(held, set):
            value = {v for v in held if not mentions(v, gone)}
        elif key == "outbox":
            value = {k: s for k, s in held.items() if not mentions(k, gone)}
        out[key] = value
    return out


def ch_rows(client: ClickHouse, hk: int) -> tuple[list[Any], list[Any]]:
    lines = client.query(
        "SELECT * FROM purchase_lines FINAL WHERE household_key != {k:UInt64} "
        "ORDER BY event_id, line_no",
        {"k": hk},
    )
    segs = client.query(
        "SELECT * FROM household_segments WHERE household_key != {k:UInt64} "
        "ORDER BY build_month, segment, household_key",
        {"k": hk},
    )
    return lines, segs


async def seed(settings: Settings, store: Store, lines: LinesProcessor, pub: TeePublisher) -> None:
    sp = SwipeProcessor(settings, RULES, store, pub)
    rp = RegisterProcessor(settings, store, pub, sp)
    register = [
        events.household(GONE, person_ids=GONE_PERSONS, capital_required_cents=10_000),
        events.household(KEPT, person_ids=KEPT_PERSONS, capital_required_cents=0),
        *(person(p, GONE) for p in GONE_PERSONS),
        *(person(p, KEPT) for p in KEPT_PERSONS),
        events.card(GONE_CARDS[0], GONE),
        events.card(KEPT_CARD, KEPT),
        events.capital_payment("CP-1", GONE, 2500),
        events.capital_payment("CP-2", KEPT, 1000),
    ]
    await rp.process(records(*register))
    swipes = [
        purchase("E-1", GONE_CARDS[0], "2026-10-03T10:00:00+03:00", 40_000),
        purchase("E-2", GONE_CARDS[0], "2026-11-04T10:00:00+02:00", 30_000),
        purchase("E-3", GONE_CARDS[0], "2026-11-05T10:00:00+02:00", 2_000, kind="return"),
        purchase("K-1", KEPT_CARD, "2026-10-03T11:00:00+03:00", 60_000),
        purchase("K-2", KEPT_CARD, "2026-11-06T11:00:00+02:00", 25_000),
        purchase("E-4", HELD_CARD, "2026-11-07T10:00:00+02:00", 1_000),  # card not yet known
    ]
    counts = await sp.process(records(*swipes))
    assert counts == {"applied": 5, "held": 1, "rejected": 0}
    # The held card becomes known without its hold drained (a crash between the two steps).
    card_event = events.card(HELD_CARD, GONE)
    await store.apply_register(
        [register_op(parse_register(events.encode(card_event)), key=key_of(settings))]
    )
    report = await close_month(
        settings, RULES, store, pub, Month(2026, 10), now=datetime(2026, 11, 10, tzinfo=UTC)
    )
    assert report.payouts == 2
    await lines.process(pub.lines)
    await pub.flush()


def key_of(settings: Settings) -> bytes:
    return settings.pseudonym_key.get_secret_value().encode()


def test_an_erasure_removes_the_household_from_every_store(
    kafka: TansuBroker,
    redis_server: RedisServer,
    redis_client: redis.Redis,
    unique: str,
    clickhouse: ClickHouse,
) -> None:
    settings = isolated_settings(
        kafka,
        redis_server,
        unique,
        pseudonym_key="erasure-test-key",
    )
    prefix = settings.redis_prefix
    hk = household_key(key_of(settings), GONE)
    kept_hk = household_key(key_of(settings), KEPT)
    migrate(clickhouse)
    gone_ids = [GONE, *GONE_PERSONS, *GONE_CARDS]

    async def scenario() -> dict[str, Any]:
        store = Store.from_url(settings.redis_url, settings.redis_prefix)
        async with TeePublisher(settings.kafka_url, settings.topic("purchase-lines")) as pub:
            lines = LinesProcessor(settings, pub, store, client=clickhouse)
            await seed(settings, store, lines, pub)
            await asyncio.to_thread(build_segments, clickhouse, date(2026, 11, 1), 3)
            result: dict[str, Any] = {
                "rows_before": await asyncio.to_thread(rows_of, clickhouse, [hk]),
                "kept_rows_before": await asyncio.to_thread(rows_of, clickhouse, [kept_hk]),
                "redis_before": snapshot(redis_client, prefix),
                "ch_before": await asyncio.to_thread(ch_rows, clickhouse, hk),
            }
            sp = SwipeProcessor(settings, RULES, store, pub)
            rp = RegisterProcessor(settings, store, pub, sp)
            result["first"] = await rp.process(records(ERASURE))
            result["erased_in_ch"] = await lines.run_erasures()
            result["redis_after"] = snapshot(redis_client, prefix)
            result["rows_after"] = await asyncio.to_thread(rows_of, clickhouse, [hk])
            result["ch_after"] = await asyncio.to_thread(ch_rows, clickhouse, hk)
            # Lines of the household still on their way (a swipe applied just before the
            # erasure) are dropped by the sink, never inserted.
            late = [row for m in pub.lines for row in message_rows(m.value or b"[]")]
            late = [row for row in late if row["household_key"] == hk]
            assert late
            result["late_lines"] = await lines.process([Record(b"late", orjson.dumps(late))])
            result["rows_late"] = await asyncio.to_thread(rows_of, clickhouse, [hk])
            # The same request again, a stale snapshot, a swipe of its card.
            result["second"] = await rp.process(records(ERASURE))
            result["stale"] = await rp.process(
                records(
                    events.household(GONE, updated_at="2026-11-20T09:00:00+02:00"),
                    events.card(GONE_CARDS[0], GONE, updated_at="2026-11-20T09:00:00+02:00"),
                    person(GONE_PERSONS[0], GONE),
                )
            )
            result["swipe"] = await sp.process(
                records(purchase("E-9", GONE_CARDS[0], "2026-11-26T10:00:00+02:00", 500))
            )
            result["confirm"] = await lines.run_erasures(now=datetime.now(UTC).timestamp() + 301)
            result["confirm_again"] = await lines.run_erasures(
                now=datetime.now(UTC).timestamp() + 302
            )
            await lines.close()
        with TestClient(create_api(settings, RULES, clients=Clients.disabled())) as api:
            result["api"] = [
                api.get(f"/v1/households/{GONE}/bonus?month=2026-11").status_code,
                api.get(f"/v1/households/{GONE}/bonus?month=2026-10").status_code,
                *(api.get(f"/v1/cards/{c}/bonus").status_code for c in GONE_CARDS),
                api.get(f"/v1/households/{KEPT}/bonus?month=2026-11").status_code,
            ]
        result["final"] = snapshot(redis_client, prefix)
        await store.close()
        return result

    r = asyncio.run(scenario())
    assert r["rows_before"] > 0 and r["kept_rows_before"] > 0
    before = r["redis_before"]
    assert any(k.startswith(f"payout:{GONE}:2026-10") for k in before)  # really seeded
    assert before[f"held:{HELD_CARD}"] and before[f"acc:{GONE}:2026-11"]
    assert r["first"] == {"applied": 1}
    assert r["erased_in_ch"] == 1
    after = r["redis_after"]
    # Only the member-capital ledger is left under the household id; no key or value names
    # its persons or cards.
    left = sorted(k for k, v in after.items() if mentions(k, gone_ids) or mentions(v, gone_ids))
    assert left == [f"hh:{GONE}:capital", f"hh:{GONE}:ledger"]
    assert after[f"hh:{GONE}:ledger"] == before[f"hh:{GONE}:ledger"]
    assert int(after[f"hh:{GONE}:ledger"][b"bonus_to_capital_cents"]) > 0
    assert kept_view(after, gone_ids) == kept_view(before, gone_ids)
    assert after["held:count"] == b"0"
    assert r["rows_after"] == 0 and r["rows_late"] == 0 and r["late_lines"] == 0
    assert r["ch_after"] == r["ch_before"] and r["ch_before"][0] and r["ch_before"][1]
    assert r["second"] == {"duplicate": 1}
    assert r["stale"] == {"stale": 3}
    assert r["swipe"] == {"held": 1, "rejected": 0}  # an unknown card now
    assert r["confirm"] == 1 and r["confirm_again"] == 0
    final = r["final"]
    assert not any(k.startswith((f"acc:{GONE}", f"hh:{GONE}:cards")) for k in final)
    assert f"hh:{GONE}" not in final and f"card:{GONE_CARDS[0]}" not in final
    assert r["api"] == [404, 404, 404, 404, 200]


def test_a_newer_snapshot_after_an_erasure_is_a_new_relationship(
    kafka: TansuBroker, redis_server: RedisServer, unique: str
) -> None:
    settings = isolated_settings(
        kafka,
        redis_server,
        unique,
    )

    async def scenario() -> list[dict[str, int]]:
        store = Store.from_url(settings.redis_url, settings.redis_prefix)
        async with KafkaPublisher(settings.kafka_url) as pub:
            sp = SwipeProcessor(settings, RULES, store, pub)
            rp = RegisterProcessor(settings, store, pub, sp)
            out = [
                await rp.process(records(events.household(GONE), events.card(GONE_CARDS[0], GONE))),
                await rp.process(records(ERASURE)),
                await rp.process(
                    records(
                        events.household(GONE, updated_at="2026-12-01T09:00:00+02:00"),
                        events.card(GONE_CARDS[0], GONE, updated_at="2026-12-01T09:00:00+02:00"),
                    )
                ),
                await sp.process(
                    records(purchase("N-1", GONE_CARDS[0], "2026-12-02T10:00:00+02:00", 900))
                ),
            ]
            state = await store.month_state(GONE, "2026-12")
            out.append({"swipes": state.accumulator.swipes})
            # the analytics sink stores the new relationship's lines again
            hk = household_key(key_of(settings), GONE)
            out.append({"erased": len(await store.erased_among([hk]))})
        await store.close()
        return out

    assert asyncio.run(scenario()) == [
        {"applied": 2},
        {"applied": 1},
        {"applied": 2},
        {"applied": 1, "rejected": 0},
        {"swipes": 1},
        {"erased": 0},
    ]


def test_cards_and_persons_registered_before_the_indexes_are_found_by_an_erasure(
    redis_server: RedisServer, redis_client: redis.Redis, unique: str
) -> None:
    prefix = f"{unique}:"
    # as an earlier version of the register script left them: no hh:{H}:cards / :persons
    redis_client.hset(f"{prefix}hh:{GONE}", mapping={"co_op": "x", "person_ids": "[]"})
    redis_client.hset(f"{prefix}card:{GONE_CARDS[0]}", mapping={"household_id": GONE})
    redis_client.hset(f"{prefix}person:{GONE_PERSONS[0]}", mapping={"household_id": GONE})
    redis_client.hset(f"{prefix}card:{KEPT_CARD}", mapping={"household_id": KEPT})

    async def scenario() -> list[Any]:
        store = Store.from_url(redis_server.url, prefix)
        first = await store.build_member_indexes()
        second = await store.build_member_indexes()
        erased = await store.apply_register(
            [register_op(parse_register(events.encode(ERASURE)), months=["2026-11"])]
        )
        await store.close()
        return [first, second, erased]

    assert asyncio.run(scenario()) == [3, 0, ["applied"]]
    assert not redis_client.exists(
        f"{prefix}hh:{GONE}", f"{prefix}card:{GONE_CARDS[0]}", f"{prefix}person:{GONE_PERSONS[0]}"
    )
    assert redis_client.exists(f"{prefix}card:{KEPT_CARD}")
