"""Month close end to end (contract sections 4 and 5) on the real stack.

One worker (and later the API) on the session's Tansu broker and Redis; ``loyalty close-month``
and ``loyalty explain`` run as subprocesses exactly as an operator would run them. Every
expected figure below is worked out by hand in the comments (no call into ``models.bonus``).

Today is in November 2026 (Helsinki), so the two closed months are 2026-09 and 2026-10; the
running month cannot be closed. The default rules' campaign (S0042, 2026-11-16..23) lies in
that running month, so the test's rules add two October campaigns in the same store (their
own ids, same shape) to put campaign purchases into a month that can be closed; the default
campaign is checked through the API's projection of November.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord, TopicPartition

from models.months import Month
from models.rules import load_rules
from stream.bonus.housekeeping import months_due
from stream.settings import DEFAULT_RULES
from tests.agents.conftest import Deployment
from tests.support import events
from tests.support.processes import RunCli
from tests.support.services import wait_until

SEP, OCT, NOV = "2026-09", "2026-10", "2026-11"

# Two extra campaigns in October, in the campaign store of the default rules. Helsinki is on
# summer time (+03:00) until 2026-10-25 04:00, winter time (+02:00) after.
OCTOBER_CAMPAIGNS = """
[[campaigns]]
id = "test-double-week-43"
multiplier = 2
store_ids = ["S0042"]
starts_at = "2026-10-19T00:00:00+03:00"      # inclusive
ends_at   = "2026-10-26T00:00:00+02:00"      # exclusive

[[campaigns]]
id = "test-triple-day"
multiplier = 3
store_ids = ["S0042"]
starts_at = "2026-10-21T00:00:00+03:00"
ends_at   = "2026-10-22T00:00:00+03:00"
"""

CARDS = {
    "HCAMP": "6390000000001001",  # campaign store S0042
    "HFUEL": "6390000000001002",  # fuel lines, benefit card, month boundary
    "HRET": "6390000000001003",  # returns
    "HEXCL": "6390000000001004",  # excluded lines and payment methods
    "HBIZ": "6390000000001005",  # business household
    "HCAP": "6390000000001006",  # unpaid member capital
}


def line(group: str, cents: int, ml: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "sku": f"SKU-{group}",
        "product_group": group,
        "quantity": 1,
        "amount_cents": cents,
    }
    if ml is not None:
        out["fuel_ml"] = ml
    return out


def swipe(
    event_id: str,
    household: str,
    occurred_at: str,
    lines: list[dict[str, Any]],
    *,
    pay: str = "payment_card",
    store: str = "S0001",
    kind: str = "purchase",
    **extra: Any,
) -> dict[str, Any]:
    return events.swipe(
        event_id,
        CARDS[household],
        kind=kind,
        store_id=store,
        occurred_at=occurred_at,
        payment_method=pay,
        lines=lines,
        **extra,
    )


# -- the months' swipes, with what each does to its household-month ----------------------

SWIPES = [
    # HCAMP, September: no campaign in September. N = 8000.
    swipe("CAMP-09-1", "HCAMP", "2026-09-15T12:00:00+03:00", [line("dairy", 8000)], store="S0042"),
    # HCAMP, October: x2 week, x3 day inside it (the largest applies), the edges of the week.
    swipe(  # x2: C2 = 12345; the fuel line is never multiplied: F = 12500 ml, 2500 c
        "CAMP-10-1",
        "HCAMP",
        "2026-10-20T12:00:00+03:00",
        [line("dairy", 12345), line("fuel", 2500, ml=12500)],
        store="S0042",
    ),
    swipe(  # x3 day (x2 also applies; the largest wins): C3 = 4000
        "CAMP-10-2", "HCAMP", "2026-10-21T10:00:00+03:00", [line("meat", 4000)], store="S0042"
    ),
    swipe(  # one second before the week starts: N
        "CAMP-10-3", "HCAMP", "2026-10-18T23:59:59+03:00", [line("bread", 10000)], store="S0042"
    ),
    swipe(  # the (exclusive) end of the week: N
        "CAMP-10-4", "HCAMP", "2026-10-26T00:00:00+02:00", [line("bread", 5000)], store="S0042"
    ),
    swipe(  # in the week but in another store: N
        "CAMP-10-5", "HCAMP", "2026-10-22T12:00:00+03:00", [line("dairy", 3000)], store="S0001"
    ),
    # HCAMP, November (running month): the default rules' x2 week in S0042. C2 = 6000.
    swipe("CAMP-11-1", "HCAMP", "2026-11-20T12:00:00+02:00", [line("dairy", 6000)], store="S0042"),
    # HFUEL, September: the last second of September in Helsinki, fuel only, benefit card.
    swipe(
        "FUEL-09-1",
        "HFUEL",
        "2026-09-30T23:59:59+03:00",
        [line("fuel", 4000, ml=20000)],
        pay="s_etukortti_visa",
    ),
    # HFUEL, October: 21:00 UTC on 30 September is already October in Helsinki.
    swipe("FUEL-10-0", "HFUEL", "2026-09-30T21:00:00+00:00", [line("bread", 1000)], pay="cash"),
    swipe(  # benefit card: tobacco and alcohol earn bonus but no payment benefit
        "FUEL-10-1",
        "HFUEL",
        "2026-10-05T08:00:00+03:00",
        [
            line("fuel", 6543, ml=35555),
            line("dairy", 10101),
            line("tobacco", 2000),
            line("alcohol", 1500),
        ],
        pay="s_etukortti_visa",
    ),
    swipe(  # ordinary card: fuel and bread, no benefit
        "FUEL-10-2",
        "HFUEL",
        "2026-10-12T08:00:00+03:00",
        [line("fuel", 5000, ml=27195), line("bread", 3333)],
    ),
    swipe(  # benefit card; the lottery line is not eligible at all
        "FUEL-10-3",
        "HFUEL",
        "2026-10-30T18:00:00+02:00",
        [line("lottery", 1000), line("dairy", 2256)],
        pay="s_etukortti_visa",
    ),
    # HRET, September: only a return (of an August purchase), benefit card.
    swipe(
        "RET-09-1",
        "HRET",
        "2026-09-20T10:00:00+03:00",
        [line("dairy", 3000)],
        pay="s_etukortti_visa",
        kind="return",
        original_event_id="RET-08-9",
    ),
    # HRET, October: two purchases, two partial returns.
    swipe(
        "RET-10-1", "HRET", "2026-10-03T10:00:00+03:00", [line("dairy", 20000), line("bread", 6000)]
    ),
    swipe(
        "RET-10-2",
        "HRET",
        "2026-10-10T10:00:00+03:00",
        [line("meat", 9000)],
        pay="s_etukortti_visa",
    ),
    swipe(
        "RET-10-3",
        "HRET",
        "2026-10-11T10:00:00+03:00",
        [line("dairy", 5000)],
        kind="return",
        original_event_id="RET-10-1",
    ),
    swipe(
        "RET-10-4",
        "HRET",
        "2026-10-12T10:00:00+03:00",
        [line("meat", 2500)],
        pay="s_etukortti_visa",
        kind="return",
        original_event_id="RET-10-2",
    ),
    # HEXCL, October: excluded product groups and excluded payment methods.
    swipe(
        "EXCL-10-1",
        "HEXCL",
        "2026-10-08T12:00:00+03:00",
        [line("gift_card", 5000), line("dairy", 7000)],
    ),
    swipe("EXCL-10-2", "HEXCL", "2026-10-09T12:00:00+03:00", [line("dairy", 10000)], pay="invoice"),
    swipe(
        "EXCL-10-3",
        "HEXCL",
        "2026-10-10T12:00:00+03:00",
        [line("lottery", 2000), line("bread", 3000)],
        pay="s_etukortti_visa",
    ),
    swipe(
        "EXCL-10-4", "HEXCL", "2026-10-11T12:00:00+03:00", [line("meat", 4000)], pay="company_card"
    ),
    swipe(
        "EXCL-10-5",
        "HEXCL",
        "2026-10-12T12:00:00+03:00",
        [line("fuel", 3000, ml=9000)],
        pay="benefit_voucher",
    ),
    # HBIZ (business): big purchases in both months, no bonus ever.
    swipe(
        "BIZ-09-1",
        "HBIZ",
        "2026-09-12T12:00:00+03:00",
        [line("dairy", 95000)],
        pay="s_etukortti_visa",
    ),
    swipe(
        "BIZ-10-1",
        "HBIZ",
        "2026-10-12T12:00:00+03:00",
        [line("dairy", 95000), line("fuel", 5000, ml=25000)],
        pay="s_etukortti_visa",
    ),
    # HCAP (member capital 100.00 € required, 35.00 € paid): one purchase a month.
    swipe(
        "CAP-09-1",
        "HCAP",
        "2026-09-10T12:00:00+03:00",
        [line("dairy", 50000), line("meat", 30000)],
    ),
    swipe("CAP-10-1", "HCAP", "2026-10-07T12:00:00+03:00", [line("bread", 20000)]),
]
DUPLICATES = [SWIPES[15], SWIPES[9]]  # RET-10-2 and FUEL-10-1 delivered twice: count once

# Late, after the first close of October:
LATE_SWIPE = swipe("CAP-10-2", "HCAP", "2026-10-31T23:30:00+02:00", [line("meat", 80000)])
LATE_RETURN = swipe(
    "RET-10-5",
    "HRET",
    "2026-10-28T10:00:00+02:00",
    [line("bread", 3000)],
    kind="return",
    original_event_id="RET-10-1",
)

# -- the accumulators the worker must build (contract section 4 buckets), by hand ----------

ACCUMULATORS: dict[tuple[str, str], dict[str, int]] = {
    ("HCAMP", SEP): {"purchases_cents": 8000, "regular_cents": 8000, "swipes": 1},
    # purchases 12345 + 2500 + 4000 + 10000 + 5000 + 3000 = 36845
    # N = 10000 + 5000 + 3000 = 18000, C2 = 12345, C3 = 4000, F = 12500 ml (2500 c)
    ("HCAMP", OCT): {
        "purchases_cents": 36845,
        "regular_cents": 18000,
        "campaign_x2_cents": 12345,
        "campaign_x3_cents": 4000,
        "fuel_cents": 2500,
        "fuel_ml": 12500,
        "swipes": 5,
    },
    ("HCAMP", NOV): {"purchases_cents": 6000, "campaign_x2_cents": 6000, "swipes": 1},
    ("HFUEL", SEP): {
        "purchases_cents": 4000,
        "fuel_cents": 4000,
        "fuel_ml": 20000,
        "benefit_cents": 4000,
        "swipes": 1,
    },
    # purchases 1000 + (6543 + 10101 + 2000 + 1500) + (5000 + 3333) + 2256 = 31733
    # N = 1000 + 10101 + 2000 + 1500 + 3333 + 2256 = 20190
    # F = 35555 + 27195 = 62750 ml (6543 + 5000 = 11543 c)
    # P (benefit card, less tobacco/alcohol/lottery) = 6543 + 10101 + 2256 = 18900
    ("HFUEL", OCT): {
        "purchases_cents": 31733,
        "regular_cents": 20190,
        "fuel_cents": 11543,
        "fuel_ml": 62750,
        "benefit_cents": 18900,
        "excluded_cents": 1000,
        "swipes": 4,
    },
    ("HRET", SEP): {
        "purchases_cents": -3000,
        "regular_cents": -3000,
        "benefit_cents": -3000,
        "swipes": 1,
        "returns": 1,
    },
    # purchases 20000 + 6000 + 9000 - 5000 - 2500 = 27500; P = 9000 - 2500 = 6500
    ("HRET", OCT): {
        "purchases_cents": 27500,
        "regular_cents": 27500,
        "benefit_cents": 6500,
        "swipes": 4,
        "returns": 2,
    },
    # eligible: dairy 7000 + bread 3000 = 10000 (P = 3000); not eligible: gift card 5000,
    # invoice 10000, lottery 2000, company card 4000, benefit voucher fuel 3000 = 24000
    ("HEXCL", OCT): {
        "purchases_cents": 10000,
        "regular_cents": 10000,
        "benefit_cents": 3000,
        "excluded_cents": 24000,
        "swipes": 5,
    },
    # A business household accumulates like any other; the bonus is 0 at computation time.
    ("HBIZ", SEP): {
        "purchases_cents": 95000,
        "regular_cents": 95000,
        "benefit_cents": 95000,
        "swipes": 1,
    },
    ("HBIZ", OCT): {
        "purchases_cents": 100000,
        "regular_cents": 95000,
        "fuel_cents": 5000,
        "fuel_ml": 25000,
        "benefit_cents": 100000,
        "swipes": 1,
    },
    ("HCAP", SEP): {"purchases_cents": 80000, "regular_cents": 80000, "swipes": 1},
    ("HCAP", OCT): {"purchases_cents": 20000, "regular_cents": 20000, "swipes": 1},
}


def payout(
    household_id: str,
    month: str,
    seq: int,
    *,
    purchases: int,
    tier: int,
    base: int,
    fuel: int = 0,
    benefit: int = 0,
    capital: int = 0,
    adjustment: bool = False,
) -> dict[str, Any]:
    total = base + fuel + benefit
    return {
        "schema": "payout/1",
        "payout_id": f"{household_id}:{month}:{seq}",
        "household_id": household_id,
        "month": month,
        "co_op": "hok-elanto",
        "purchases_cents": purchases,
        "tier_bp": tier,
        "base_bonus_cents": base,
        "fuel_bonus_cents": fuel,
        "payment_benefit_cents": benefit,
        "total_cents": total,
        "to_capital_cents": capital,
        "to_account_cents": total - capital,
        "payout_account": f"FI21{household_id}",
        "adjustment": adjustment,
    }


# Member capital of HCAP: required 10000; payments CP-1 2500 (delivered twice, counted once)
# and CP-2 1000 -> 3500 paid, 6500 still to pay before anything goes to the account.
SEPTEMBER_PAYOUTS = [
    # HCAMP: purchases 8000 >= 5000 -> 100 bp; base = round(100 x 8000 / 10000) = 80
    payout("HCAMP", SEP, 1, purchases=8000, tier=100, base=80),
    # HFUEL: 4000 < 5000 -> 0 bp, so no base and no fuel bonus;
    # benefit = round(50 x 4000 / 10000) = 20
    payout("HFUEL", SEP, 1, purchases=4000, tier=0, base=0, fuel=0, benefit=20),
    # HCAP: 80000 -> 450 bp (exactly the tier's from_cents); base = round(450 x 80000 / 10000)
    # = 3600; capital first: min(3600, 6500) = 3600 to capital, 0 to the account; 2900 left.
    payout("HCAP", SEP, 1, purchases=80000, tier=450, base=3600, capital=3600),
    # HRET: -3000 -> 0 bp; benefit round(50 x -3000 / 10000) = -15, clamped to 0: total 0,
    # no payout. HBIZ: business, no payout.
]
OCTOBER_PAYOUTS = [
    # HCAMP: 36845 -> 200 bp; base = round(200 x (18000 + 2 x 12345 + 3 x 4000) / 10000)
    # = round(200 x 54690 / 10000) = round(1093.8) = 1094;
    # fuel = round(200 x 12500 / 100000) = 25; benefit 0 (ordinary card) -> 1119
    payout("HCAMP", OCT, 1, purchases=36845, tier=200, base=1094, fuel=25),
    # HFUEL: 31733 -> 200 bp; base = round(200 x 20190 / 10000) = round(403.8) = 404;
    # fuel = round(200 x 62750 / 100000) = round(125.5) = 126 (half up);
    # benefit = round(50 x 18900 / 10000) = round(94.5) = 95 (half up) -> 625
    payout("HFUEL", OCT, 1, purchases=31733, tier=200, base=404, fuel=126, benefit=95),
    # HRET: 27500 -> 150 bp (35000 before the returns would be 200 bp);
    # base = round(150 x 27500 / 10000) = round(412.5) = 413; benefit = round(32.5) = 33 -> 446
    payout("HRET", OCT, 1, purchases=27500, tier=150, base=413, benefit=33),
    # HEXCL: 10000 -> 100 bp (34000 with the excluded lines would be 200 bp);
    # base = round(100 x 10000 / 10000) = 100; benefit = round(50 x 3000 / 10000) = 15 -> 115
    payout("HEXCL", OCT, 1, purchases=10000, tier=100, base=100, benefit=15),
    # HCAP: 20000 -> 150 bp; base = round(150 x 20000 / 10000) = 300, all of it to capital
    # (2900 left before) -> 2600 left.
    payout("HCAP", OCT, 1, purchases=20000, tier=150, base=300, capital=300),
]
ADJUSTMENTS = [
    # HCAP + late 80000: purchases 100000 -> 500 bp; base = round(500 x 100000 / 10000) = 5000;
    # difference 5000 - 300 = 4700: capital first, min(4700, 2600) = 2600, the rest 2100 to
    # the account.
    payout("HCAP", OCT, 2, purchases=100000, tier=500, base=4700, capital=2600, adjustment=True),
    # HRET - late return 3000: purchases 24500 -> still 150 bp; base = round(150 x 24500 /
    # 10000) = round(367.5) = 368, benefit unchanged 33: total 401, difference 401 - 446 = -45,
    # all in the base; negative: charged to the account.
    payout("HRET", OCT, 2, purchases=24500, tier=150, base=-45, capital=0, adjustment=True),
]


# -- helpers ---------------------------------------------------------------------------------


def read_all(bootstrap: str, topic: str, timeout: float = 30.0) -> list[ConsumerRecord[Any, Any]]:
    """Every record of ``topic``: read from the start of each partition until the high watermark
    that the fetch responses report (not ListOffsets, which is wrong on Tansu)."""

    async def run() -> list[ConsumerRecord[Any, Any]]:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
        )
        await consumer.start()
        records: list[ConsumerRecord[Any, Any]] = []
        try:
            await consumer.topics()  # metadata of every topic
            parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
            assert parts, f"no partitions for {topic}"
            consumer.assign(parts)
            await consumer.seek_to_beginning(*parts)
            async with asyncio.timeout(timeout):
                while True:
                    for batch in (await consumer.getmany(timeout_ms=200)).values():
                        records.extend(batch)
                    done = True
                    for tp in parts:
                        highwater = consumer.highwater(tp)
                        if highwater is None or await consumer.position(tp) < highwater:
                            done = False
                    if done:
                        return records
        finally:
            await consumer.stop()

    return asyncio.run(run())


def by_id(records: list[ConsumerRecord[Any, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for record in records:
        value = orjson.loads(record.value)
        assert record.key == value["household_id"].encode(), "payouts are keyed by household"
        assert value["payout_id"] not in out, f"payout {value['payout_id']} emitted twice"
        out[value["payout_id"]] = value
    return out


def run_ok(run_cli: RunCli, env: dict[str, str], *args: str, name: str) -> str:
    proc = run_cli(list(args), env, name=name)
    code = proc.wait(60)
    assert code == 0, f"loyalty {' '.join(args)} exited {code}:\n{proc.log_tail()}"
    return proc.log_text()


def summary(
    month: str,
    kind: str,
    households: int,
    payouts: int,
    adjustments: int,
    unchanged: int,
    total: str,
    capital: str,
) -> str:
    return (
        f"closed {month} ({kind}): {households} households, {payouts} payouts "
        f"({adjustments} adjustments), {unchanged} unchanged, 0 without a household record, "
        f"0 re-sent from the outbox; total {total}, to capital {capital}"
    )


FIRST = "first close"
REPEAT = "repeat close (adjustments only)"


def test_two_months_closed_to_the_cent_never_twice_then_one_adjustment_each(
    deployment: Deployment, run_cli: RunCli, tmp_path: Path
) -> None:
    rules_path = tmp_path / "rules.toml"
    rules_path.write_text(DEFAULT_RULES.read_text() + OCTOBER_CAMPAIGNS)
    env = deployment.env
    env["LOYALTY_RULES"] = str(rules_path)
    # Keep the worker's own scheduled close (a leader timer) out of the way: the CLI closes.
    env["LOYALTY_CLOSE_DAY"], env["LOYALTY_CLOSE_HOUR"] = "28", "23"
    rules = load_rules(rules_path)
    now = datetime.now(UTC)
    for due in months_due(now, rules, deployment.settings):  # only from the 28th, 23:00 on
        deployment.redis.set(
            deployment.key("month", str(due), "scheduled", now.strftime("%Y-%m")), "x"
        )

    deployment.send(
        "register",
        [
            *(events.household(h, business=h == "HBIZ") for h in CARDS if h != "HCAP"),
            events.household("HCAP", capital_required_cents=10000),
            *(events.card(card, h) for h, card in CARDS.items()),
            events.capital_payment("CP-1", "HCAP", 2500),
            events.capital_payment("CP-1", "HCAP", 2500),  # the same payment again: once
            events.capital_payment("CP-2", "HCAP", 1000),
        ],
    )
    deployment.send("swipes", [*SWIPES, *DUPLICATES])
    deployment.start_worker()

    def all_applied() -> bool:
        return all(deployment.accumulator(h, m) == acc for (h, m), acc in ACCUMULATORS.items())

    def ledger() -> dict[bytes, bytes]:
        return deployment.redis.hgetall(deployment.key("hh", "HCAP", "ledger"))

    def register_applied() -> bool:
        return all(
            deployment.redis.exists(deployment.key("hh", h)) for h in CARDS
        ) and ledger() == {
            b"capital_paid_cents": b"3500",
            b"capital_paid_cents:2026": b"3500",  # the year's part, for member payments
        }

    wait_until(register_applied, timeout=60, what="households and capital payments")
    wait_until(all_applied, timeout=60, what="every swipe applied")
    actual = {key: deployment.accumulator(*key) for key in ACCUMULATORS}
    assert actual == ACCUMULATORS

    # -- the running month cannot be closed ---------------------------------------------------
    running = Month.of(now, rules.timezone)  # 2026-11 while this is written
    refused = run_cli(["close-month", str(running)], env, name="close-running")
    assert refused.wait(60) == 1
    assert (
        f"cannot close {running}: month {running} has not ended yet in Europe/Helsinki "
        f"(it ends {running.ends_at(rules.timezone).isoformat()})"
    ) in refused.log_text()

    # -- first closes: September, then October (capital first carries over) ----------------
    log = run_ok(run_cli, env, "close-month", SEP, name="close-sep-1")
    assert summary(SEP, FIRST, 5, 3, 0, 2, "37.00 €", "36.00 €") in log  # 80 + 20 + 3600
    log = run_ok(run_cli, env, "close-month", OCT, name="close-oct-1")
    # 1119 + 625 + 446 + 115 + 300 = 2605; HBIZ unchanged
    assert summary(OCT, FIRST, 6, 5, 0, 1, "26.05 €", "3.00 €") in log

    first = by_id(deployment.read("bonus-payouts", 8))
    expected = {p["payout_id"]: p for p in SEPTEMBER_PAYOUTS + OCTOBER_PAYOUTS}
    assert first == expected

    # -- closing again emits nothing ------------------------------------------------------------
    sep_again = run_cli(["close-month", SEP], env, name="close-sep-2")
    oct_again = run_cli(["close-month", OCT], env, name="close-oct-2")
    assert sep_again.wait(60) == 0, sep_again.log_tail()
    assert oct_again.wait(60) == 0, oct_again.log_tail()
    assert summary(SEP, REPEAT, 5, 0, 0, 5, "0.00 €", "0.00 €") in sep_again.log_text()
    assert summary(OCT, REPEAT, 6, 0, 0, 6, "0.00 €", "0.00 €") in oct_again.log_text()
    assert by_id(read_all(deployment.bootstrap, deployment.topic("bonus-payouts"))) == expected

    # -- late swipes: one adjustment each -------------------------------------------------------
    deployment.send("swipes", [LATE_SWIPE, LATE_RETURN])
    wait_until(
        lambda: (
            deployment.accumulator("HCAP", OCT).get("purchases_cents") == 100000
            and deployment.accumulator("HRET", OCT).get("purchases_cents") == 24500
        ),
        timeout=60,
        what="the late swipes applied",
    )
    log = run_ok(run_cli, env, "close-month", OCT, name="close-oct-3")
    # 4700 - 45 = 4655; to capital 2600
    assert summary(OCT, REPEAT, 6, 2, 2, 4, "46.55 €", "26.00 €") in log
    everything = by_id(read_all(deployment.bootstrap, deployment.topic("bonus-payouts")))
    assert everything == {**expected, **{p["payout_id"]: p for p in ADJUSTMENTS}}

    # -- the API: final figures and what was paid --------------------------------------------
    api = deployment.start_api()

    def bonus(household_id: str, month: str) -> dict[str, Any]:
        response = httpx.get(
            f"{api.base_url}/v1/households/{household_id}/bonus", params={"month": month}
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    assert bonus("HCAP", OCT) == {
        "household_id": "HCAP",
        "month": OCT,
        "co_op": "hok-elanto",
        "purchases_cents": 100000,
        "tier_bp": 500,
        "base_bonus_cents": 5000,
        "fuel_bonus_cents": 0,
        "payment_benefit_cents": 0,
        "total_cents": 5000,
        "final": True,
        "paid_cents": 300 + 4700,
        "swipes": 2,
    }
    hret = bonus("HRET", OCT)
    assert (hret["total_cents"], hret["final"], hret["paid_cents"]) == (401, True, 446 - 45)
    hfuel = bonus("HFUEL", OCT)
    assert (hfuel["total_cents"], hfuel["final"], hfuel["paid_cents"]) == (625, True, 625)
    hret_sep = bonus("HRET", SEP)  # closed, nothing paid
    assert (hret_sep["total_cents"], hret_sep["final"], hret_sep["paid_cents"]) == (0, True, 0)
    hbiz = bonus("HBIZ", OCT)
    assert (hbiz["tier_bp"], hbiz["total_cents"], hbiz["paid_cents"]) == (0, 0, 0)
    # November is running: the default x2 week in S0042, projected, not final.
    # 6000 -> 100 bp; base = round(100 x (0 + 2 x 6000) / 10000) = 120
    assert bonus("HCAMP", NOV) == {
        "household_id": "HCAMP",
        "month": NOV,
        "co_op": "hok-elanto",
        "purchases_cents": 6000,
        "tier_bp": 100,
        "base_bonus_cents": 120,
        "fuel_bonus_cents": 0,
        "payment_benefit_cents": 0,
        "total_cents": 120,
        "final": False,
        "paid_cents": 0,
        "swipes": 1,
    }

    # -- explain: tier, buckets, arithmetic, payouts ------------------------------------------
    camp = run_cli(["explain", "HCAMP", OCT], env, name="explain-hcamp")
    cap = run_cli(["explain", "HCAP", OCT], env, name="explain-hcap")
    assert camp.wait(60) == 0, camp.log_tail()
    assert cap.wait(60) == 0, cap.log_tail()
    text = camp.log_text()
    for expected_line in (
        "household HCAMP, month 2026-10, closed",
        "eligible purchases 368.45 € (fuel 25.00 €) -> tier 200 bp",
        "non-fuel outside campaigns N = 18000 c",
        "non-fuel in x2 campaigns C = 12345 c",
        "non-fuel in x3 campaigns C = 4000 c",
        "base bonus = round(200 x (18000 + 2 x 12345 + 3 x 4000) / 10000) = 1094 c",
        "fuel bonus = round(200 x 12500 ml / 100000) = 25 c",
        "payment benefit = round(50 x 0 / 10000) = 0 c",
        "total = 1119 c (11.19 €)",
        "paid so far 11.19 € in 1 payout(s)",
        "HCAMP:2026-10:1: total 1119 c (capital 0, account 1119)",
    ):
        assert expected_line in text, f"{expected_line!r} not in:\n{text}"
    text = cap.log_text()
    for expected_line in (
        "eligible purchases 1000.00 € (fuel 0.00 €) -> tier 500 bp",
        "base bonus = round(500 x (100000) / 10000) = 5000 c",
        "total = 5000 c (50.00 €)",
        "paid so far 50.00 € in 2 payout(s)",
        "HCAP:2026-10:1: total 300 c (capital 300, account 0)",
        "HCAP:2026-10:2: total 4700 c (capital 2600, account 2100) adjustment",
        "member capital still to pay 0.00 €",
    ):
        assert expected_line in text, f"{expected_line!r} not in:\n{text}"
    assert "pending adjustment" not in text
