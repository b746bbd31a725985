"""Member payments end to end on the real stack (Tansu, Redis): each ``payment_id`` exactly once
on the topic, whether run twice, twice at once, or killed between record and send; the tax
report equals the interest emitted; refusals name what is missing.

The year: three households of the co-op ``hok-elanto`` (300 bp interest, 100 bp refund).
- H1: 10000 capital required; capital payments 1000 (2025), 2500 (March 2026), 2500 (November
  2026); June 2026 is closed and its bonus (round(150 x (30000 - 2000) / 10000) = 420) goes to
  capital. Held at the end of 2026: 1000 + 2500 + 2500 + 420 = 6420 -> round(192.6) = 193.
  Purchases 12000 (January) + 28000 (June, after a 2000 return) + 5000 (31 December 23:30 in
  Helsinki, 21:30 UTC) = 45000 -> refund 450; 8000 on 1 January 2027 (00:30 Helsinki, still
  2026 in UTC) is 2027's and counts nowhere here.
- H2: a business, 5000 required and paid in 2026 -> interest 150, no refund.
- H3: no capital, 1234 in March -> refund round(12.34) = 12.
"""

from __future__ import annotations

import asyncio
import csv
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest

from models.months import Month
from models.rules import parse_rules
from stream.bonus.close import close_month
from stream.bonus.member_payments import (
    MemberPaymentsError,
    MemberPaymentsReport,
    run_member_payments,
    tax_report_rows,
)
from stream.devstack.broker import TansuBroker
from stream.devstack.redis_server import RedisServer
from stream.kafka.publisher import KafkaPublisher, Publisher
from stream.kafka.topics import Topics
from stream.settings import DEFAULT_RULES
from stream.store.store import Store
from tests.stream.bonus import test_close as close_tests
from tests.support import events
from tests.support.processes import RunCli

T = TypeVar("T")
NOW = datetime(2027, 1, 15, 12, 0, tzinfo=UTC)
RULES_TEXT = (
    DEFAULT_RULES.read_text()
    + """
[co_op_years."hok-elanto".2026]
capital_interest_bp = 300
surplus_refund_bp = 100
"""
)
EXPECTED = {
    "H1:2026:capital_interest": ("H1", "capital_interest", 6420, 300, 193),
    "H1:2026:surplus_refund": ("H1", "surplus_refund", 45000, 100, 450),
    "H2:2026:capital_interest": ("H2", "capital_interest", 5000, 300, 150),
    "H3:2026:surplus_refund": ("H3", "surplus_refund", 1234, 100, 12),
}


def expected_event(payment_id: str) -> dict[str, Any]:
    household_id, kind, basis, rate, amount = EXPECTED[payment_id]
    return {
        "schema": "member-payment/1",
        "payment_id": payment_id,
        "household_id": household_id,
        "year": 2026,
        "co_op": "hok-elanto",
        "kind": kind,
        "basis_cents": basis,
        "rate_bp": rate,
        "amount_cents": amount,
        "payout_account": f"FI21{household_id}",
    }


def line(cents: int) -> dict[str, Any]:
    return {"sku": "SKU-dairy", "product_group": "dairy", "quantity": 1, "amount_cents": cents}


def capital(payment_id: str, household_id: str, cents: int, paid_at: str) -> dict[str, Any]:
    return {**events.capital_payment(payment_id, household_id, cents), "paid_at": paid_at}


@dataclass
class Harness(close_tests.Harness):
    """The month close's harness (register, swipe, other stores), for member payments."""

    async def other(self) -> tuple[Store, KafkaPublisher]:
        return await self.other_store(), await self.other_publisher()

    async def pay(
        self, *, store: Store | None = None, publisher: Publisher | None = None, year: int = 2026
    ) -> MemberPaymentsReport:
        return await run_member_payments(
            self.settings,
            self.rules,
            store or self.store,
            publisher or self.publisher,
            year,
            now=NOW,
        )

    async def sent(self) -> list[dict[str, Any]]:
        """Every member payment on the topic so far (one partition, offset order)."""
        return await close_tests.read_topic(self.bootstrap, Topics(self.settings).member_payments)


def once_each(sent: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    ids = [p["payment_id"] for p in sent]
    assert len(ids) == len(set(ids)), f"a member payment was emitted twice: {sorted(ids)}"
    return {p["payment_id"]: p for p in sent}


async def seed(h: Harness) -> None:
    cards = {"H1": "6390000000000301", "H2": "6390000000000302", "H3": "6390000000000303"}
    await h.register(
        events.household("H1", capital_required_cents=10_000),
        events.household("H2", capital_required_cents=5000, business=True),
        events.household("H3"),
        *(events.card(card, hid) for hid, card in cards.items()),
        capital("CP-0", "H1", 1000, "2025-06-01T12:00:00+03:00"),
        capital("CP-1", "H1", 2500, "2026-03-10T12:00:00+02:00"),
        capital("CP-2", "H1", 2500, "2026-11-03T12:00:00+02:00"),
        capital("CP-3", "H2", 5000, "2026-02-01T12:00:00+02:00"),
    )
    h1, h3 = cards["H1"], cards["H3"]
    await h.swipe(
        events.swipe("A1", h1, occurred_at="2026-01-10T12:00:00+02:00", lines=[line(12_000)]),
        events.swipe("A2", h1, occurred_at="2026-06-10T12:00:00+03:00", lines=[line(30_000)]),
        events.swipe(
            "A3", h1, kind="return", occurred_at="2026-06-20T12:00:00+03:00", lines=[line(2000)]
        ),
        events.swipe("A4", h1, occurred_at="2026-12-31T23:30:00+02:00", lines=[line(5000)]),
        events.swipe("A5", h1, occurred_at="2027-01-01T00:30:00+02:00", lines=[line(8000)]),
        events.swipe(
            "B1", cards["H2"], occurred_at="2026-05-01T12:00:00+03:00", lines=[line(9000)]
        ),
        events.swipe("C1", h3, occurred_at="2026-03-05T12:00:00+02:00", lines=[line(1234)]),
    )
    june = await close_month(h.settings, h.rules, h.store, h.publisher, Month(2026, 6), now=NOW)
    assert (june.payouts, june.to_capital_cents) == (1, 420)


@pytest.fixture
def harness(
    kafka: TansuBroker, redis_server: RedisServer, unique: str
) -> Callable[[Callable[[Harness], Awaitable[T]]], T]:
    return close_tests.harness_runner(
        kafka,
        redis_server,
        unique,
        parse_rules(RULES_TEXT),
        Harness,
        lambda t: [t.member_payments, t.payouts, t.purchase_lines, t.dead_letters],
    )


Run = Callable[[Callable[[Harness], Awaitable[Any]]], Any]


def test_twice_and_at_once_each_payment_id_is_emitted_exactly_once(harness: Run) -> None:
    async def scenario(h: Harness) -> None:
        await seed(h)
        (store_b, publisher_b), (store_c, publisher_c) = await h.other(), await h.other()
        reports = await asyncio.gather(h.pay(), h.pay(store=store_b, publisher=publisher_b))
        assert sum(r.recorded for r in reports) == 4
        assert sum(r.already_recorded for r in reports) == 4
        sent = once_each(await h.sent())
        assert sent == {i: expected_event(i) for i in EXPECTED}

        # Later swipes change the year's purchases: a third run changes nothing on the topic.
        await h.swipe(
            events.swipe(
                "C2",
                "6390000000000303",
                occurred_at="2026-04-05T12:00:00+03:00",
                lines=[line(10_000)],
            )
        )
        third = await h.pay(store=store_c, publisher=publisher_c)
        assert (third.recorded, third.already_recorded, third.changed_since_recorded) == (0, 4, 1)
        assert third.sums == {
            ("hok-elanto", "capital_interest"): [2, 343],
            ("hok-elanto", "surplus_refund"): [2, 462],
        }
        assert once_each(await h.sent()) == sent

        rows, waiting = await tax_report_rows(h.settings, h.store, 2026)
        assert waiting == []
        assert [(r.payment_id, r.household_id, r.head_person_id, r.amount_cents) for r in rows] == [
            ("H1:2026:capital_interest", "H1", "P-H1", 193),
            ("H2:2026:capital_interest", "H2", "P-H2", 150),
        ]
        emitted_interest = sum(
            p["amount_cents"] for p in sent.values() if p["kind"] == "capital_interest"
        )
        assert sum(r.amount_cents for r in rows) == emitted_interest == 343

    harness(scenario)


def test_refused_before_the_year_ends_and_for_a_co_op_without_rates(harness: Run) -> None:
    async def scenario(h: Harness) -> None:
        await seed(h)
        with pytest.raises(
            MemberPaymentsError, match=r"year 2027 has not ended yet in Europe/Helsinki"
        ):
            await h.pay(year=2027)
        await h.register(events.household("H9", co_op="hok-uusi"))
        with pytest.raises(
            MemberPaymentsError,
            match=r"no rates for 2026 for co-op 'hok-uusi' \(1 households\): add "
            r'\[co_op_years."hok-uusi".2026\]',
        ):
            await h.pay()
        assert await h.sent() == []  # refused as a whole: nothing recorded, nothing sent
        assert await h.store.member_payment_index(2026) == {}

    harness(scenario)


def test_killed_between_record_and_send_the_next_run_sends_each_once(
    harness: Run, run_cli: RunCli, loyalty_env: dict[str, str], tmp_path: Path
) -> None:
    rules_path = tmp_path / "rules.toml"
    rules_path.write_text(RULES_TEXT)
    env = {**loyalty_env, "LOYALTY_RULES": str(rules_path)}

    async def scenario(h: Harness) -> None:
        assert h.settings.redis_prefix == env["LOYALTY_REDIS_PREFIX"]
        await seed(h)

    harness(scenario)
    proc = run_cli(
        ["2026", NOW.isoformat()], env, name="killed", module="tests.support.member_payments_crash"
    )
    assert proc.wait(60) == -9, proc.log_tail()
    assert "about to send: killed" in proc.log_text()

    async def after(h: Harness) -> None:
        outbox = h.store.keys.member_payment_outbox().outbox
        pending = sorted(i.decode() for i in await h.store.redis.zrange(outbox, 0, -1))
        assert pending == sorted(EXPECTED)
        assert await h.sent() == []
        # The dead run's claims stand until they expire: a run meanwhile does not send them
        # (the claimant might still be sending), and plans nothing new.
        claims = [h.store.keys.member_payment_outbox().claim(i) for i in EXPECTED]
        ttls = [await h.store.redis.ttl(c) for c in claims]
        assert all(0 < ttl <= 600 for ttl in ttls), ttls
        meanwhile = await h.pay()
        assert (meanwhile.resent, meanwhile.recorded, meanwhile.sent) == (0, 0, 0)
        assert await h.sent() == []
        assert await h.store.redis.delete(*claims) == 4  # ... they expire
        report = await h.pay()
        assert (report.resent, report.recorded, report.already_recorded) == (4, 0, 4)
        assert once_each(await h.sent()) == {i: expected_event(i) for i in EXPECTED}
        assert await h.store.redis.zcard(outbox) == 0
        again = await h.pay()
        assert (again.resent, again.recorded, again.sent) == (0, 0, 0)
        assert len(await h.sent()) == 4

    harness(after)


def test_tax_report_cli_writes_what_was_emitted(
    harness: Run, run_cli: RunCli, loyalty_env: dict[str, str], tmp_path: Path
) -> None:
    rules_path = tmp_path / "rules.toml"
    rules_path.write_text(RULES_TEXT)
    env = {**loyalty_env, "LOYALTY_RULES": str(rules_path)}

    async def scenario(h: Harness) -> None:
        await seed(h)
        await h.pay()

    harness(scenario)
    out = tmp_path / "tax.csv"
    proc = run_cli(["tax-report", "2026", "--out", str(out)], env, name="tax")
    assert proc.wait(60) == 0, proc.log_tail()
    with out.open() as f:
        assert list(csv.reader(f)) == [
            ["payment_id", "household_id", "head_person_id", "amount_cents"],
            ["H1:2026:capital_interest", "H1", "P-H1", "193"],
            ["H2:2026:capital_interest", "H2", "P-H2", "150"],
        ]
    assert "2 capital interest payments, 3.43 €" in proc.log_text()
    refused = run_cli(["member-payments", "2099"], env, name="refused")
    assert refused.wait(60) == 1
    assert "year 2099 has not ended yet" in refused.log_text()


def test_the_cli_pays_an_ended_year_once_and_writes_the_dashboard_totals(
    harness: Run, run_cli: RunCli, loyalty_env: dict[str, str], tmp_path: Path
) -> None:
    """2025 has ended: the command itself, run twice. H7 paid 4000 of 8000 capital in 2025
    (interest round(300 x 4000 / 10000) = 120) and bought 20000 + 5555 (refund round(255.55)
    = 256)."""
    rules_path = tmp_path / "rules.toml"
    rules_path.write_text(RULES_TEXT.replace(".2026]", ".2025]"))
    env = {**loyalty_env, "LOYALTY_RULES": str(rules_path)}

    async def scenario(h: Harness) -> None:
        await h.register(
            events.household("H7", capital_required_cents=8000),
            events.card("6390000000000307", "H7"),
            capital("CP-7", "H7", 4000, "2025-05-05T12:00:00+03:00"),
        )
        await h.swipe(
            events.swipe(
                "D1",
                "6390000000000307",
                occurred_at="2025-03-01T12:00:00+02:00",
                lines=[line(20_000)],
            ),
            events.swipe(
                "D2",
                "6390000000000307",
                occurred_at="2025-09-01T12:00:00+03:00",
                lines=[line(5555)],
            ),
        )

    harness(scenario)
    first = run_cli(["member-payments", "2025"], env, name="first")
    assert first.wait(120) == 0, first.log_tail()
    text = first.log_text()
    assert "1 households, 2 payments recorded and sent now" in text
    assert "hok-elanto               capital_interest           1           1.20 €" in text
    assert "hok-elanto               surplus_refund             1           2.56 €" in text
    assert "2 rows of member payment totals written to ClickHouse" in text
    second = run_cli(["member-payments", "2025"], env, name="second")
    assert second.wait(120) == 0, second.log_tail()
    assert "0 payments recorded and sent now, 2 recorded by an earlier run" in second.log_text()

    from stream.clickhouse.connect import connect  # noqa: PLC0415 (after the CLI released chdb)

    with connect(env["LOYALTY_CLICKHOUSE_URL"]) as client:
        rows = client.query(
            "SELECT kind, payments, amount_cents FROM member_payment_totals FINAL "
            "WHERE year = 2025 ORDER BY kind"
        )
    assert [tuple(r) for r in rows] == [("capital_interest", 1, 120), ("surplus_refund", 1, 256)]

    async def sent(h: Harness) -> None:
        assert sorted(p["payment_id"] for p in await h.sent()) == [
            "H7:2025:capital_interest",
            "H7:2025:surplus_refund",
        ]

    harness(sent)
