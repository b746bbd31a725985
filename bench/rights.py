"""How long an erasure takes, and how large a subject-access document is, for a household with
24 months of history (contract section 9); and what a member-insights request costs.

    python bench/rights.py [--background-rows 500000] [--swipes-per-month 30]
                           [--engines chdb,server] [--insights-requests 2000]

Starts its own Redis (devstack) and, for ``server``, the Debian clickhouse-server 18.16 on free
ports in a temporary directory. The household's swipes go through the real swipe path
(``SwipeProcessor``: Lua accumulators, purchase-line rows) into Redis and into each engine next
to ``--background-rows`` lines of other households spread over the same 24 months; then the
subject-access document is built, and the erasure is timed: the Redis part (one Lua call) and
the ClickHouse part (``delete_households``: a mutation on 18.16, lightweight DELETE on chdb).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.months import Month
from models.register import ErasureRequest, parse_register
from models.rules import load_rules
from stream.analytics.erasure import delete_households, rows_of
from stream.analytics.pseudonym import household_key
from stream.analytics.sink import COLUMNS, row_to_tuple
from stream.analytics.stage import LinesProcessor
from stream.bonus.insights import insights_body
from stream.bonus.register import erasure_months, register_op
from stream.bonus.subject import clickhouse_part, subject_access
from stream.bonus.swipes import SwipeProcessor
from stream.clickhouse.connect import connect
from stream.clickhouse.engine import ClickHouse
from stream.clickhouse.migrate import migrate
from stream.devstack.clickhouse_server import ClickHouseServerProcess, find_clickhouse_server
from stream.devstack.redis_server import RedisServer
from stream.kafka.topics import Record
from stream.settings import Settings
from stream.store.store import Store

RULES = load_rules(Path(__file__).resolve().parents[1] / "stream" / "rules.default.toml")
KEY = b"bench-pseudonym-key"
HOUSEHOLD, CARD = "H-BENCH", "6390000000009999"
GROUPS = ["dairy", "bread", "meat", "produce", "snacks", "drinks", "household", "fuel"]
MONTHS = [Month(2024, 12).minus(-n) for n in range(24)]  # 2024-12 .. 2026-11


class Collect:
    """A Publisher that keeps what it is given (the bench has no broker)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    async def send(self, topic: str, key: bytes | None, value: bytes) -> None:
        self.sent.append((topic, value))

    async def flush(self) -> None:
        return None


def swipes(per_month: int, seed: int = 3) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    out = []
    for month in MONTHS:
        for n in range(per_month):
            day = rnd.randint(1, 28)
            lines: list[dict[str, Any]] = []
            for _ in range(rnd.randint(1, 6)):
                group = rnd.choice(GROUPS[:-1])
                lines.append(
                    {
                        "sku": f"SKU{rnd.randint(1, 999)}",
                        "product_group": group,
                        "quantity": 1,
                        "amount_cents": rnd.randint(50, 4000),
                    }
                )
            out.append(
                {
                    "schema": "swipe/1",
                    "event_id": f"B-{month}-{n}",
                    "kind": "purchase",
                    "card": CARD,
                    "store_id": "S0001",
                    "occurred_at": f"{month}-{day:02d}T12:00:00+02:00",
                    "currency": "EUR",
                    "payment_method": "s_etukortti_visa",
                    "total_cents": sum(x["amount_cents"] for x in lines),
                    "lines": lines,
                }
            )
    return out


def background(count: int, seed: int = 11) -> list[tuple[Any, ...]]:
    rnd = random.Random(seed)
    rows = []
    for n in range(count):
        month = rnd.choice(MONTHS)
        rows.append(
            row_to_tuple(
                {
                    "event_id": f"BG-{n // 4}",
                    "line_no": n % 4,
                    "occurred_at": f"{month}-{rnd.randint(1, 28):02d}T10:00:00Z",
                    "month": f"{month}-01",
                    "store_id": "S0002",
                    "household_key": rnd.getrandbits(64),
                    "co_op": "hok-elanto",
                    "sku": "X",
                    "product_group": rnd.choice(GROUPS),
                    "quantity": "1",
                    "amount_cents": rnd.randint(50, 4000),
                    "fuel_ml": 0,
                    "payment_method": "cash",
                    "bonus_eligible": 1,
                    "kind": "purchase",
                    "campaign_id": "",
                }
            )
        )
    return rows


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


async def seed_redis(settings: Settings, per_month: int) -> tuple[Store, list[Record]]:
    store = Store.from_url(settings.redis_url, settings.redis_prefix)
    register = [
        {
            "schema": "register/1",
            "type": "household",
            "household_id": HOUSEHOLD,
            "co_op": "hok-elanto",
            "head_person_id": "P-B1",
            "person_ids": ["P-B1", "P-B2"],
            "business": False,
            "status": "active",
            "capital_required_cents": 10000,
            "payout_account": "FI00BENCH",
            "updated_at": "2024-11-01T09:00:00+02:00",
        },
        {
            "schema": "register/1",
            "type": "card",
            "card": CARD,
            "household_id": HOUSEHOLD,
            "person_id": "P-B1",
            "status": "active",
            "valid_until": "2030-12-31",
            "updated_at": "2024-11-01T09:00:00+02:00",
        },
        *(
            {
                "schema": "register/1",
                "type": "person",
                "person_id": p,
                "household_id": HOUSEHOLD,
                "bans": [],
                "email_marketing": True,
                "sms_marketing": False,
                "updated_at": "2024-11-01T09:00:00+02:00",
            }
            for p in ("P-B1", "P-B2")
        ),
    ]
    await store.apply_register(
        [register_op(parse_register(orjson.dumps(e)), key=KEY) for e in register]
    )
    publisher = Collect()
    processor = SwipeProcessor(settings, RULES, store, publisher)
    events = swipes(per_month)
    for start in range(0, len(events), 500):
        chunk = events[start : start + 500]
        await processor.process([Record(CARD.encode(), orjson.dumps(e)) for e in chunk])
    rows = [Record(b"lines", v) for topic, v in publisher.sent if topic.endswith("purchase-lines")]
    return store, rows


async def one_engine(
    name: str, client: ClickHouse, settings: Settings, bg: list[tuple[Any, ...]], args: Any
) -> None:
    store, rows = await seed_redis(settings, args.swipes_per_month)
    migrate(client)
    client.execute("TRUNCATE TABLE purchase_lines")
    for start in range(0, len(bg), 50_000):
        client.insert("purchase_lines", COLUMNS, bg[start : start + 50_000])
    await LinesProcessor(settings, Collect(), client=client).process(rows)
    hk = household_key(KEY, HOUSEHOLD)

    async def analytics(hid: str, _stored_key: str | None) -> Any:  # as `loyalty rights`
        return clickhouse_part(client, household_key(KEY, hid))

    t_doc = time.perf_counter()
    document = await subject_access(store, RULES, household_id=HOUSEHOLD, analytics=analytics)
    t_doc = time.perf_counter() - t_doc
    size = len(orjson.dumps(document))
    # insights cost (Redis only)
    months = [str(m) for m in MONTHS[-12:]]
    t_ins = time.perf_counter()
    for _ in range(args.insights_requests):
        await insights_body(store, RULES, HOUSEHOLD, months, months[-1])
    per_insight = (time.perf_counter() - t_ins) / args.insights_requests
    now = datetime.now(UTC)
    op = register_op(
        ErasureRequest("ER-BENCH", HOUSEHOLD, now),
        key=KEY,
        months=erasure_months(now, 24),
        now=now,
    )
    t_redis = time.perf_counter()
    await store.apply_register([op])
    t_redis = time.perf_counter() - t_redis
    before = rows_of(client, [hk])
    t_ch, _ = timed(lambda: delete_households(client, [hk]))
    after = rows_of(client, [hk])
    print(
        f"{name}: {before} lines of the household among {len(bg)} others; "
        f"subject-access document {size:,} bytes ({len(document['months'])} months, "
        f"{len(document['purchase_lines'])} lines) built in {t_doc * 1000:.0f} ms; "
        f"erasure: Redis {t_redis * 1000:.1f} ms, ClickHouse {t_ch * 1000:.0f} ms "
        f"(rows {before} -> {after}); insights {per_insight * 1e6:.0f} us/request"
    )
    await store.close()
    client.close()


async def run(args: argparse.Namespace, tmp: Path) -> None:
    with RedisServer(tmp / "redis", fsync="everysec") as redis_server:
        engines: list[tuple[str, Callable[[], ClickHouse]]] = []
        server: ClickHouseServerProcess | None = None
        if "chdb" in args.engines:
            engines.append(("chdb", lambda: connect(f"chdb://{tmp}/chdb?database=bench")))
        if "server" in args.engines and find_clickhouse_server() is not None:
            server = ClickHouseServerProcess(tmp / "server").__enter__()
            engines.append(("server 18.16", lambda: connect(server.url_for("bench"))))
        bg = background(args.background_rows)
        try:
            for name, make in engines:
                settings = Settings(
                    _env_file=None,
                    redis_url=redis_server.url,
                    redis_prefix=f"b{uuid.uuid4().hex[:6]}:",
                    pseudonym_key=KEY.decode(),
                )
                await one_engine(name, make(), settings, bg, args)
        finally:
            if server is not None:
                server.__exit__(None, None, None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--background-rows", type=int, default=500_000)
    parser.add_argument("--swipes-per-month", type=int, default=30)
    parser.add_argument("--engines", default="chdb,server")
    parser.add_argument("--insights-requests", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-rights-") as tmp:
        asyncio.run(run(args, Path(tmp)))


if __name__ == "__main__":
    main()
