"""Month close without a worker (contract section 5): ``stream.bonus.close.close_month`` on the
session's real Redis and Tansu broker, seeded through the same Lua path the agents use
(``RegisterProcessor``/``SwipeProcessor.process``).

Never twice (two closes at once, no lock at all, a crash between recording and sending, a lost
acknowledgement), capital first across months, the month-end check in Helsinki time, and a
household that becomes known only after the close.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson
import pytest
from aiokafka.errors import KafkaTimeoutError

from models.months import Month
from models.payout import Payout
from models.rules import Rules, load_rules
from stream.bonus import close as payouts
from stream.bonus.close import CloseReport, close_month, send_outbox
from stream.bonus.register import RegisterProcessor
from stream.bonus.swipes import SwipeProcessor
from stream.devstack.broker import TansuBroker
from stream.devstack.redis_server import RedisServer
from stream.errors import CloseError
from stream.kafka.publisher import KafkaPublisher, Publisher
from stream.kafka.topics import Record, Topics, create_topics_async
from stream.settings import DEFAULT_RULES, Settings
from stream.store.store import Store
from tests.support import events
from tests.support.services import read_partition
from tests.support.settings import isolated_settings

T = TypeVar("T")
SEP, OCT, NOV = Month(2026, 9), Month(2026, 10), Month(2026, 11)
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)  # September and October have ended


def line(group: str, cents: int) -> dict[str, Any]:
    return {"sku": f"SKU-{group}", "product_group": group, "quantity": 1, "amount_cents": cents}


@dataclass
class Harness:
    """One test's settings, Store, publisher and processors on the session's services."""

    settings: Settings
    rules: Rules
    store: Store
    publisher: KafkaPublisher
    bootstrap: str
    stores: list[Store] = field(default_factory=list)
    publishers: list[KafkaPublisher] = field(default_factory=list)

    @property
    def payouts_topic(self) -> str:
        return Topics(self.settings).payouts

    async def other_store(self) -> Store:
        """Another Redis client on the same keys (another process, as far as Redis can tell)."""
        store = Store.from_url(self.settings.redis_url, self.settings.redis_prefix)
        self.stores.append(store)
        return store

    async def other_publisher(self) -> KafkaPublisher:
        publisher = KafkaPublisher(self.settings.kafka_url)
        await publisher.start()
        self.publishers.append(publisher)
        return publisher

    async def register(self, *register_events: dict[str, Any]) -> None:
        swipes = SwipeProcessor(self.settings, self.rules, self.store, self.publisher)
        processor = RegisterProcessor(self.settings, self.store, self.publisher, swipes)
        await processor.process([Record(*events.keyed(e)) for e in register_events])

    async def household(self, household_id: str, card: str, **household: Any) -> None:
        await self.register(
            events.household(household_id, **household), events.card(card, household_id)
        )

    async def swipe(self, *swipes: dict[str, Any]) -> None:
        processor = SwipeProcessor(self.settings, self.rules, self.store, self.publisher)
        counts = await processor.process([Record(*events.keyed(s)) for s in swipes])
        assert counts.get("applied") == len(swipes), counts

    async def close(
        self,
        month: Month,
        *,
        now: datetime = NOW,
        store: Store | None = None,
        publisher: Publisher | None = None,
    ) -> CloseReport:
        return await close_month(
            self.settings,
            self.rules,
            store or self.store,
            publisher or self.publisher,
            month,
            now=now,
        )

    async def sent(self) -> list[dict[str, Any]]:
        """Every payout on the topic so far, in offset order (the topic has one partition)."""
        return await read_topic(self.bootstrap, self.payouts_topic)

    async def outbox(self) -> list[str]:
        return await self.store.outbox_ids(self.store.keys.payout_outbox())

    async def paid_seq(self, household_id: str, month: Month) -> int:
        return (await self.store.month_state(household_id, str(month))).paid.seq


async def read_topic(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    """Every record of a one-partition topic so far, in offset order, each keyed by its
    household id."""
    out: list[dict[str, Any]] = []
    for record in await read_partition(bootstrap, topic):
        value = orjson.loads(record.value)
        assert record.key == value["household_id"].encode()
        out.append(value)
    return out


H = TypeVar("H", bound=Harness)


def harness_runner(
    kafka: TansuBroker,
    redis_server: RedisServer,
    unique: str,
    rules: Rules,
    make: Callable[[Settings, Rules, Store, KafkaPublisher, str], H],
    one_partition: Callable[[Topics], list[str]],
) -> Callable[[Callable[[H], Awaitable[T]]], T]:
    """``run(scenario)`` runs ``async scenario(h)`` in a fresh event loop with a harness made
    by ``make``; the topics ``one_partition`` names get one partition each, so that what is
    read back is in the order of sending."""
    settings = isolated_settings(
        kafka,
        redis_server,
        unique,
        group_id=unique,
        _env_file=None,  # type: ignore[call-arg]
    )

    @asynccontextmanager
    async def running() -> AsyncIterator[H]:
        topics = Topics(settings)
        await create_topics_async(kafka.bootstrap, dict.fromkeys(one_partition(topics), 1))
        store = Store.from_url(settings.redis_url, settings.redis_prefix)
        publisher = KafkaPublisher(settings.kafka_url)
        await publisher.start()
        h = make(settings, rules, store, publisher, kafka.bootstrap)
        try:
            yield h
        finally:
            for p in [publisher, *h.publishers]:
                await p.stop()
            for s in [store, *h.stores]:
                await s.close()

    def run(scenario: Callable[[H], Awaitable[T]]) -> T:
        async def main() -> T:
            async with running() as h:
                return await scenario(h)

        return asyncio.run(main())

    return run


@pytest.fixture
def harness(
    kafka: TansuBroker, redis_server: RedisServer, unique: str
) -> Callable[[Callable[[Harness], Awaitable[T]]], T]:
    """``harness(scenario)`` runs ``async scenario(h)`` in a fresh event loop with a Harness."""
    return harness_runner(
        kafka,
        redis_server,
        unique,
        load_rules(DEFAULT_RULES),
        Harness,
        lambda t: [t.payouts, t.purchase_lines, t.dead_letters],
    )


Run = Callable[[Callable[[Harness], Awaitable[Any]]], Any]

# Three households with October purchases on an ordinary card (no benefit, no fuel):
#   H1: 12000 -> 100 bp -> round(100 x 12000 / 10000) = 120
#   H2: 25000 -> 150 bp -> round(150 x 25000 / 10000) = 375
#   H3: 33333 -> 200 bp -> round(200 x 33333 / 10000) = round(666.66) = 667
OCTOBER_TOTALS = {"H1": 120, "H2": 375, "H3": 667}


async def seed_three(h: Harness) -> None:
    for n, (household_id, cents) in enumerate({"H1": 12000, "H2": 25000, "H3": 33333}.items()):
        card = f"63900000000002{n:02d}"
        await h.household(household_id, card)
        await h.swipe(
            events.swipe(
                f"S-{household_id}",
                card,
                occurred_at="2026-10-15T12:00:00+03:00",
                lines=[line("dairy", cents)],
            )
        )


def first_payout(household_id: str, total: int, month: str = "2026-10") -> dict[str, Any]:
    tier = {120: 100, 375: 150, 667: 200}[total]
    purchases = {120: 12000, 375: 25000, 667: 33333}[total]
    return {
        "schema": "payout/1",
        "payout_id": f"{household_id}:{month}:1",
        "household_id": household_id,
        "month": month,
        "co_op": "hok-elanto",
        "purchases_cents": purchases,
        "tier_bp": tier,
        "base_bonus_cents": total,
        "fuel_bonus_cents": 0,
        "payment_benefit_cents": 0,
        "total_cents": total,
        "to_capital_cents": 0,
        "to_account_cents": total,
        "payout_account": f"FI21{household_id}",
        "adjustment": False,
    }


EXPECTED_THREE = [first_payout(h, t) for h, t in OCTOBER_TOTALS.items()]


def by_id(sent: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    ids = [p["payout_id"] for p in sent]
    assert len(ids) == len(set(ids)), f"a payout was emitted twice: {sorted(ids)}"
    return {p["payout_id"]: p for p in sent}


# -- (a) two closes at once -------------------------------------------------------------------


def test_two_closes_at_once_emit_each_payout_exactly_once(harness: Run) -> None:
    async def scenario(h: Harness) -> None:
        await seed_three(h)
        store_b, publisher_b = await h.other_store(), await h.other_publisher()
        results = await asyncio.gather(
            h.close(OCT),
            h.close(OCT, store=store_b, publisher=publisher_b),
            return_exceptions=True,
        )
        reports = [r for r in results if isinstance(r, CloseReport)]
        errors = [r for r in results if isinstance(r, BaseException)]
        # The winner pays all three; the loser either found the lock taken or nothing to do.
        assert sorted(r.payouts for r in reports) in ([3], [0, 3]), results
        assert all(isinstance(e, CloseError) and "another close" in str(e) for e in errors)
        assert by_id(await h.sent()) == by_id(EXPECTED_THREE)
        assert await h.outbox() == []
        # The lock is released: a third close runs, as a repeat close with nothing to pay.
        again = await h.close(OCT)
        assert (again.first_close, again.payouts, again.unchanged) == (False, 0, 3)
        assert len(await h.sent()) == 3

    harness(scenario)


def test_without_the_lock_the_ledger_sequence_alone_prevents_a_second_payout(
    harness: Run,
) -> None:
    """Two closes whose lock did not keep them apart (an expired lock, a bug): both plan
    every household on the same ledger state, and ``record_payout.lua`` lets only one
    payout per planned sequence through; the other plans again and finds nothing to pay."""

    async def scenario(h: Harness) -> None:
        await seed_three(h)
        store_b = await h.other_store()
        expire_at = int(datetime(2029, 1, 1, tzinfo=UTC).timestamp())
        report_a, report_b = CloseReport("2026-10"), CloseReport("2026-10")
        for household_id in OCTOBER_TOTALS:
            await asyncio.gather(
                payouts._close_household(
                    h.store, h.rules, OCT, household_id, report_a, expire_at=expire_at
                ),
                payouts._close_household(
                    store_b, h.rules, OCT, household_id, report_b, expire_at=expire_at
                ),
            )
        assert report_a.payouts + report_b.payouts == 3
        assert report_a.unchanged + report_b.unchanged == 3
        for household_id in OCTOBER_TOTALS:
            assert await h.paid_seq(household_id, OCT) == 1
        assert sorted(await h.outbox()) == sorted(p["payout_id"] for p in EXPECTED_THREE)

        # The same race made deterministic: a payout planned on sequence 0 after another
        # process recorded sequence 1 is refused, whatever it carries.
        stale = Payout(**{k: v for k, v in EXPECTED_THREE[0].items() if k != "schema"})
        assert not await store_b.record_payout(stale, 0, expire_at=expire_at)
        assert await h.paid_seq("H1", OCT) == 1

        assert await send_outbox(h.store, h.publisher, Topics(h.settings)) == 3
        assert by_id(await h.sent()) == by_id(EXPECTED_THREE)
        assert await h.outbox() == []

    harness(scenario)


class CloseInTheMiddle:
    """A publisher whose first ``send`` lets another close run to its end first: the lock of
    the first close has expired (deleted here) while it was about to send what it recorded."""

    def __init__(self, inner: KafkaPublisher, other: Callable[[], Awaitable[CloseReport]]) -> None:
        self.inner, self.other = inner, other
        self.other_report: CloseReport | None = None

    async def send(self, topic: str, key: bytes | None, value: bytes) -> None:
        if self.other_report is None and topic.endswith("bonus-payouts"):
            self.other_report = await self.other()
        await self.inner.send(topic, key, value)

    async def flush(self) -> None:
        await self.inner.flush()


def test_a_close_whose_lock_expired_while_sending_does_not_emit_twice(harness: Run) -> None:
    async def scenario(h: Harness) -> None:
        await seed_three(h)
        store_b, publisher_b = await h.other_store(), await h.other_publisher()
        lock = h.store.keys.month_closing("2026-10")

        async def second_close() -> CloseReport:
            assert await h.store.redis.delete(lock) == 1  # the first close's lock "expired"
            return await h.close(OCT, store=store_b, publisher=publisher_b)

        publisher = CloseInTheMiddle(h.publisher, second_close)
        first = await h.close(OCT, publisher=publisher)
        assert publisher.other_report is not None
        # The first close recorded the three payouts; the second found them recorded.
        assert first.payouts == 3
        assert publisher.other_report.payouts == 0
        assert by_id(await h.sent()) == by_id(EXPECTED_THREE)
        assert await h.outbox() == []

    harness(scenario)


def test_a_close_whose_lock_expired_leaves_the_new_owners_lock_alone(harness: Run) -> None:
    """The old release was GET-then-DELETE; the lock's release is one script that deletes only
    its own token, so a close that lost its lock never frees the lock of the close after it."""

    async def scenario(h: Harness) -> None:
        await seed_three(h)
        store_b = await h.other_store()
        key = h.store.keys.month_closing("2026-10")
        taken = store_b.month_lock("2026-10", seconds=60)

        async def take_over() -> CloseReport:
            assert await h.store.redis.delete(key) == 1  # the first close's lock "expired"
            assert await taken.acquire()  # and another close took it
            return CloseReport("2026-10")

        publisher = CloseInTheMiddle(h.publisher, take_over)
        first = await h.close(OCT, publisher=publisher)
        assert first.payouts == 3
        assert await taken.owned()  # neither extended nor released by the first close
        assert 0 < await h.store.redis.ttl(key) <= 60
        with pytest.raises(CloseError, match="another close of 2026-10 is running"):
            await h.close(OCT)
        await taken.release()
        assert by_id(await h.sent()) == by_id(EXPECTED_THREE)

    harness(scenario)


# -- (b) a crash between recording and sending ----------------------------------------------


class Crash(BaseException):
    """The process dies: nothing in it catches or retries this (unlike a Kafka fault)."""


class DiesAtFirstSend:
    """The process dies when it is about to send: everything recorded stays in the outbox."""

    async def send(self, topic: str, key: bytes | None, value: bytes) -> None:
        raise Crash

    async def flush(self) -> None:
        return None


def test_a_payout_recorded_but_not_sent_is_sent_once_by_the_next_close(harness: Run) -> None:
    async def scenario(h: Harness) -> None:
        await seed_three(h)
        # Recorded by hand, as a close that crashed right after record_payout.lua left it.
        recorded = EXPECTED_THREE[1]  # H2: 375
        payout = Payout(**{k: v for k, v in recorded.items() if k != "schema"})
        expire_at = int(datetime(2029, 1, 1, tzinfo=UTC).timestamp())
        assert await h.store.record_payout(payout, 0, expire_at=expire_at)
        assert await h.outbox() == ["H2:2026-10:1"]
        assert await h.sent() == []

        report = await h.close(OCT)
        assert (report.resent, report.payouts, report.unchanged) == (1, 2, 1)
        sent = await h.sent()
        assert sent[0] == recorded  # the outbox goes first, with the very same content
        assert by_id(sent) == by_id(EXPECTED_THREE)
        assert await h.outbox() == []

        again = await h.close(OCT)
        assert (again.resent, again.payouts) == (0, 0)
        assert len(await h.sent()) == 3

    harness(scenario)


def test_a_close_that_dies_while_sending_is_completed_by_the_next_without_new_payouts(
    harness: Run,
) -> None:
    async def scenario(h: Harness) -> None:
        await seed_three(h)
        with pytest.raises(Crash):
            await h.close(OCT, publisher=DiesAtFirstSend())
        assert sorted(await h.outbox()) == sorted(p["payout_id"] for p in EXPECTED_THREE)
        assert await h.sent() == []

        report = await h.close(OCT)  # the lock was released by the dying close
        # All three re-sent from the outbox; none planned again. The first close never
        # finished, so this one is still the first (no adjustment flag on anything).
        assert (report.resent, report.payouts, report.unchanged, report.first_close) == (
            3,
            0,
            3,
            True,
        )
        assert by_id(await h.sent()) == by_id(EXPECTED_THREE)
        assert await h.outbox() == []

    harness(scenario)


class LosesFirstDelivery:
    """The first batch of payouts never reaches the broker and its flush fails (a produce
    request that timed out); every later send goes through to the real broker."""

    def __init__(self, inner: KafkaPublisher) -> None:
        self.inner = inner
        self.failing = True
        self.lost = 0

    async def send(self, topic: str, key: bytes | None, value: bytes) -> None:
        if self.failing:
            self.lost += 1
            return
        await self.inner.send(topic, key, value)

    async def flush(self) -> None:
        if self.failing:
            self.failing = False
            raise KafkaTimeoutError
        await self.inner.flush()


def test_a_failed_delivery_is_sent_again_not_dropped_from_the_outbox(harness: Run) -> None:
    async def scenario(h: Harness) -> None:
        await seed_three(h)
        publisher = LosesFirstDelivery(h.publisher)
        report = await h.close(OCT, publisher=publisher)
        assert publisher.lost == 3
        assert report.payouts == 3
        assert by_id(await h.sent()) == by_id(EXPECTED_THREE)
        assert await h.outbox() == []

    harness(scenario)


# -- (c) capital first, across months --------------------------------------------------------


def test_capital_first_across_months_then_the_account(harness: Run) -> None:
    """Required 5000; payment CP-1 1000 (delivered twice) -> 4000 to go before the account.

    September: 60000 c -> 350 bp; base = round(350 x 60000 / 10000) = 2100, all to capital
      (4000 left before) -> 1900 left.
    Then CP-2 500 arrives -> 1400 left.
    October: 70000 c on the benefit card -> 400 bp; base = round(400 x 70000 / 10000) = 2800,
      benefit = round(50 x 70000 / 10000) = 350 -> 3150: 1400 to capital, 1750 to the account.
    November (closed from January on): 10000 c -> 100 bp -> 100, all to the account.
    """

    async def scenario(h: Harness) -> None:
        card = "6390000000000301"
        await h.household("HK", card, capital_required_cents=5000)
        cp1 = events.capital_payment("CP-1", "HK", 1000)
        await h.register(cp1, cp1)
        await h.swipe(
            events.swipe(
                "K-9", card, occurred_at="2026-09-10T12:00:00+03:00", lines=[line("dairy", 60000)]
            ),
            events.swipe(
                "K-10",
                card,
                occurred_at="2026-10-10T12:00:00+03:00",
                lines=[line("dairy", 70000)],
                payment_method="s_etukortti_visa",
            ),
            events.swipe(
                "K-11", card, occurred_at="2026-11-10T12:00:00+02:00", lines=[line("dairy", 10000)]
            ),
        )
        assert (await h.store.month_state("HK", "2026-09")).capital_remaining_cents == 4000

        await h.close(SEP)
        await h.register(events.capital_payment("CP-2", "HK", 500))
        assert (await h.store.month_state("HK", "2026-10")).capital_remaining_cents == 1400
        await h.close(OCT)
        await h.close(NOV, now=datetime(2027, 1, 10, tzinfo=UTC))

        sent = await h.sent()
        assert [
            (
                p["payout_id"],
                p["tier_bp"],
                p["total_cents"],
                p["to_capital_cents"],
                p["to_account_cents"],
            )
            for p in sent
        ] == [
            ("HK:2026-09:1", 350, 2100, 2100, 0),
            ("HK:2026-10:1", 400, 3150, 1400, 1750),
            ("HK:2026-11:1", 100, 100, 0, 100),
        ]
        assert sent[1]["payment_benefit_cents"] == 350
        assert (await h.store.month_state("HK", "2026-12")).capital_remaining_cents == 0

    harness(scenario)


def test_two_months_closed_at_once_never_put_more_into_capital_than_is_owed(
    harness: Run,
) -> None:
    """Each month has its own lock, so the closes of September and October may run at the
    same time (an operator and the scheduled close): both read the same capital still owed.

    Required 3000, nothing paid. September 60000 c -> 2100; October 60000 c -> 2100.
    Whichever is recorded first takes 2100 for capital; the other only the 900 left.
    """

    async def scenario(h: Harness) -> None:
        card = "6390000000000302"
        await h.household("HQ", card, capital_required_cents=3000)
        await h.swipe(
            events.swipe(
                "Q-9", card, occurred_at="2026-09-10T12:00:00+03:00", lines=[line("dairy", 60000)]
            ),
            events.swipe(
                "Q-10", card, occurred_at="2026-10-10T12:00:00+03:00", lines=[line("dairy", 60000)]
            ),
        )
        store_b, publisher_b = await h.other_store(), await h.other_publisher()
        reports = await asyncio.gather(
            h.close(SEP), h.close(OCT, store=store_b, publisher=publisher_b)
        )
        assert [r.payouts for r in reports] == [1, 1]
        sent = await h.sent()
        assert sorted(p["total_cents"] for p in sent) == [2100, 2100]
        assert sorted(p["to_capital_cents"] for p in sent) == [900, 2100]
        assert sum(p["to_account_cents"] for p in sent) == 4200 - 3000
        assert (await h.store.month_state("HQ", "2026-10")).capital_remaining_cents == 0
        assert len(by_id(sent)) == 2

    harness(scenario)


def test_a_capital_split_planned_on_capital_already_taken_is_refused(harness: Run) -> None:
    """The same race made deterministic: October planned on the 3000 still owed, recorded
    after September took 2100 of it. ``record_payout.lua`` refuses it; the close plans again."""

    async def scenario(h: Harness) -> None:
        card = "6390000000000303"
        await h.household("HQ", card, capital_required_cents=3000)
        await h.swipe(
            events.swipe(
                "Q-9",
                card,
                occurred_at="2026-09-10T12:00:00+03:00",
                lines=[line("dairy", 60000)],
            ),
            events.swipe(
                "Q-10",
                card,
                occurred_at="2026-10-10T12:00:00+03:00",
                lines=[line("dairy", 60000)],
            ),
        )
        expire_at = int(datetime(2029, 1, 1, tzinfo=UTC).timestamp())

        def planned(month: str) -> Payout:  # 60000 -> 350 bp -> 2100, all of it to capital
            return Payout(
                payout_id=f"HQ:{month}:1",
                household_id="HQ",
                month=month,
                co_op="hok-elanto",
                purchases_cents=60000,
                tier_bp=350,
                base_bonus_cents=2100,
                fuel_bonus_cents=0,
                payment_benefit_cents=0,
                total_cents=2100,
                to_capital_cents=2100,
                to_account_cents=0,
                payout_account="FI21HQ",
                adjustment=False,
            )

        assert await h.store.record_payout(planned("2026-09"), 0, expire_at=expire_at)
        store_b = await h.other_store()
        assert not await store_b.record_payout(planned("2026-10"), 0, expire_at=expire_at)
        assert await h.paid_seq("HQ", OCT) == 0

        report = await h.close(OCT, store=store_b)
        assert (report.resent, report.payouts) == (1, 1)  # September's from the outbox
        assert [
            (p["payout_id"], p["to_capital_cents"], p["to_account_cents"]) for p in await h.sent()
        ] == [
            ("HQ:2026-09:1", 2100, 0),
            ("HQ:2026-10:1", 900, 1200),
        ]

    harness(scenario)


# -- (d) a month that has not ended in Helsinki ----------------------------------------------


@pytest.mark.parametrize(
    ("now", "closes"),
    [
        # November ends at 2026-12-01T00:00 Helsinki = 2026-11-30T22:00Z
        (datetime(2026, 11, 30, 21, 30, tzinfo=UTC), False),  # 23:30 in Helsinki
        (datetime(2026, 11, 30, 21, 59, 59, 999999, tzinfo=UTC), False),
        (datetime(2026, 11, 30, 22, 0, tzinfo=UTC), True),  # 00:00 on 1 December
        (datetime(2026, 11, 30, 22, 30, tzinfo=UTC), True),  # already December in Helsinki
    ],
)
def test_only_a_month_that_has_ended_in_helsinki_can_be_closed(
    harness: Run, now: datetime, closes: bool
) -> None:
    async def scenario(h: Harness) -> None:
        await h.household("HN", "6390000000000401")
        # 23:30 on 30 November in Helsinki (21:30Z): November's last half hour
        await h.swipe(
            events.swipe(
                "N-1",
                "6390000000000401",
                occurred_at="2026-11-30T23:30:00+02:00",
                lines=[line("dairy", 12000)],
            )
        )
        if not closes:
            with pytest.raises(CloseError, match="2026-11 has not ended yet in Europe/Helsinki"):
                await h.close(NOV, now=now)
            assert await h.sent() == []
            # Nothing was left behind: no closed mark, no lock; a later close is the first one.
            report = await h.close(NOV, now=datetime(2026, 12, 1, tzinfo=UTC))
            assert report.first_close
        else:
            report = await h.close(NOV, now=now)
            assert report.first_close
        assert report.payout_ids == []  # all sent
        assert [(p["payout_id"], p["total_cents"]) for p in await h.sent()] == [
            ("HN:2026-11:1", 120)  # 12000 -> 100 bp -> 120
        ]

    harness(scenario)


# -- (e) a household snapshot that arrives after the close ----------------------------------


def test_a_household_unknown_at_the_close_is_paid_later_as_adjustment_one(harness: Run) -> None:
    async def scenario(h: Harness) -> None:
        card = "6390000000000501"
        await h.register(events.card(card, "HL"))  # the card is known, its household is not
        await h.swipe(
            events.swipe(
                "L-1", card, occurred_at="2026-10-02T12:00:00+03:00", lines=[line("dairy", 21000)]
            )
        )
        first = await h.close(OCT)
        assert (first.households, first.skipped_unknown_household, first.payouts) == (1, 1, 0)
        assert await h.sent() == []

        await h.register(events.household("HL"))
        second = await h.close(OCT)
        assert (second.first_close, second.payouts, second.adjustments) == (False, 1, 1)
        # 21000 -> 150 bp -> round(150 x 21000 / 10000) = 315
        assert await h.sent() == [
            {
                "schema": "payout/1",
                "payout_id": "HL:2026-10:1",
                "household_id": "HL",
                "month": "2026-10",
                "co_op": "hok-elanto",
                "purchases_cents": 21000,
                "tier_bp": 150,
                "base_bonus_cents": 315,
                "fuel_bonus_cents": 0,
                "payment_benefit_cents": 0,
                "total_cents": 315,
                "to_capital_cents": 0,
                "to_account_cents": 315,
                "payout_account": "FI21HL",
                "adjustment": True,
            }
        ]

    harness(scenario)
