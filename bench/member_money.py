"""How long ``member-payments`` and ``simulate`` take for many households.

    python bench/member_money.py [--households 100000] [--months 10]

Starts a Redis server (AOF, ``appendfsync everysec``) and a Tansu broker in a temporary
directory, loads that many households with a capital ledger and twelve accumulators of 2025
each (as the swipe and register processors leave them), then times, in this order:

- ``member-payments 2025`` (records and sends about two events per household to the broker);
- the same again (everything already recorded: the cost of a repeat run);
- ``simulate`` over ``--months`` months of 2025 with a candidate raising one tier's rate (exact,
  from the accumulators).

Prints seconds and rates; stops every process it started.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import redis

from models.months import Month
from models.rules import CoOpYear, Rules, Tier, load_rules
from stream.bonus.member_payments import run_member_payments
from stream.bonus.simulate import run_simulation
from stream.devstack.broker import TansuBroker
from stream.devstack.redis_server import RedisServer
from stream.kafka.publisher import KafkaPublisher
from stream.kafka.topics import Topics, create_topics_async
from stream.settings import DEFAULT_RULES, Settings
from stream.store.store import Store

CO_OPS = ("hok-elanto", "pirkanmaan-osuuskauppa")
YEAR = 2025


def load(client: redis.Redis, prefix: str, households: int, seed: int = 2025) -> int:
    """Households, capital ledgers and twelve accumulators each; returns keys written."""
    rnd = random.Random(seed)
    written = 0
    pipe = client.pipeline(transaction=False)
    for n in range(households):
        hid = f"H{n:07d}"
        required = rnd.choice((0, 5000, 10_000, 10_000, 20_000))
        paid = min(required, rnd.choice((0, 2500, 5000, 10_000)))
        pipe.hset(
            f"{prefix}hh:{hid}",
            mapping={
                "co_op": CO_OPS[n % len(CO_OPS)],
                "business": "1" if n % 50 == 0 else "0",
                "status": "active",
                "capital_required_cents": str(required),
                "payout_account": f"FI21{n:014d}",
                "head_person_id": f"P{n:07d}",
                "person_ids": f'["P{n:07d}"]',
            },
        )
        if paid:
            pipe.hset(
                f"{prefix}hh:{hid}:ledger",
                mapping={"capital_paid_cents": paid, f"capital_paid_cents:{YEAR}": paid},
            )
        for month in range(1, 13):
            m = f"{YEAR}-{month:02d}"
            purchases = rnd.randint(0, 120_000)
            fuel = rnd.choice((0, 0, 3000, 6000))
            pipe.hset(
                f"{prefix}acc:{hid}:{m}",
                mapping={
                    "purchases_cents": purchases,
                    "regular_cents": purchases - fuel,
                    "fuel_cents": fuel,
                    "fuel_ml": fuel * 5,
                    "benefit_cents": purchases // 2,
                    "swipes": rnd.randint(1, 30),
                },
            )
            pipe.sadd(f"{prefix}month:{m}:households", hid)
            written += 1
        written += 2
        if n % 500 == 499:
            pipe.execute()
    pipe.execute()
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=100_000)
    parser.add_argument("--months", type=int, default=10, help="months of 2025 to simulate")
    args = parser.parse_args()
    rules = load_rules(DEFAULT_RULES)
    rules = dataclasses.replace(
        rules,
        co_op_years={c: {YEAR: CoOpYear(300, 100)} for c in CO_OPS},
    )
    table = rules.bonus_tables["default"]
    candidate = dataclasses.replace(
        rules,
        bonus_tables={
            "default": tuple(Tier(t.from_cents, 250) if t.bp == 200 else t for t in table)
        },
    )
    with tempfile.TemporaryDirectory(prefix="bench-money-") as tmp:
        root = Path(tmp)
        with RedisServer(root / "redis") as server, TansuBroker(root / "kafka") as broker:
            settings = Settings(
                _env_file=None,
                kafka_url=broker.url,
                redis_url=server.url,
                redis_prefix="bench:",
                topic_prefix="bench.",
            )
            client = redis.Redis.from_url(server.url)
            started = time.perf_counter()
            keys = load(client, settings.redis_prefix, args.households)
            loaded = time.perf_counter() - started
            used = client.info("memory")["used_memory_human"]
            print(
                f"loaded {args.households} households ({keys} hashes) in {loaded:.1f} s; "
                f"Redis uses {used}"
            )
            client.close()
            asyncio.run(
                create_topics_async(broker.bootstrap, {Topics(settings).member_payments: 4})
            )
            asyncio.run(run(settings, rules, candidate, args))
    return 0


async def run(settings: Settings, rules: Rules, candidate: Rules, args: argparse.Namespace) -> None:
    store = Store.from_url(settings.redis_url, settings.redis_prefix)
    now = datetime.now(UTC)
    try:
        async with KafkaPublisher(settings.kafka_url) as publisher:
            for label in ("first run", "repeat run"):
                started = time.perf_counter()
                report = await run_member_payments(settings, rules, store, publisher, YEAR, now=now)
                took = time.perf_counter() - started
                print(
                    f"member-payments {YEAR} ({label}): {took:.1f} s for {report.households} "
                    f"households ({report.households / took:,.0f}/s); {report.recorded} payments "
                    f"recorded and sent, {report.already_recorded} already recorded"
                )
        months = [Month(YEAR, m) for m in range(1, args.months + 1)]
        started = time.perf_counter()
        result = await run_simulation(settings, store, rules, candidate, months)
        took = time.perf_counter() - started
        sim = result.simulation
        print(
            f"simulate {months[0]}..{months[-1]} (from {result.source}): {took:.1f} s for "
            f"{sim.total.household_months:,} household-months "
            f"({sim.total.household_months / took:,.0f}/s); difference "
            f"{sim.total.difference_cents / 100:,.2f} EUR, {len(sim.changed):,} households change"
        )
    finally:
        await store.close()


if __name__ == "__main__":
    sys.exit(main())
