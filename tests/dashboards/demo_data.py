"""Demo purchase lines for the dashboard tests, made by the service's own code.

The checkout simulator (``stream.devstack.simulator``) makes swipes over a fixed period
(September to 22 November 2026, so the running month has the "double-week-47" campaign of the
default rules); the register is applied to a real Redis by the ``RegisterProcessor`` and the swipes
by the real ``SwipeProcessor``, which turns them into the rows it publishes on
``loyalty.purchase-lines`` (captured here on their way out). The rows are what the analytics
agent inserts, so the dashboards are tested against the data they will see, not a hand-made
imitation of it.

Alongside the rows, the exact Bonus of every household-month is kept (``models.bonus`` on the
swipes' contributions, as the API and the month close compute it), to check the dashboard's
liability estimate against it.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import SecretStr

from models.bonus import Accumulator, BonusFigures, bonus_for, contribution
from models.rules import Rules, load_rules
from models.swipe import parse_swipe
from stream.analytics.lines import message_rows
from stream.audit import subject_key
from stream.bonus.register import RegisterProcessor
from stream.bonus.swipes import SwipeProcessor
from stream.devstack.simulator import Household, Simulator
from stream.kafka.topics import Record
from stream.settings import DEFAULT_RULES, Settings
from stream.store.store import Store

START = datetime(2026, 9, 1, 0, 0, tzinfo=UTC)
END = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
PSEUDONYM_KEY = "dashboard-demo-pseudonym-key"
BATCH = 200  # swipes per SwipeProcessor.process call, like a worker batch


class _CapturingPublisher:
    """``pipeline.Publisher`` that keeps what is sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes]] = []

    async def send(self, topic: str, key: bytes | None, value: bytes) -> None:
        self.sent.append((topic, key, value))

    async def flush(self) -> None:
        return None


@dataclass
class DemoData:
    rows: list[dict[str, Any]]  # purchase lines, one per (event_id, line_no)
    redelivered: list[dict[str, Any]]  # rows sent a second time (FINAL must count them once)
    accumulators: dict[tuple[str, str], Accumulator] = field(default_factory=dict)
    households: dict[str, Household] = field(default_factory=dict)
    swipes: list[bytes] = field(default_factory=list)  # the raw swipes, in the order sent

    def accumulate(self, rules: Rules) -> dict[tuple[str, str], Accumulator]:
        """(household id, YYYY-MM) -> the accumulator of the swipes under ``rules``."""
        by_card = {card: hid for hid, hh in self.households.items() for card in hh.cards}
        result: dict[tuple[str, str], Accumulator] = {}
        for value in self.swipes:
            swipe = parse_swipe(value)
            c = contribution(swipe, rules)
            result.setdefault((by_card[swipe.card], str(c.month)), Accumulator()).add(c.delta)
        return result

    def exact_bonus(
        self, month: str, rules: Rules, *, recompute: bool = False
    ) -> dict[str, BonusFigures]:
        """household id -> the month's Bonus as the API computes it (YYYY-MM ``month``);
        ``recompute``: the swipes' contributions under ``rules`` (not the default rules')."""
        accumulators = self.accumulate(rules) if recompute else self.accumulators
        return {
            hid: bonus_for(
                acc, rules, self.households[hid].co_op, business=self.households[hid].business
            )
            for (hid, m), acc in accumulators.items()
            if m == month
        }


def generate(
    redis_url: str, redis_prefix: str, swipes: int = 3000, households: int = 150, seed: int = 2026
) -> DemoData:
    rules = load_rules(DEFAULT_RULES)
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        pseudonym_key=SecretStr(PSEUDONYM_KEY),
        redis_url=redis_url,
        redis_prefix=redis_prefix,
    )
    sim = Simulator(households=households, seed=seed)
    rng = random.Random(seed)
    span = (END - START).total_seconds()
    raw = [sim.swipe(START + (END - START) * (rng.random() * 0.999 + 0.001)) for _ in range(swipes)]

    publisher = _CapturingPublisher()

    async def run() -> None:
        store = Store.from_url(settings.redis_url, settings.redis_prefix)
        processor = SwipeProcessor(settings, rules, store, publisher)
        register = RegisterProcessor(settings, store, publisher, processor)
        await register.process([Record(k, v) for k, v in sim.register_events(START)])
        for start in range(0, len(raw), BATCH):
            batch = [Record(key, value) for key, value in raw[start : start + BATCH]]
            counts = await processor.process(batch)
            assert counts.get("applied") == len(batch), counts
        await store.close()

    asyncio.run(run())
    topic = settings.topic("purchase-lines")
    rows = [row for t, _, value in publisher.sent if t == topic for row in message_rows(value)]
    assert span > 0 and rows

    data = DemoData(rows=rows, redelivered=rows[: len(rows) // 10])
    data.households = {hh.household_id: hh for hh in sim.households}
    data.swipes = [value for _, value in raw]
    data.accumulators = data.accumulate(rules)
    return data


#: audit/1 records of the demo period: two clients read household H-DEMO-1, one another
AUDIT_SUBJECT = subject_key(b"demo-audit-key", "H-DEMO-1")
AUDIT_RECORDS = [
    {
        "schema": "audit/1",
        "audit_id": f"{n:032x}",
        "at": f"2026-11-{10 + n:02d}T12:00:00Z",
        "client": client,
        "action": action,
        "subject_key": key,
        "outcome": outcome,
        "detail": "",
    }
    for n, (client, action, key, outcome) in enumerate(
        [
            ("checkout-app", "bonus_read", AUDIT_SUBJECT, "ok"),
            ("checkout-app", "bonus_read", AUDIT_SUBJECT, "ok"),
            ("dpo", "subject_access", AUDIT_SUBJECT, "ok"),
            ("crm", "bonus_read", subject_key(b"demo-audit-key", "H-DEMO-2"), "not_found"),
        ]
    )
]
