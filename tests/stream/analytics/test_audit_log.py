"""audit/1 records from a real broker into ``audit_log`` on both ClickHouse engines, and the
"who read household X" query of the README and the operations dashboard."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import orjson
import pytest
from pydantic import SecretStr

from stream.analytics.audit_log import record_to_row
from stream.analytics.stage import LinesProcessor
from stream.audit import AuditLog, subject_key
from stream.clickhouse.engine import ClickHouse
from stream.clickhouse.migrate import migrate
from stream.devstack.broker import TansuBroker
from stream.kafka.publisher import KafkaPublisher
from stream.kafka.topics import Record, create_topics
from stream.settings import Settings
from tests.support.services import consume

AUDIT_KEY = b"audit-key-for-tests"

WHO_READ = """
SELECT client, action, outcome, count() AS accesses, max(at) AS last_at
FROM audit_log FINAL
WHERE subject_key = {key:String} AND at >= {start:DateTime('UTC')} AND at < {end:DateTime('UTC')}
GROUP BY client, action, outcome
ORDER BY client, action, outcome
"""


def test_records_land_in_audit_log_once_and_answer_who_read_a_household(
    kafka: TansuBroker, unique: str, clickhouse: ClickHouse
) -> None:
    settings = Settings(
        kafka_url=kafka.url, topic_prefix=f"{unique}.", audit_key=SecretStr(AUDIT_KEY.decode())
    )
    create_topics(kafka.bootstrap, {settings.topic("audit"): 1})

    async def write() -> None:
        audit = AuditLog.from_settings(settings)
        try:
            for client in ("checkout-app", "checkout-app", "dpo"):
                await audit.record(
                    action="bonus_read" if client != "dpo" else "subject_access",
                    subject="H-audit-1",
                    client=client,
                    outcome="ok",
                    detail="household month=2026-11",
                )
            await audit.record(
                action="bonus_read", subject="H-other", client="crm", outcome="not_found"
            )
            await audit.record(action="retention", subject=None, client="worker", outcome="ok")
        finally:
            await audit.close()

    asyncio.run(write())
    consumed = consume(kafka.bootstrap, settings.topic("audit"), 5)
    records = [Record(r.key, r.value) for r in consumed]
    garbage = Record(b"x", b'{"schema": "audit/1", "audit_id": "nope"}')

    async def sink() -> int:
        async with KafkaPublisher(settings.kafka_url) as pub:
            lines = LinesProcessor(settings, pub, client=clickhouse)
            try:
                first = await lines.process_audit([*records, garbage])
                again = await lines.process_audit(records)  # a redelivery
                return first + again
            finally:
                await lines.close()

    migrate(clickhouse)
    assert asyncio.run(sink()) == 10
    now = datetime.now(UTC)
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = datetime(start.year + start.month // 12, start.month % 12 + 1, 1, tzinfo=UTC)
    rows = clickhouse.query(
        WHO_READ,
        {
            "key": subject_key(AUDIT_KEY, "H-audit-1"),
            "start": start,
            "end": end,
        },
    )
    assert [r[:4] for r in rows] == [
        ("checkout-app", "bonus_read", "ok", 2),
        ("dpo", "subject_access", "ok", 1),
    ]
    total = clickhouse.query("SELECT count() FROM audit_log FINAL")
    assert total == [(5,)]
    stored = clickhouse.query("SELECT * FROM audit_log")
    assert "H-audit-1" not in repr(stored) and "H-other" not in repr(stored)
    dead = consume(kafka.bootstrap, settings.topic("dead-letters"), 1)
    assert orjson.loads(dead[0].value)["reason"] == "invalid_rows"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"schema": "audit/2"}, "schema"),
        ({"subject_key": "H100234"}, "hex"),
        ({"action": "peek"}, "unknown action"),
        ({"at": "2026-11-01T10:00:00"}, "offset"),
        ({"client": 7}, "client"),
    ],
)
def test_a_record_that_is_not_audit_1_is_refused(change: dict[str, object], message: str) -> None:
    good = {
        "schema": "audit/1",
        "audit_id": "0" * 32,
        "at": "2026-11-01T10:00:00.000Z",
        "client": "c",
        "action": "bonus_read",
        "subject_key": "a" * 32,
        "outcome": "ok",
        "detail": "",
    }
    assert record_to_row(good)[1] == datetime(2026, 11, 1, 10, tzinfo=UTC)
    with pytest.raises(ValueError, match=message):
        record_to_row({**good, **change})
