"""Bonus partners end to end on the real stack (Tansu, Redis): an unknown partner is dead-lettered,
the settlement of a closed month matches a hand computation, with the final tier of a household
whose tier a late swipe changed.

October 2026, rules with partners P-ABC and P-XYZ:
- H1: 15000 own + 10000 at P-ABC = 25000 -> 150 bp; P-ABC: round(150 x 10000 / 10000) = 150.
  After the close a late swipe (10000, own, October) lifts it to 35000 -> 200 bp: P-ABC 200.
- H2: 3333 at P-ABC + 40000 at P-XYZ = 43333 -> 250 bp; P-ABC round(83.325) = 83, P-XYZ 1000.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from models.months import Month
from models.rules import parse_rules
from stream.bonus.close import close_month
from stream.bonus.partners import PartnerSettlementError, partner_settlement
from stream.bonus.register import RegisterProcessor
from stream.bonus.swipes import SwipeProcessor
from stream.devstack.broker import TansuBroker
from stream.devstack.redis_server import RedisServer
from stream.kafka.publisher import KafkaPublisher
from stream.kafka.topics import Record, Topics, create_topics_async
from stream.settings import DEFAULT_RULES, Settings
from stream.store.store import Store
from tests.support import events
from tests.support.processes import RunCli
from tests.support.services import read_partition
from tests.support.settings import isolated_settings

RULES_TEXT = (
    DEFAULT_RULES.read_text()
    + '\n[partners."P-ABC"]\nname = "ABC Oy"\n\n[partners."P-XYZ"]\nname = "XYZ Ab"\n'
)
RULES = parse_rules(RULES_TEXT)
OCT = Month(2026, 10)
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
CARDS = {"H1": "6390000000000501", "H2": "6390000000000502"}


def swipe(event_id: str, household: str, cents: int, partner: str | None = None) -> dict[str, Any]:
    extra = {"partner_id": partner} if partner else {}
    return events.swipe(
        event_id,
        CARDS[household],
        occurred_at="2026-10-12T12:00:00+03:00",
        lines=[{"sku": "x", "product_group": "dairy", "quantity": 1, "amount_cents": cents}],
        **extra,
    )


async def dead_letters(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    return [orjson.loads(r.value) for r in await read_partition(bootstrap, topic)]


def settings_of(kafka: TansuBroker, redis_server: RedisServer, unique: str) -> Settings:
    return isolated_settings(
        kafka,
        redis_server,
        unique,
        group_id=unique,
        _env_file=None,  # type: ignore[call-arg]
    )


def test_unknown_partner_dead_lettered_and_settlement_with_final_tiers(
    kafka: TansuBroker,
    redis_server: RedisServer,
    unique: str,
    run_cli: RunCli,
    loyalty_env: dict[str, str],
    tmp_path: Path,
) -> None:
    settings = settings_of(kafka, redis_server, unique)
    topics = Topics(settings)

    async def scenario() -> None:
        await create_topics_async(
            kafka.bootstrap,
            {topics.dead_letters: 1, topics.purchase_lines: 1, topics.payouts: 1},
        )
        store = Store.from_url(settings.redis_url, settings.redis_prefix)
        async with KafkaPublisher(settings.kafka_url) as publisher:
            swipes = SwipeProcessor(settings, RULES, store, publisher)
            register = RegisterProcessor(settings, store, publisher, swipes)
            await register.process(
                [
                    Record(*events.keyed(e))
                    for hid, card in CARDS.items()
                    for e in (events.household(hid), events.card(card, hid))
                ]
            )
            counts = await swipes.process(
                [
                    Record(*events.keyed(e))
                    for e in (
                        swipe("A1", "H1", 15_000),
                        swipe("A2", "H1", 10_000, "P-ABC"),
                        swipe("B1", "H2", 3333, "P-ABC"),
                        swipe("B2", "H2", 40_000, "P-XYZ"),
                        swipe("X1", "H2", 99_999, "P-NOPE"),
                    )
                ]
            )
            assert (counts.get("applied"), counts.get("rejected")) == (4, 1), counts
            letters = await dead_letters(kafka.bootstrap, topics.dead_letters)
            assert [(d["reason"], orjson.loads(d["value"])["event_id"]) for d in letters] == [
                ("unknown_partner", "X1")
            ]
            assert "P-NOPE" in letters[0]["detail"]

            with pytest.raises(PartnerSettlementError, match="has not been closed"):
                await partner_settlement(RULES, store, OCT)
            closed = await close_month(settings, RULES, store, publisher, OCT, now=NOW)
            assert closed.payouts == 2
            totals, skipped = await partner_settlement(RULES, store, OCT)
            assert skipped == 0
            assert [t.to_json() for t in totals] == [
                {
                    "partner_id": "P-ABC",
                    "name": "ABC Oy",
                    "households": 2,
                    "partner_amount_cents": 13_333,
                    "bonus_cents": 150 + 83,
                },
                {
                    "partner_id": "P-XYZ",
                    "name": "XYZ Ab",
                    "households": 1,
                    "partner_amount_cents": 40_000,
                    "bonus_cents": 1000,
                },
            ]
            # A late swipe of H1's own lifts its October to 200 bp: P-ABC is invoiced 200.
            late = await swipes.process([Record(*events.keyed(swipe("A3", "H1", 10_000)))])
            assert late.get("applied") == 1
            totals, _ = await partner_settlement(RULES, store, OCT)
            assert [(t.partner_id, t.bonus_cents) for t in totals] == [
                ("P-ABC", 200 + 83),
                ("P-XYZ", 1000),
            ]
        await store.close()

    asyncio.run(scenario())

    rules_path = tmp_path / "rules.toml"
    rules_path.write_text(RULES_TEXT)
    env = {**loyalty_env, "LOYALTY_RULES": str(rules_path)}
    proc = run_cli(["partner-settlement", "2026-10", "--json"], env, name="settle")
    assert proc.wait(120) == 0, proc.log_tail()
    text = proc.log_text()
    document = orjson.loads(text[text.index("{") : text.rindex("}") + 1])
    assert document["month"] == "2026-10"
    assert [(p["partner_id"], p["bonus_cents"]) for p in document["partners"]] == [
        ("P-ABC", 283),
        ("P-XYZ", 1000),
    ]
    explained = run_cli(["explain", "H1", "2026-10"], env, name="explain")
    assert explained.wait(60) == 0, explained.log_tail()
    assert (
        "partner P-ABC (ABC Oy): eligible non-fuel 10000 c there -> "
        "round(200 x 10000 / 10000) = 200 c of the base bonus" in explained.log_text()
    )
    refused = run_cli(["partner-settlement", "2026-11"], env, name="refused")
    assert refused.wait(60) == 1
    assert "month 2026-11 has not been closed" in refused.log_text()
