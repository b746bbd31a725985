"""Month close (contract section 5): compute each household's bonus, record it, emit it.

Never twice: each payout is first recorded in Redis by ``record_payout.lua`` (which moves the
household-month ledger only if nobody else did since it was read, and only with the capital
split the household's ledger allows at that moment), then sent, then taken off the outbox
(``stream.bonus.outbox``, shared with the member payments). A crash between record and send
leaves it in the outbox, and the next close sends the same payout (same ``payout_id``, same
content) again: the bank side deduplicates by ``payout_id``, and no second payout for the same
difference is ever created. Senders claim entries (``sending:{payout_id}``), so a close that
starts while another is still sending does not send the same entries a second time.

The close lock is a redis-py ``Lock`` (``Store.month_lock``): extended after every batch of
households, released at the end only if it still holds our token (one atomic script). A close
whose lock expired and was taken over carries on without it (the ledger sequence and the send
claims keep the two apart) and leaves the other close's lock alone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from redis.asyncio.lock import Lock
from redis.exceptions import LockError

from models.bonus import bonus_for
from models.months import Month, days_after
from models.payout import plan_payout
from models.rules import Rules
from stream import metrics
from stream.bonus.outbox import Outbox, OutboxKind
from stream.errors import CloseError as CloseError  # noqa: PLC0414 (re-exported: its old home)
from stream.kafka.publisher import Publisher
from stream.kafka.topics import Topics
from stream.settings import Settings
from stream.store.keys import Keys
from stream.store.store import Store

log = logging.getLogger(__name__)
LOCK_SECONDS = 600


@dataclass
class CloseReport:
    month: str
    households: int = 0
    payouts: int = 0
    adjustments: int = 0
    unchanged: int = 0
    skipped_unknown_household: int = 0
    resent: int = 0
    total_cents: int = 0
    to_capital_cents: int = 0
    first_close: bool = True
    payout_ids: list[str] = field(default_factory=list)


async def close_month(
    settings: Settings,
    rules: Rules,
    store: Store,
    publisher: Publisher,
    month: Month,
    *,
    now: datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> CloseReport:
    now = now or datetime.now(UTC)
    if not month.has_ended(now, rules.timezone):
        raise CloseError(
            f"month {month} has not ended yet in {rules.timezone.key} "
            f"(it ends {month.ends_at(rules.timezone).isoformat()})"
        )
    topics = Topics(settings)
    lock = store.month_lock(str(month), seconds=LOCK_SECONDS)
    if not await lock.acquire():
        raise CloseError(
            f"another close of {month} is running (lock {store.keys.month_closing(str(month))})"
        )
    report = CloseReport(str(month))
    try:
        report.resent = await send_outbox(store, publisher, topics)
        report.first_close = not await store.month_closed(str(month))
        expire_at = int(
            days_after(month, 31 * settings.retention_months, rules.timezone).timestamp()
        )
        async for ids in store.month_household_batches(str(month), count=500):
            for household_id in ids:
                await _close_household(
                    store,
                    rules,
                    month,
                    household_id,
                    report,
                    expire_at=expire_at,
                )
            await _extend(lock, month)
            await _send_recorded(store, publisher, topics, report)
            if progress:
                progress(report.households)
        await store.mark_month_closed(str(month), now.isoformat())
    finally:
        await _release(lock, month)
    return report


async def _extend(lock: Lock, month: Month) -> None:
    """Give the lock its full time again, if it is still ours."""
    try:
        await lock.reacquire()
    except LockError:
        log.warning("the close lock of %s expired and was taken over; carrying on", month)


async def _release(lock: Lock, month: Month) -> None:
    """Release only our own lock (it may have expired and been taken over)."""
    try:
        await lock.release()
    except LockError:
        log.warning("the close lock of %s had expired before the close ended", month)


async def _close_household(
    store: Store,
    rules: Rules,
    month: Month,
    household_id: str,
    report: CloseReport,
    *,
    expire_at: int,
) -> None:
    report.households += 1
    for _attempt in range(5):
        state = await store.month_state(household_id, str(month))
        hh = state.household
        if hh is None:
            # No household snapshot yet: nobody to pay. A later close pays it as an adjustment.
            report.skipped_unknown_household += 1
            return
        figures = bonus_for(state.accumulator, rules, hh.co_op, business=hh.business)
        payout = plan_payout(
            household_id=household_id,
            month=str(month),
            co_op=hh.co_op,
            figures=figures,
            paid=state.paid,
            closed_before=not report.first_close,
            capital_remaining_cents=state.capital_remaining_cents,
            payout_account=hh.payout_account,
        )
        if payout is None:
            report.unchanged += 1
            return
        if await store.record_payout(payout, state.paid.seq, expire_at=expire_at):
            report.payouts += 1
            report.adjustments += int(payout.adjustment)
            report.total_cents += payout.total_cents
            report.to_capital_cents += payout.to_capital_cents
            report.payout_ids.append(payout.payout_id)
            return
    raise CloseError(
        f"household-month ledger (or the household's capital) kept moving under us: "
        f"{household_id} {month}"
    )


def payouts_kind(topics: Topics) -> OutboxKind:
    """The month close's outbox: ``payout:<id>`` records, ``outbox``, ``sending:<id>``."""
    return OutboxKind(
        keys=Keys.payout_outbox,
        topic=topics.payouts,
        on_sent=_count_payout,
    )


def _count_payout(payout: dict[str, Any]) -> None:
    kind = "adjustment" if payout["adjustment"] else "first"
    metrics.PAYOUTS.labels(kind=kind).inc()
    metrics.PAYOUT_CENTS.labels(destination="capital").inc(max(0, payout["to_capital_cents"]))
    metrics.PAYOUT_CENTS.labels(destination="account").inc(max(0, payout["to_account_cents"]))


async def send_outbox(store: Store, publisher: Publisher, topics: Topics) -> int:
    """Send every recorded payout not yet confirmed sent (left by a crash); returns count."""
    return await Outbox(store, publisher, payouts_kind(topics)).send_pending()


async def _send_recorded(
    store: Store, publisher: Publisher, topics: Topics, report: CloseReport
) -> None:
    ids, report.payout_ids = report.payout_ids, []
    await Outbox(store, publisher, payouts_kind(topics)).send(ids)
