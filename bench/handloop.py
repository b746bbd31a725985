"""The baseline of ``bench/throughput.py``: a plain aiokafka + orjson + redis-py batch loop.

Written for the bench only: it does the same Redis accumulation as the worker (the worker's own
Lua script, one call per fetched batch, the same increments: the bonus fields, the member
insights' product-group sums and the partners'; the bench compares the accumulators), with no
ClickHouse, no dead letters and only the validation it needs to compute the increments. It
commits its offsets after each batch. Run as a process: ``python bench/handloop.py BOOTSTRAP
TOPIC GROUP REDIS_URL PREFIX RULES``; it prints ``ready`` once it has its partitions and exits
when told (SIGTERM).
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from datetime import datetime
from pathlib import Path

import orjson
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.months import Month, days_after
from models.rules import load_rules

LUA = Path(__file__).resolve().parents[1] / "stream" / "store" / "lua" / "apply_swipes.lua"


async def run(argv: list[str]) -> None:
    bootstrap, topic, group, redis_url, prefix, rules_path = argv
    rules = load_rules(rules_path)
    tz = rules.timezone
    excluded_methods = rules.excluded_payment_methods
    benefit_methods = rules.payment_benefit_methods
    excluded_groups = rules.excluded_product_groups
    fuel_groups = rules.fuel_product_groups
    benefit_excluded = rules.payment_benefit_excluded_product_groups
    client = aioredis.Redis.from_url(redis_url)
    script = client.register_script(LUA.read_text())
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=500,
        session_timeout_ms=10000,
        heartbeat_interval_ms=3000,
    )
    await consumer.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    for _ in range(1200):  # joined the group (within a minute): the backlog may come now
        if consumer.assignment():
            break
        await asyncio.sleep(0.05)
    print("ready", flush=True)
    months: dict[Month, tuple[str, int, int]] = {}
    while not stop.is_set():
        batches = await consumer.getmany(timeout_ms=200, max_records=500)
        if not batches:
            continue
        entries = []
        raws: list[bytes] = []
        for records in batches.values():
            for record in records:
                s = orjson.loads(record.value)
                occurred = datetime.fromisoformat(s["occurred_at"])
                sign = -1 if s["kind"] == "return" else 1
                method = s["payment_method"]
                paid_ok = method not in excluded_methods
                benefit_method = method in benefit_methods
                campaign = rules.campaign_for(s["store_id"], occurred)
                inc: dict[str, int] = {"swipes": 1}
                if sign < 0:
                    inc["returns"] = 1
                for line in s["lines"]:
                    group = line["product_group"]
                    amount = sign * line["amount_cents"]
                    if not paid_ok or group in excluded_groups:
                        inc["excluded_cents"] = inc.get("excluded_cents", 0) + amount
                        continue
                    inc["purchases_cents"] = inc.get("purchases_cents", 0) + amount
                    g = "g:" + group  # the member insights' sums (contract section 13)
                    inc[g] = inc.get(g, 0) + amount
                    if group in fuel_groups:
                        inc["fuel_cents"] = inc.get("fuel_cents", 0) + amount
                        inc["fuel_ml"] = inc.get("fuel_ml", 0) + sign * (line.get("fuel_ml") or 0)
                    elif campaign is not None:
                        f = f"campaign_x{campaign.multiplier}_cents"
                        inc[f] = inc.get(f, 0) + amount
                    else:
                        inc["regular_cents"] = inc.get("regular_cents", 0) + amount
                    if benefit_method and group not in benefit_excluded:
                        inc["benefit_cents"] = inc.get("benefit_cents", 0) + amount
                partner = s.get("partner_id")
                partner_cents = inc.get("regular_cents", 0) + sum(
                    v for k, v in inc.items() if k.startswith("campaign_x")
                )
                if partner and partner_cents:
                    inc["partner_cents:" + partner] = partner_cents
                local = occurred.astimezone(tz)
                month = Month(local.year, local.month)
                m = months.get(month)
                if m is None:
                    m = months[month] = (
                        str(month),
                        int(days_after(month, 35, tz).timestamp()),
                        int(days_after(month, 31 * 24, tz).timestamp()),
                    )
                entries.append(
                    {
                        "e": s["event_id"],
                        "c": s["card"],
                        "m": m[0],
                        "d": local.date().isoformat(),
                        "i": {k: v for k, v in inc.items() if v},
                        "x": m[1],
                        "a": m[2],
                        "h": 0,
                    }
                )
                raws.append(record.value)
        now = int(time.time())
        found = orjson.loads(await script(args=[prefix, orjson.dumps(entries), now]))
        # As the worker does: the raw swipe goes to Redis only for a card it does not know.
        again = [
            e | {"r": raws[n].decode()} for n, e in enumerate(entries) if found[n][0] == "unknown"
        ]
        if again:
            await script(args=[prefix, orjson.dumps(again), now])
        await consumer.commit()
        await client.incrby(f"{prefix}bench:swipes", len(entries))  # what the bench polls
    await consumer.stop()
    await client.aclose()


if __name__ == "__main__":
    asyncio.run(run(sys.argv[1:7]))
