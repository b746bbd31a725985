"""Version 3 purchase-line messages on both ClickHouse engines: the rows ClickHouse's view
writes are the rows the Python path writes; bad messages are refused one by one, never
taking good ones with them; an erased household's rows are dropped.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson
import pytest

from stream.analytics.lines import (
    encode,
    encode_v2,
    message_tuples,
    swipe_item,
    swipes_header,
)
from stream.analytics.sink import COLUMNS, PurchaseLineSink, SwipesMessage
from stream.analytics.stage import LinesProcessor
from stream.clickhouse.engine import ClickHouse
from stream.clickhouse.migrate import migrate
from stream.devstack.broker import TansuBroker
from stream.devstack.redis_server import RedisServer
from stream.errors import ClickHouseDataError, ClickHouseError, dependency_error
from stream.kafka.publisher import KafkaPublisher
from stream.kafka.topics import Record, create_topics
from stream.store.store import Store
from tests.support.services import consume
from tests.support.settings import isolated_settings

SELECT_ROWS = f"SELECT {', '.join(COLUMNS)} FROM purchase_lines FINAL ORDER BY event_id, line_no"


@dataclass(frozen=True)
class Line:
    sku: str
    product_group: str
    quantity: Any
    amount_cents: int
    fuel_ml: int | None = None


def item(
    event_id: str,
    *,
    lines: list[Line] | None = None,
    codes: tuple[int, ...] | None = None,
    kind: str = "purchase",
    household_key: int = 7,
    business: bool = False,
    occurred_at: str = "2026-11-21T12:03:12Z",
    month: str = "2026-11-01",
    campaign_id: str = "double-47",
) -> list[Any]:
    lines = lines or [Line("6408430000012", "dairy", 2, 398), Line("FUEL95", "fuel", 1, 1949, 10)]
    return swipe_item(
        event_id=event_id,
        occurred_at=occurred_at,
        month=month,
        store_id="S0042",
        household_key=household_key,
        co_op="hok-elanto",
        payment_method="s_etukortti_visa",
        kind=kind,
        campaign_id=campaign_id,
        business=business,
        lines=lines,
        codes=codes if codes is not None else tuple(i % 3 for i in range(len(lines))),
    )


def varied_items(prefix: str, count: int = 200) -> list[list[Any]]:
    """Swipes of every shape the swipe stage sends, and the odd quantities both parsers let
    through (more than 3 decimals: rounded half-even; the reference parser's Decimals)."""
    rnd = random.Random(11)
    odd = [2.0005, 1.0015, 0.1, 0.0005, 1.0025, 3, 999_999.9995, 0.001]
    fixed = [
        item(f"{prefix}odd-{i}-{kind}", lines=[Line("S", "g", q, 100 + i)], kind=kind)
        for i, q in enumerate(odd)
        for kind in ("purchase", "return")
    ]
    # the reference parser's lines: quantities as Decimal (swipe_item sends them as text)
    fixed.append(
        item(
            f"{prefix}ref",
            lines=[Line("A", "dairy", Decimal("2.000"), 5), Line("B", "x", Decimal("0.125"), 6)],
        )
    )
    fixed.append(item(f"{prefix}biz", business=True, kind="return", household_key=2**64 - 1))
    fixed.append(item(f"{prefix}oct", occurred_at="2026-10-31T23:59:59Z", month="2026-10-01"))
    fixed.append(item(f"{prefix}zero", household_key=0, campaign_id=""))
    out = list(fixed)
    for n in range(count):
        lines = [
            Line(
                f"64084300{rnd.randint(0, 99999):05d}",
                rnd.choice(["dairy", "fuel", "meat", 'ääkköset ja "lainaus" \\ ok']),
                rnd.choice([1, 2, rnd.randint(1, 999) / 1000, rnd.randint(1, 9999) / 100]),
                rnd.randint(0, 50_000),
                rnd.choice([None, 0, rnd.randint(1, 60_000)]),
            )
            for _ in range(rnd.randint(1, 12))
        ]
        out.append(
            item(
                f"{prefix}r-{n:04d}",
                lines=lines,
                codes=tuple(rnd.randint(0, 2) for _ in lines),
                kind="return" if rnd.random() < 0.2 else "purchase",
                household_key=rnd.getrandbits(64),
                business=rnd.random() < 0.1,
                campaign_id=rnd.choice(["", "double-47"]),
            )
        )
    return out


def v3_message(key: bytes, value: bytes) -> SwipesMessage:
    head = swipes_header(value)
    return SwipesMessage(key, value, head.rows, head.lines, head.households)


def without_prefix(rows: list[tuple[Any, ...]], prefix: str) -> list[tuple[Any, ...]]:
    assert all(row[0].startswith(prefix) for row in rows)
    return [(row[0][len(prefix) :], *row[1:]) for row in rows]


def test_version_3_writes_the_rows_of_the_python_path(clickhouse: ClickHouse) -> None:
    migrate(clickhouse)
    sink = PurchaseLineSink(clickhouse, batch_size=1000, batch_seconds=60)
    v2_items, v3_items = varied_items("v2-"), varied_items("v3-")
    expected_lines = sum(len(i[10]) for i in v2_items)
    for start in range(0, len(v2_items), 50):
        sink.add_tuples(message_tuples(encode_v2(v2_items[start : start + 50])))
    assert sink.flush(force=True) == expected_lines
    for start in range(0, len(v3_items), 50):
        sink.add_swipes(v3_message(b"k", encode(v3_items[start : start + 50])))
    assert sink.pending == expected_lines
    assert sink.flush(force=True) == expected_lines
    assert sink.rejected == []
    rows = clickhouse.query(SELECT_ROWS)
    v2_rows = without_prefix([r for r in rows if r[0].startswith("v2-")], "v2-")
    v3_rows = without_prefix([r for r in rows if r[0].startswith("v3-")], "v3-")
    assert len(v2_rows) == expected_lines
    assert v3_rows == v2_rows
    # and the Python path reads version 3 messages too (tools, an erased household)
    assert sorted(message_tuples(encode(v3_items))) == [r for r in rows if r[0].startswith("v3-")]
    quantities = {r[0]: r[9] for r in v2_rows if r[0].startswith("odd-")}
    assert quantities["odd-0-purchase"] == Decimal("2.000")  # 2.0005, half-even
    assert quantities["odd-0-return"] == Decimal("-2.000")
    assert quantities["odd-1-purchase"] == Decimal("1.002")  # 1.0015
    assert quantities["odd-1-return"] == Decimal("-1.002")
    assert quantities["odd-3-purchase"] == Decimal("0.000")  # 0.0005
    assert quantities["odd-4-purchase"] == Decimal("1.002")  # 1.0025
    assert quantities["odd-6-return"] == Decimal("-1000000.000")  # 999999.9995


def good(event_id: str) -> list[Any]:
    return item(event_id)


def raw_v3(rows: list[bytes], *, lines: int = 2, households: list[int] | None = None) -> bytes:
    header = {"v": 3, "lines": lines * len(rows), "households": households or [7]}
    return b"\n".join([orjson.dumps(header), *rows])


def changed(position: int, value: Any) -> Any:
    return lambda i: [*i[:position], value, *i[position + 1 :]]


#: the version 2 refusals (test_lines.BAD), as version 3 rows, and what version 3 adds
BAD_ITEMS: dict[str, Any] = {
    "not a list": lambda i: "x",
    "short": lambda i: i[:15],
    "long": lambda i: [*i, 1],
    "event_id": changed(0, 5),
    "empty event_id": changed(0, ""),
    "empty store_id": changed(3, ""),
    "occurred_at": changed(1, "yesterday"),
    "no offset": changed(1, "2026-11-21T12:03:12"),
    "no such day": changed(1, "2026-02-30T12:03:12Z"),
    "month": changed(2, "2026-11-02"),
    "kind": changed(7, "refund"),
    "household_key": changed(4, -1),
    "household_key text": changed(4, "x"),
    "business": changed(9, 2),
    "business bool": changed(9, True),
    "columns of other lengths": lambda i: [*i[:11], i[11][:1], *i[12:]],
    "no lines": lambda i: [*i[:10], [], [], [], [], [], []],
    "amount bool": lambda i: [*i[:13], [True, 1949], *i[14:]],
    "amount float": lambda i: [*i[:13], [1.5, 1949], *i[14:]],
    "code": lambda i: [*i[:15], [3, 1]],
    "code 256": lambda i: [*i[:15], [256, 1]],
    "quantity": lambda i: [*i[:12], ["x", 1], *i[13:]],
    "quantity list": lambda i: [*i[:12], [[1], 1], *i[13:]],
    "quantity null": lambda i: [*i[:12], [None, 1], *i[13:]],
    "sku number": lambda i: [*i[:10], [1, "B"], *i[11:]],
    "co_op null": changed(5, None),
}


def bad_messages() -> dict[str, bytes]:
    out = {
        name: raw_v3([orjson.dumps(change(good(f"bad-{name}")))])
        for name, change in BAD_ITEMS.items()
    }
    out["not JSON"] = raw_v3([b'["E", "2026-11-21T12:03:12Z", oops'])
    out["not UTF-8"] = raw_v3([orjson.dumps(good("bad-utf8")).replace(b"S0042", b"S\xff42")])
    return out


def test_bad_version_3_messages_are_refused_and_the_good_ones_land(
    clickhouse: ClickHouse,
) -> None:
    migrate(clickhouse)
    bad = bad_messages()
    for value in bad.values():  # the Python path refuses each as well
        with pytest.raises((ValueError, TypeError, KeyError)):
            message_tuples(value)
    sink = PurchaseLineSink(clickhouse, batch_size=100_000, batch_seconds=60)
    good_count = 0
    for name, value in bad.items():
        good_count += 1
        sink.add_swipes(v3_message(b"good", encode([good(f"good-{good_count}")])))
        sink.add_swipes(v3_message(name.encode(), value))
    assert sink.flush(force=True) == 2 * good_count
    refused = {message.key.decode(): reason for message, reason in sink.rejected if message.key}
    assert sorted(refused) == sorted(bad)
    # the view's own checks name their reason
    assert refused["code"] == "purchase line: code must be 0, 1 or 2"
    assert refused["empty store_id"] == "purchase line: store_id must be a non-empty string"
    assert refused["no lines"] == "purchase line: a swipe has 1 to 65536 lines"
    rows = clickhouse.query("SELECT event_id, count() FROM purchase_lines FINAL GROUP BY event_id")
    assert sorted(rows) == sorted((f"good-{n}", 2) for n in range(1, good_count + 1))
    assert sink.pending == 0


def test_stage_dead_letters_bad_messages_and_drops_erased_households(
    kafka: TansuBroker, redis_server: RedisServer, unique: str, clickhouse: ClickHouse
) -> None:
    settings = isolated_settings(
        kafka,
        redis_server,
        unique,
    )
    create_topics(kafka.bootstrap, {settings.topic("dead-letters"): 1})
    migrate(clickhouse)
    erased, kept = 2**64 - 3, 5
    both = encode([item("mixed-1", household_key=erased), item("mixed-2", household_key=kept)])
    records = [
        Record(b"a", encode([item("a-1"), item("a-2", kind="return")])),
        Record(b"bad-header", b'{"v":3,"lines":-1,"households":[7]}\n' + orjson.dumps(good("h"))),
        Record(b"bad-row", raw_v3([orjson.dumps(BAD_ITEMS["code"](good("bad-row")))])),
        Record(b"mixed", both),
        Record(b"v2", encode_v2([item("old-1", household_key=erased), item("old-2")])),
        Record(b"gone", encode([item("gone-1", household_key=erased)])),
    ]

    async def run() -> int:
        store = Store.from_url(settings.redis_url, settings.redis_prefix)
        await store.redis.zadd(store.keys.erased_recent(), {str(erased): time.time()})
        try:
            async with KafkaPublisher(settings.kafka_url) as pub:
                lines = LinesProcessor(settings, pub, store, client=clickhouse)
                try:
                    return await lines.process(records)
                finally:
                    await lines.close()
        finally:
            await store.close()

    written = asyncio.run(run())
    rows = clickhouse.query(
        "SELECT event_id, household_key, count() FROM purchase_lines FINAL "
        "GROUP BY event_id, household_key ORDER BY event_id"
    )
    assert rows == [("a-1", 7, 2), ("a-2", 7, 2), ("mixed-2", kept, 2), ("old-2", 7, 2)]
    assert written == 8
    dead = consume(kafka.bootstrap, settings.topic("dead-letters"), 2)
    letters = {r.key: orjson.loads(r.value) for r in dead}
    assert set(letters) == {b"bad-header", b"bad-row"}
    assert {letter["reason"] for letter in letters.values()} == {"invalid_rows"}
    assert letters[b"bad-row"]["detail"] == "purchase line: code must be 0, 1 or 2"
    assert "lines" in letters[b"bad-header"]["detail"]


def test_an_insert_that_fails_for_another_reason_keeps_the_messages(
    clickhouse: ClickHouse,
) -> None:
    """Not a data error (here: the table is not there yet): nothing is refused or dropped, the
    flush raises and a later one writes everything."""
    sink = PurchaseLineSink(clickhouse, batch_size=3, batch_seconds=60)
    for n in range(3):
        sink.add_swipes(v3_message(b"k", encode([item(f"t-{n}a"), item(f"t-{n}b")])))
    with pytest.raises(ClickHouseError) as failed:
        sink.flush(force=True)
    assert not isinstance(failed.value, ClickHouseDataError)
    assert (sink.pending, sink.rejected) == (12, [])
    migrate(clickhouse)
    assert sink.flush(force=True) == 12
    assert clickhouse.query("SELECT count() FROM purchase_lines FINAL") == [(12,)]


def test_clickhouse_data_errors_are_told_apart() -> None:
    from clickhouse_driver.errors import ServerException  # noqa: PLC0415

    assert isinstance(dependency_error(ServerException("bad row", code=27)), ClickHouseDataError)
    unknown_table = dependency_error(ServerException("no table", code=60))
    assert isinstance(unknown_table, ClickHouseError)
    assert not isinstance(unknown_table, ClickHouseDataError)
