"""``loyalty simulate``: a candidate rules file's Bonus against the current one, emitting nothing.

Exact from the accumulators already in Redis when only what they can answer changed (tier
tables, co-op tables, ``payment_benefit_bp``); when a classifying rule changed (excluded
groups or methods, fuel groups, benefit methods or groups, campaigns), both sides are
recomputed from the purchase lines in ClickHouse instead (``models.simulate.LINE_RULES``),
and the result says so. Nothing is written anywhere.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from models.bonus import Accumulator
from models.months import Month
from models.rules import Rules
from models.simulate import (
    HouseholdMonth,
    Simulation,
    changed_rules,
    needs_lines,
    simulate,
)
from stream.errors import LoyaltyError
from stream.settings import Settings
from stream.store.store import Store

BATCH = 1000


class SimulateError(LoyaltyError):
    """The simulation cannot answer this (bad month range, a change no data can answer)."""


@dataclass
class SimulateRun:
    simulation: Simulation
    months: list[Month]
    co_op: str | None
    source: str  # "accumulators" | "clickhouse"
    changed: list[str]
    notes: list[str] = field(default_factory=list)
    without_household: int = 0  # household-months left out: no household record to price


def parse_months(text: str) -> list[Month]:
    """``2026-01..2026-10`` (inclusive) or one ``2026-03``."""
    first, sep, last = text.partition("..")
    try:
        start = Month.parse(first.strip())
        end = Month.parse(last.strip()) if sep else start
    except ValueError as exc:
        raise SimulateError(f"--months {text!r}: {exc} (expected YYYY-MM..YYYY-MM)") from None
    if end < start:
        raise SimulateError(f"--months {text!r}: {end} is before {start}")
    months = [start]
    while months[-1] < end:
        months.append(months[-1].next())
    if len(months) > 120:
        raise SimulateError(f"--months {text!r}: at most 120 months at once")
    return months


async def accumulator_items(
    store: Store, months: list[Month], co_op: str | None, run: SimulateRun
) -> AsyncIterator[HouseholdMonth]:
    """Every household-month of ``months`` with its accumulator (of ``co_op`` only, if set)."""
    known: dict[str, tuple[str, bool] | None] = {}
    for month in months:
        async for ids in store.month_household_batches(str(month), BATCH):
            unknown = [i for i in ids if i not in known]
            for household_id, hh in zip(unknown, await store.households(unknown), strict=True):
                known[household_id] = (hh.co_op, hh.business) if hh else None
            accumulators = await store.accumulators(ids, str(month))
            for household_id, acc in zip(ids, accumulators, strict=True):
                facts = known[household_id]
                if facts is None:
                    run.without_household += 1
                    continue
                if co_op is not None and facts[0] != co_op:
                    continue
                yield HouseholdMonth(household_id, str(month), facts[0], facts[1], acc)


async def clickhouse_items(
    settings: Settings,
    store: Store,
    *,
    months: list[Month],
    co_op: str | None,
    current: Rules,
    candidate: Rules,
    run: SimulateRun,
) -> list[HouseholdMonth]:
    """Household-months rebuilt from the purchase lines, under each rules file separately.

    ClickHouse holds only a keyed pseudonym of the household; its business status comes from
    the household records in Redis, matched by the same pseudonym."""
    from models.simulate import accumulate_line  # noqa: PLC0415
    from stream.analytics.pseudonym import household_key  # noqa: PLC0415
    from stream.clickhouse.connect import connect  # noqa: PLC0415

    key = settings.pseudonym_key.get_secret_value().encode()
    business: dict[int, bool] = {}
    async for ids in store.household_id_batches(BATCH):
        for hh in await store.households(ids):
            if hh is not None:
                business[household_key(key, hh.household_id)] = hh.business
    sql = """
        SELECT household_key, month, co_op, payment_method, product_group, store_id,
               occurred_at, sum(amount_cents), sum(fuel_ml)
        FROM purchase_lines FINAL
        WHERE month >= {first:Date} AND month <= {last:Date}
        GROUP BY household_key, month, co_op, payment_method, product_group, store_id,
                 occurred_at
    """

    def query() -> list[tuple[object, ...]]:
        with connect(settings.clickhouse_url) as client:
            return client.query(sql, {"first": months[0].first_day, "last": months[-1].first_day})

    rows = await asyncio.to_thread(query)
    pairs: dict[tuple[int, str, str], tuple[Accumulator, Accumulator]] = {}
    for hkey, month, row_co_op, method, group, store_id, occurred, amount, fuel in rows:
        if co_op is not None and row_co_op != co_op:
            continue
        name = (int(str(hkey)), str(month)[:7], str(row_co_op))
        now_acc, then_acc = pairs.setdefault(name, (Accumulator(), Accumulator()))
        instant = (
            occurred if isinstance(occurred, datetime) else datetime.fromisoformat(str(occurred))
        )
        if instant.tzinfo is None:
            instant = instant.replace(tzinfo=UTC)
        for acc, rules in ((now_acc, current), (then_acc, candidate)):
            accumulate_line(
                acc,
                rules,
                payment_method=str(method),
                product_group=str(group),
                store_id=str(store_id),
                occurred_at=instant,
                amount_cents=int(str(amount)),
                fuel_ml=int(str(fuel)),
            )
    items = []
    for (hkey, month, row_co_op), (now_acc, then_acc) in sorted(pairs.items()):
        if hkey not in business:
            run.without_household += 1
            continue
        items.append(
            HouseholdMonth(f"#{hkey:016x}", month, row_co_op, business[hkey], now_acc, then_acc)
        )
    return items


async def run_simulation(
    settings: Settings,
    store: Store,
    current: Rules,
    candidate: Rules,
    months: list[Month],
    *,
    co_op: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> SimulateRun:
    changed = changed_rules(current, candidate)
    if "timezone" in changed:
        raise SimulateError(
            "the candidate changes timezone: bonus months would be cut differently, which "
            "neither the accumulators nor the purchase lines' months answer; simulate with "
            f"timezone = {current.timezone.key!r}"
        )
    lines = needs_lines(current, candidate)
    run = SimulateRun(Simulation(), months, co_op, "accumulators", changed)
    if not lines:
        count = 0
        async for item in accumulator_items(store, months, co_op, run):
            run.simulation.add(item, current, candidate)
            count += 1
            if progress and count % 100_000 == 0:
                progress(count)
        run.notes.append(
            "exact from the accumulators in Redis: they answer changes of the tier tables, "
            "of the table a co-op uses and of payment_benefit_bp"
        )
    else:
        run.source = "clickhouse"
        run.notes.append(
            f"the candidate changes {', '.join(lines)}: the accumulators summed lines as the "
            "current rules classify them and cannot answer that, so both sides are recomputed "
            "from the purchase lines in ClickHouse (LOYALTY_CLICKHOUSE_URL); lines not yet in "
            "ClickHouse, or past its retention, are not counted"
        )
        items = await clickhouse_items(
            settings,
            store,
            months=months,
            co_op=co_op,
            current=current,
            candidate=candidate,
            run=run,
        )
        run.simulation = simulate(items, current, candidate)
    if run.simulation.total.household_months == 0:
        which = f" of co-op {co_op!r}" if co_op else ""
        run.notes.append(
            f"no household-months{which} in {months[0]}..{months[-1]}: nothing to price"
        )
    if run.without_household:
        run.notes.append(
            f"{run.without_household} household-months without a household record are left out "
            "(no co-op to price them by)"
        )
    return run
