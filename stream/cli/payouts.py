"""``loyalty close-month`` and ``loyalty explain``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from models.bonus import bonus_for, explain
from models.money import format_cents
from models.months import Month
from stream.bonus.close import close_month
from stream.cli.support import Handler, load_rules_or_exit
from stream.errors import CloseError
from stream.kafka.publisher import KafkaPublisher
from stream.settings import Settings
from stream.store.store import Store


def add_commands(sub: Any) -> dict[str, Handler]:
    close = sub.add_parser(
        "close-month",
        help="close a bonus month: emit payout/1 events (adjustments on a repeat close)",
        description=(
            "Compute every household's bonus for MONTH and emit payouts to the payouts topic. "
            "Closing again emits only adjustments for households whose total changed; a month "
            "that has not ended in the rules' time zone cannot be closed."
        ),
    )
    close.add_argument("month", metavar="YYYY-MM", help="the bonus month to close")
    explain_p = sub.add_parser(
        "explain",
        help="print how a household's bonus for a month is computed",
        description="Print the tier, the amounts in each bucket, the arithmetic and the payouts.",
    )
    explain_p.add_argument("household_id", metavar="HOUSEHOLD")
    explain_p.add_argument("month", metavar="YYYY-MM")
    return {"close-month": cmd_close_month, "explain": cmd_explain}


def _month(text: str) -> Month:
    try:
        return Month.parse(text)
    except ValueError as exc:
        raise SystemExit(str(exc)) from None


def cmd_close_month(args: argparse.Namespace, settings: Settings) -> int:
    rules = load_rules_or_exit(settings)
    month = _month(args.month)

    async def run() -> int:
        store = Store.from_url(settings.redis_url, settings.redis_prefix)
        try:
            async with KafkaPublisher(settings.kafka_url) as publisher:
                report = await close_month(
                    settings,
                    rules,
                    store,
                    publisher,
                    month,
                    progress=lambda n: print(f"  {n} households done", file=sys.stderr),
                )
        except CloseError as exc:
            print(f"cannot close {month}: {exc}", file=sys.stderr)
            return 1
        finally:
            await store.close()
        kind = "first close" if report.first_close else "repeat close (adjustments only)"
        print(
            f"closed {month} ({kind}): {report.households} households, {report.payouts} payouts "
            f"({report.adjustments} adjustments), {report.unchanged} unchanged, "
            f"{report.skipped_unknown_household} without a household record, "
            f"{report.resent} re-sent from the outbox; total {format_cents(report.total_cents)}, "
            f"to capital {format_cents(report.to_capital_cents)}"
        )
        return 0

    return asyncio.run(run())


def cmd_explain(args: argparse.Namespace, settings: Settings) -> int:
    rules = load_rules_or_exit(settings)
    month = _month(args.month)

    async def run() -> int:
        store = Store.from_url(settings.redis_url, settings.redis_prefix)
        try:
            state = await store.month_state(args.household_id, str(month))
            payouts = await store.payouts_of(args.household_id, str(month), state.paid.seq)
        finally:
            await store.close()
        hh = state.household
        if hh is None and not state.accumulator.swipes:
            print(f"no household {args.household_id!r}", file=sys.stderr)
            return 1
        co_op = hh.co_op if hh else ""
        business = bool(hh and hh.business)
        print(
            f"household {args.household_id}, month {month}, {'closed' if state.closed else 'open'}"
        )
        for line in explain(state.accumulator, rules, co_op, business=business):
            print(f"  {line}")
        figures = bonus_for(state.accumulator, rules, co_op, business=business)
        print(f"  paid so far {format_cents(state.paid.total_cents)} in {len(payouts)} payout(s)")
        for payout in payouts:
            print(
                f"    {payout['payout_id']}: total {payout['total_cents']} c "
                f"(capital {payout['to_capital_cents']}, account {payout['to_account_cents']})"
                f"{' adjustment' if payout['adjustment'] else ''}"
            )
        if state.closed and figures.total_cents != state.paid.total_cents:
            print(
                f"  pending adjustment {figures.total_cents - state.paid.total_cents} c "
                "at the next close"
            )
        print(f"  member capital still to pay {format_cents(state.capital_remaining_cents)}")
        return 0

    return asyncio.run(run())
