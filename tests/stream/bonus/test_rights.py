"""The worker's rights run (contract section 9) with a driven clock, on both ClickHouse engines:
ended customers erased once their time has come (not a day before), retention of exactly the
months past the limit in Redis and ClickHouse, ``month:*`` expiries, and the segment build
leaving out households banning product-data marketing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import redis

from models.rules import load_rules
from stream.analytics.erasure import rows_of
from stream.analytics.pseudonym import household_key
from stream.analytics.stage import LinesProcessor
from stream.audit import AuditLog
from stream.bonus.register import RegisterProcessor
from stream.bonus.rights import run_rights
from stream.bonus.swipes import SwipeProcessor
from stream.clickhouse.engine import ClickHouse
from stream.clickhouse.migrate import migrate
from stream.devstack.broker import TansuBroker
from stream.devstack.redis_server import RedisServer
from stream.kafka.topics import Record
from stream.store.store import Store
from tests.support import events
from tests.support.services import TeePublisher, consume
from tests.support.settings import isolated_settings

RULES = load_rules("stream/rules.default.toml")
ENDED_AT = "2026-03-20T12:00:00+02:00"
ENDED_LIMIT = datetime(2027, 3, 20, 10, 0, tzinfo=UTC)  # 12 months after ENDED_AT
CARDS = {"HEND": "6390000000000301", "HACT": "6390000000000302", "HBAN": "6390000000000303"}


def records(*items: dict[str, Any]) -> list[Record]:
    return [Record(*events.keyed(e)) for e in items]


def person(pid: str, hid: str, bans: list[str]) -> dict[str, Any]:
    return {
        "schema": "register/1",
        "type": "person",
        "person_id": pid,
        "household_id": hid,
        "bans": bans,
        "email_marketing": True,
        "sms_marketing": True,
        "updated_at": "2024-01-01T09:00:00+02:00",
    }


def swipe(event_id: str, hid: str, when: str) -> dict[str, Any]:
    lines = [{"sku": "A", "product_group": "dairy", "quantity": 1, "amount_cents": 12_000}]
    return events.swipe(event_id, CARDS[hid], occurred_at=when, lines=lines)


def months_of(client: redis.Redis, prefix: str, hid: str) -> list[str]:
    keys = client.scan_iter(match=f"{prefix}acc:{hid}:*")
    return sorted(k.decode().rsplit(":", 1)[1] for k in keys)


def partitions(client: ClickHouse) -> list[str]:
    rows = client.query(
        "SELECT DISTINCT toString(toYYYYMM(month)) FROM purchase_lines FINAL ORDER BY 1"
    )
    return sorted(str(r[0]) for r in rows)


def test_the_rights_run_with_a_driven_clock(
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
        pseudonym_key="rights-test-key",
        retention_months=24,
        ended_retention_months=12,
    )
    prefix = settings.redis_prefix
    key = settings.pseudonym_key.get_secret_value().encode()
    migrate(clickhouse)

    async def scenario() -> dict[str, Any]:
        store = Store.from_url(settings.redis_url, settings.redis_prefix)
        out: dict[str, Any] = {}
        async with TeePublisher(settings.kafka_url, settings.topic("purchase-lines")) as pub:
            lines = LinesProcessor(settings, pub, store, client=clickhouse)
            audit = AuditLog.from_settings(settings, pub)
            sp = SwipeProcessor(settings, RULES, store, pub)
            rp = RegisterProcessor(settings, store, pub, sp)
            await rp.process(
                records(
                    events.household(
                        "HEND", status="ended", ended_at=ENDED_AT, person_ids=["PEND"]
                    ),
                    events.household("HACT", person_ids=["PACT"]),
                    events.household("HBAN", person_ids=["PBAN1", "PBAN2"]),
                    person("PEND", "HEND", []),
                    person("PACT", "HACT", []),
                    person("PBAN1", "HBAN", []),
                    person("PBAN2", "HBAN", ["product_data_marketing"]),
                    *(events.card(card, hid) for hid, card in CARDS.items()),
                )
            )
            await sp.process(
                records(
                    swipe("A-1", "HACT", "2025-02-10T10:00:00+02:00"),
                    swipe("A-2", "HACT", "2025-03-10T10:00:00+02:00"),
                    swipe("A-3", "HACT", "2025-04-10T10:00:00+03:00"),
                    swipe("A-4", "HACT", "2027-01-10T10:00:00+02:00"),
                    swipe("B-1", "HBAN", "2027-01-11T10:00:00+02:00"),
                    swipe("E-1", "HEND", "2026-02-10T10:00:00+02:00"),
                )
            )
            await lines.process(pub.lines)
            out["partitions_before"] = partitions(clickhouse)
            out["hact_before"] = months_of(redis_client, prefix, "HACT")
            out["hend_rows_before"] = rows_of(clickhouse, [household_key(key, "HEND")])

            # A day before the ended household's time: retention runs, HEND stays.
            day_before = ENDED_LIMIT - timedelta(days=1)
            out["first"] = await run_rights(settings, RULES, store, lines, audit, now=day_before)
            out["hend_after_first"] = await store.redis.exists(store.keys.household("HEND"))
            out["hact_after_first"] = months_of(redis_client, prefix, "HACT")
            out["partitions_after_first"] = partitions(clickhouse)
            out["month_ttl"] = await store.redis.ttl(store.keys.month_households("2027-01"))
            out["segment_keys"] = {
                int(k)
                for (k,) in clickhouse.query(
                    "SELECT DISTINCT household_key FROM household_segments"
                )
            }
            # Not due again within the day, even with the ended household due.
            out["not_due"] = await run_rights(
                settings, RULES, store, lines, audit, now=day_before + timedelta(hours=23)
            )
            out["hend_not_due"] = await store.redis.exists(store.keys.household("HEND"))
            # A day after: due again, and HEND is erased everywhere.
            out["second"] = await run_rights(
                settings, RULES, store, lines, audit, now=ENDED_LIMIT + timedelta(days=1)
            )
            out["hend_after_second"] = await store.redis.exists(
                store.keys.household("HEND"), store.keys.card(CARDS["HEND"])
            )
            out["hend_rows_after"] = rows_of(clickhouse, [household_key(key, "HEND")])
            out["hend_acc"] = months_of(redis_client, prefix, "HEND")
            await lines.close()
        await store.close()
        return out

    r = asyncio.run(scenario())
    assert r["partitions_before"] == ["202502", "202503", "202504", "202602", "202701"]
    assert r["hact_before"] == ["2025-02", "2025-03", "2025-04", "2027-01"]
    assert r["hend_rows_before"] == 1
    first = r["first"]
    assert first is not None and first.ended_erased == 0 and r["hend_after_first"] == 1
    # 24 months kept on 2027-03-19: from 2025-04; exactly 2025-02 and 2025-03 go.
    assert r["hact_after_first"] == ["2025-04", "2027-01"]
    assert r["partitions_after_first"] == ["202504", "202602", "202701"]
    assert first.partitions_dropped >= 2
    assert first.redis_removed["acc"] == 2
    assert 0 < r["month_ttl"] <= (24 * 31 + 95) * 86400
    hact, hban = household_key(key, "HACT"), household_key(key, "HBAN")
    assert hact in r["segment_keys"] and hban not in r["segment_keys"]
    assert first.segments_excluded == 1
    assert r["not_due"] is None and r["hend_not_due"] == 1
    second = r["second"]
    assert second is not None and second.ended_erased == 1 and second.clickhouse_erasures == 1
    assert r["hend_after_second"] == 0
    assert r["hend_rows_after"] == 0 and r["hend_acc"] == []
    # Each run and the erasure left one audit record, keyed by a hash, never the id.
    audits = [orjson.loads(m.value) for m in consume(kafka.bootstrap, settings.topic("audit"), 3)]
    assert sorted((a["action"], a["client"], a["outcome"]) for a in audits) == [
        ("erasure", "worker", "ok"),
        ("retention", "worker", "ok"),
        ("retention", "worker", "ok"),
    ]
    erasure = next(a for a in audits if a["action"] == "erasure")
    assert erasure["subject_key"] and "HEND" not in orjson.dumps(audits).decode()
