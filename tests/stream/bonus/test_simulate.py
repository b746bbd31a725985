"""``loyalty simulate`` on real Redis (accumulators) and ClickHouse (purchase lines).

October 2026, co-op hok-elanto, ordinary card, no fuel:
- H1: 33333 -> 200 bp -> 667; with 250 bp for that tier: round(833.325) = 833.
- H2: 12000 -> 100 bp -> 120.
- H3: a business, 40000 -> 0 whatever the table.
- H4: 28000 dairy + 4000 tobacco = 32000 -> 200 bp -> 640; with tobacco excluded,
  28000 -> 150 bp -> 420 (it moves down a tier).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from models.months import Month
from models.rules import parse_rules
from stream.analytics.sink import PurchaseLineSink
from stream.bonus.register import RegisterProcessor
from stream.bonus.simulate import SimulateRun, run_simulation
from stream.bonus.swipes import SwipeProcessor
from stream.clickhouse.engine import ClickHouse
from stream.clickhouse.migrate import migrate
from stream.devstack.broker import TansuBroker
from stream.devstack.redis_server import RedisServer
from stream.kafka.publisher import KafkaPublisher
from stream.kafka.topics import Record, Topics, create_topics_async
from stream.settings import DEFAULT_RULES, Settings
from stream.store.store import Store
from tests.support import events
from tests.support.processes import RunCli
from tests.support.settings import isolated_settings

CURRENT = parse_rules(DEFAULT_RULES.read_text())
RAISED_TEXT = DEFAULT_RULES.read_text().replace(
    "{ from_cents = 30000, bp = 200 }", "{ from_cents = 30000, bp = 250 }"
)
RAISED = parse_rules(RAISED_TEXT)
OCT = [Month(2026, 10)]
PURCHASES = {
    "H1": [("dairy", 33_333)],
    "H2": [("dairy", 12_000)],
    "H3": [("dairy", 40_000)],
    "H4": [("dairy", 28_000), ("tobacco", 4000)],
}


def settings_for(
    kafka: TansuBroker, redis_server: RedisServer, unique: str, **more: Any
) -> Settings:
    return isolated_settings(
        kafka,
        redis_server,
        unique,
        group_id=unique,
        pseudonym_key="test-pseudonym-key",  # type: ignore[arg-type]
        _env_file=None,  # type: ignore[call-arg]
        **more,
    )


async def seed(settings: Settings) -> None:
    topics = Topics(settings)
    await create_topics_async(
        settings.kafka_url, {topics.purchase_lines: 1, topics.dead_letters: 1}
    )
    store = Store.from_url(settings.redis_url, settings.redis_prefix)
    async with KafkaPublisher(settings.kafka_url) as publisher:
        swipes = SwipeProcessor(settings, CURRENT, store, publisher)
        register = RegisterProcessor(settings, store, publisher, swipes)
        register_events = []
        swipe_events = []
        for n, (household_id, lines) in enumerate(PURCHASES.items()):
            card = f"63900000000004{n:02d}"
            register_events += [
                events.household(household_id, business=household_id == "H3"),
                events.card(card, household_id),
            ]
            swipe_events.append(
                events.swipe(
                    f"S-{household_id}",
                    card,
                    occurred_at="2026-10-15T12:00:00+03:00",
                    lines=[
                        {"sku": g, "product_group": g, "quantity": 1, "amount_cents": c}
                        for g, c in lines
                    ],
                )
            )
        await register.process([Record(*events.keyed(e)) for e in register_events])
        counts = await swipes.process([Record(*events.keyed(e)) for e in swipe_events])
        assert counts.get("applied") == 4, counts
    await store.close()


def simulate(settings: Settings, candidate: Any, co_op: str | None = None) -> SimulateRun:
    async def run() -> SimulateRun:
        store = Store.from_url(settings.redis_url, settings.redis_prefix)
        try:
            return await run_simulation(settings, store, CURRENT, candidate, OCT, co_op=co_op)
        finally:
            await store.close()

    return asyncio.run(run())


def test_accumulators_equal_rules_change_nothing_a_raised_tier_exactly_its_households(
    kafka: TansuBroker, redis_server: RedisServer, unique: str
) -> None:
    settings = settings_for(kafka, redis_server, unique)
    asyncio.run(seed(settings))

    same = simulate(settings, CURRENT)
    assert same.source == "accumulators"
    assert same.simulation.changed == {}
    assert same.simulation.total.difference_cents == 0
    assert same.simulation.total.current_cents == 667 + 120 + 640
    assert same.simulation.total.household_months == 4

    raised = simulate(settings, RAISED)
    assert raised.source == "accumulators"
    # H1 (33333) and H4 (32000) are in the 200 bp tier: 667 -> 833, 640 -> 800
    assert raised.simulation.changed == {"H1": (667, 833), "H4": (640, 800)}
    assert raised.simulation.total.difference_cents == 166 + 160
    assert raised.simulation.moved_households == set()
    other = simulate(settings, RAISED, co_op="other")
    assert other.simulation.total.household_months == 0
    assert "no household-months of co-op 'other' in 2026-10..2026-10" in " ".join(other.notes)


def test_a_changed_exclusion_falls_back_to_the_purchase_lines_in_clickhouse(
    kafka: TansuBroker,
    redis_server: RedisServer,
    unique: str,
    clickhouse: ClickHouse,
    make_line: Callable[..., dict[str, Any]],
) -> None:
    settings = settings_for(kafka, redis_server, unique, clickhouse_url=clickhouse.url)
    asyncio.run(seed(settings))
    migrate(clickhouse)
    rows = [
        make_line(
            f"S-{household_id}",
            household=household_id,
            line_no=n,
            occurred_at="2026-10-15T09:00:00Z",
            product_group=group,
            amount_cents=cents,
            payment_method="payment_card",
        )
        for household_id, lines in PURCHASES.items()
        for n, (group, cents) in enumerate(lines)
    ]
    PurchaseLineSink(clickhouse, 1000, 1).write(rows)
    tobacco = dataclasses.replace(
        CURRENT, excluded_product_groups=CURRENT.excluded_product_groups | {"tobacco"}
    )
    result = simulate(settings, tobacco)
    assert result.source == "clickhouse"
    assert any("excluded_product_groups" in n and "ClickHouse" in n for n in result.notes)
    sim = result.simulation
    assert list(sim.changed.values()) == [(640, 420)]  # H4, known here only by its pseudonym
    assert sim.total.current_cents == 667 + 120 + 640  # the lines agree with the accumulators
    assert sim.total.difference_cents == -220
    assert (sim.total.moved_up, sim.total.moved_down) == (0, 1)


def test_the_cli_prints_the_difference_and_writes_a_page(
    kafka: TansuBroker,
    redis_server: RedisServer,
    unique: str,
    run_cli: RunCli,
    loyalty_env: dict[str, str],
    tmp_path: Path,
) -> None:
    settings = settings_for(kafka, redis_server, unique)
    asyncio.run(seed(settings))
    candidate = tmp_path / "candidate.toml"
    candidate.write_text(RAISED_TEXT)
    page = tmp_path / "whatif.html"
    proc = run_cli(
        [
            "simulate",
            "--rules",
            str(candidate),
            "--months",
            "2026-10..2026-10",
            "--html",
            str(page),
        ],
        loyalty_env,
        name="simulate",
    )
    assert proc.wait(120) == 0, proc.log_tail()
    text = proc.log_text()
    assert "difference 3.26 €" in text
    assert "from 300.00 € (200 bp)" in text
    assert "households whose Bonus changes: 2" in text
    html = page.read_text()
    assert "<svg" in html and "hok-elanto" in html and "3.26 €" in html
    assert 'src="http' not in html and "<link" not in html and "<script src" not in html
