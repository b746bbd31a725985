"""Member payments (contract section 11): capital interest and surplus refund of a year.

``run_member_payments`` computes each household's payments from its capital ledger and its
twelve accumulators of the year (``models.member_payment``), records each payment once per
``payment_id`` (``record_member_payment.lua``) and sends it through the same outbox as the
month close's payouts (``stream.bonus.outbox``): a crash between record and send, a broker
outage or two runs at once never emit a second event for one ``payment_id``. A payment
recorded by an earlier run is never recomputed: its amount stands, even if late swipes
changed the year's purchases since (the run counts those as ``changed_since_recorded``).

The tax report (``tax_report_rows``) is built from the payments recorded and confirmed sent,
so it always agrees with what the topic carried.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from models.member_payment import (
    CAPITAL_INTEREST,
    MemberPayment,
    ledger_from_fields,
    plan_member_payments,
)
from models.months import Month, days_after
from models.rules import Rules
from stream import metrics
from stream.bonus.outbox import Outbox, OutboxKind
from stream.errors import LoyaltyError
from stream.kafka.publisher import Publisher
from stream.kafka.topics import Topics
from stream.settings import Settings
from stream.store.keys import Keys
from stream.store.store import Store

BATCH = 500


class MemberPaymentsError(LoyaltyError):
    """The member payments of a year cannot be made now (year not ended, rates missing)."""


@dataclass
class MemberPaymentsReport:
    year: int
    households: int = 0
    recorded: int = 0  # payments recorded (and sent) by this run
    already_recorded: int = 0  # recorded by an earlier run: left as they were
    changed_since_recorded: int = 0  # of those, the amount computed now differs
    resent: int = 0  # left on the outbox by an earlier run, sent now
    sent: int = 0
    # (co_op, kind) -> [payments, cents] of every payment of the year, recorded now or before
    sums: dict[tuple[str, str], list[int]] = field(default_factory=dict)


def member_payments_kind(topics: Topics) -> OutboxKind:
    return OutboxKind(
        keys=Keys.member_payment_outbox,
        topic=topics.member_payments,
        on_sent=_count_sent,
    )


def _count_sent(payment: dict[str, object]) -> None:
    metrics.MEMBER_PAYMENTS.labels(kind=str(payment["kind"])).inc()
    amount = payment["amount_cents"]
    metrics.MEMBER_PAYMENT_CENTS.labels(kind=str(payment["kind"])).inc(
        max(0, amount if isinstance(amount, int) else 0)
    )


def year_end(year: int, rules: Rules) -> datetime:
    return Month(year, 12).ends_at(rules.timezone)


def check_year(settings: Settings, rules: Rules, year: int, now: datetime) -> None:
    """Refuse a year that has not ended, or whose months are past retention."""
    if not 1900 <= year <= 9999:
        raise MemberPaymentsError(f"year {year} is out of range (1900-9999)")
    ends = year_end(year, rules)
    if now < ends:
        raise MemberPaymentsError(
            f"year {year} has not ended yet in {rules.timezone.key} (it ends {ends.isoformat()})"
        )
    oldest_kept = Month.of(now, rules.timezone).minus(settings.retention_months)
    if Month(year, 1) < oldest_kept:
        raise MemberPaymentsError(
            f"the purchases of {year} are past retention (LOYALTY_RETENTION_MONTHS="
            f"{settings.retention_months} keeps months from {oldest_kept}): its surplus refund "
            "can no longer be computed"
        )


async def missing_rates(store: Store, rules: Rules, year: int) -> Counter[str]:
    """Co-ops of current households without ``[co_op_years."CO-OP".YEAR]``: co-op -> count."""
    missing: Counter[str] = Counter()
    async for ids in store.household_id_batches():
        for hh in await store.households(ids):
            if hh is not None and rules.co_op_year(hh.co_op, year) is None:
                missing[hh.co_op] += 1
    return missing


async def run_member_payments(
    settings: Settings,
    rules: Rules,
    store: Store,
    publisher: Publisher,
    year: int,
    *,
    now: datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> MemberPaymentsReport:
    now = now or datetime.now(UTC)
    check_year(settings, rules, year, now)
    missing = await missing_rates(store, rules, year)
    if missing:
        names = ", ".join(f"{c!r} ({n} households)" for c, n in sorted(missing.items()))
        first = sorted(missing)[0]
        raise MemberPaymentsError(
            f'no rates for {year} for co-op {names}: add [co_op_years."{first}".{year}] '
            f"with capital_interest_bp and surplus_refund_bp to {settings.rules}"
        )
    outbox = Outbox(store, publisher, member_payments_kind(Topics(settings)))
    report = MemberPaymentsReport(year)
    report.resent = await outbox.send_pending()
    # Records live as long as the year's purchase data (then the year is refused anyway).
    expire_at = int(
        days_after(Month(year, 12), 31 * settings.retention_months, rules.timezone).timestamp()
    )
    seen: set[str] = set()
    async for batch in store.household_id_batches(BATCH):
        ids = sorted(set(batch) - seen)
        seen.update(ids)
        planned: list[tuple[MemberPayment, str]] = []
        for household_id, facts in zip(ids, await store.year_facts(ids, year), strict=True):
            hh = facts.household
            if hh is None:  # erased since the scan saw it
                continue
            rates = rules.co_op_year(hh.co_op, year)
            if rates is None:  # a snapshot that moved to another co-op since the check
                raise MemberPaymentsError(
                    f"no rates for {year} for co-op {hh.co_op!r}: add "
                    f'[co_op_years."{hh.co_op}".{year}] to {settings.rules}'
                )
            report.households += 1
            payments = plan_member_payments(
                household_id=household_id,
                year=year,
                co_op=hh.co_op,
                rates=rates,
                ledger=ledger_from_fields(facts.ledger, hh.capital_required_cents),
                monthly_purchases_cents=facts.monthly_purchases_cents,
                business=hh.business,
                payout_account=hh.payout_account,
            )
            planned += [(p, facts.head_person_id) for p in payments]
        recorded = await store.record_member_payments(
            planned, now=int(time.time()), expire_at=expire_at
        )
        new_ids = [p.payment_id for (p, _), done in zip(planned, recorded, strict=True) if done]
        old = [p for (p, _), done in zip(planned, recorded, strict=True) if not done]
        report.recorded += len(new_ids)
        report.already_recorded += len(old)
        for (payment, _), done in zip(planned, recorded, strict=True):
            if done:
                _add(report, payment.co_op, payment.kind, payment.amount_cents)
        stored = await store.member_payment_records([p.payment_id for p in old])
        for payment, record in zip(old, stored, strict=True):
            amount = int(str(record["amount_cents"])) if record else payment.amount_cents
            report.changed_since_recorded += int(amount != payment.amount_cents)
            _add(report, payment.co_op, payment.kind, amount)
        report.sent += await outbox.send(new_ids)
        if progress:
            progress(report.households)
    return report


def _add(report: MemberPaymentsReport, co_op: str, kind: str, cents: int) -> None:
    entry = report.sums.setdefault((co_op, kind), [0, 0])
    entry[0] += 1
    entry[1] += cents


@dataclass(frozen=True, slots=True)
class TaxRow:
    payment_id: str
    household_id: str
    head_person_id: str
    amount_cents: int


async def tax_report_rows(
    settings: Settings, store: Store, year: int
) -> tuple[list[TaxRow], list[str]]:
    """The capital interest of ``year`` as emitted: rows of payments confirmed sent, and the
    ids still waiting on the outbox (not in the rows: run ``member-payments`` to send them)."""
    index = await store.member_payment_index(year)
    ids = sorted(i for i in index if i.endswith(f":{CAPITAL_INTEREST}"))
    outbox = Outbox(store, _NoPublisher(), member_payments_kind(Topics(settings)))
    waiting = await outbox.pending_among(ids)
    rows = []
    for payment_id, record in zip(ids, await store.member_payment_records(ids), strict=True):
        if payment_id in waiting or record is None:
            continue
        rows.append(
            TaxRow(
                payment_id=payment_id,
                household_id=str(record["household_id"]),
                head_person_id=index[payment_id],
                amount_cents=int(record["amount_cents"]),
            )
        )
    return rows, sorted(waiting)


class _NoPublisher:
    async def send(self, topic: str, key: bytes | None, value: bytes) -> None:
        raise RuntimeError("the tax report sends nothing")

    async def flush(self) -> None:
        return None


async def emitted_totals(
    settings: Settings, store: Store, year: int
) -> dict[tuple[str, str], tuple[int, int]]:
    """(co_op, kind) -> (payments, amount_cents) of the year's payments confirmed sent."""
    ids = sorted(await store.member_payment_index(year))
    outbox = Outbox(store, _NoPublisher(), member_payments_kind(Topics(settings)))
    totals: dict[tuple[str, str], tuple[int, int]] = {}
    for start in range(0, len(ids), 1000):
        chunk = ids[start : start + 1000]
        waiting = await outbox.pending_among(chunk)
        for payment_id, record in zip(
            chunk, await store.member_payment_records(chunk), strict=True
        ):
            if payment_id in waiting or record is None:
                continue
            name = (str(record["co_op"]), str(record["kind"]))
            count, cents = totals.get(name, (0, 0))
            totals[name] = (count + 1, cents + int(str(record["amount_cents"])))
    return totals
