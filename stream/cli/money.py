"""``loyalty member-payments``, ``loyalty tax-report`` (contract section 11)."""

from __future__ import annotations

import argparse
import asyncio
import csv
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from models.member_payment import KINDS
from models.money import format_cents
from stream.bonus.member_payments import (
    MemberPaymentsError,
    emitted_totals,
    run_member_payments,
    tax_report_rows,
)
from stream.cli.support import Handler, load_rules_or_exit
from stream.kafka.publisher import KafkaPublisher
from stream.settings import Settings
from stream.store.store import Store


def add_commands(sub: Any) -> dict[str, Handler]:
    payments = sub.add_parser(
        "member-payments",
        help="pay a year's interest on member capital and surplus refund (member-payment/1)",
        description=(
            "Compute each household's capital interest and surplus refund for YEAR from the "
            'rules\' [co_op_years."CO-OP".YEAR] and emit member-payment/1 events on the '
            "member-payments topic, never twice per payment_id however often it runs. "
            "Refused before the year has ended in the rules' time zone, and when a "
            "household's co-op has no rates for the year."
        ),
    )
    payments.add_argument("year", type=int, metavar="YEAR")
    tax = sub.add_parser(
        "tax-report",
        help="write the capital interest paid for a year as CSV, for the tax authority",
        description=(
            "One row per capital interest payment emitted for YEAR: "
            "payment_id,household_id,head_person_id,amount_cents. Built from the payments "
            "recorded and confirmed sent, so it always agrees with the topic."
        ),
    )
    tax.add_argument("year", type=int, metavar="YEAR")
    tax.add_argument("--out", required=True, type=Path, metavar="FILE", help="CSV file to write")
    return {
        "member-payments": cmd_member_payments,
        "tax-report": cmd_tax_report,
        **add_simulate(sub),
        **add_partner_settlement(sub),
    }


def _every(step: int, what: str) -> Callable[[int], None]:
    """A progress callback printing ``N what`` each time N passes another ``step``."""
    shown = [0]

    def progress(n: int) -> None:
        if n - shown[0] >= step or shown[0] == 0:
            shown[0] = n
            print(f"  {n} {what}", flush=True)

    return progress


def cmd_member_payments(args: argparse.Namespace, settings: Settings) -> int:
    rules = load_rules_or_exit(settings)

    async def run() -> int:
        store = Store.from_url(settings.redis_url, settings.redis_prefix)
        try:
            async with KafkaPublisher(settings.kafka_url) as publisher:
                report = await run_member_payments(
                    settings,
                    rules,
                    store,
                    publisher,
                    args.year,
                    progress=_every(10_000, "households done"),
                )
        except MemberPaymentsError as exc:
            print(f"cannot make the member payments of {args.year}: {exc}", file=sys.stderr)
            return 1
        finally:
            await store.close()
        print(
            f"member payments {report.year}: {report.households} households, "
            f"{report.recorded} payments recorded and sent now, {report.already_recorded} "
            f"recorded by an earlier run (left as they were; {report.changed_since_recorded} "
            f"would differ now), {report.resent} re-sent from the outbox"
        )
        print(f"  {'co-op':<24} {'kind':<18} {'payments':>9} {'amount':>16}")
        for (co_op, kind), (count, cents) in sorted(
            report.sums.items(), key=lambda item: (item[0][0], KINDS.index(item[0][1]))
        ):
            print(f"  {co_op:<24} {kind:<18} {count:>9} {format_cents(cents):>16}")
        for kind in KINDS:
            total = sum(c for (_, k), (_, c) in report.sums.items() if k == kind)
            print(f"  {'all':<24} {kind:<18} {'':>9} {format_cents(total):>16}")
        await _dashboard_totals(settings, args.year)
        return 0

    return asyncio.run(run())


async def _dashboard_totals(settings: Settings, year: int) -> None:
    """The year's emitted totals into ClickHouse (business dashboard); a failure is reported,
    not fatal: the payments are made, and running the command again rewrites the totals."""
    from stream.analytics.money import write_member_payment_totals
    from stream.clickhouse.connect import connect
    from stream.clickhouse.migrate import migrate

    store = Store.from_url(settings.redis_url, settings.redis_prefix)
    try:
        totals = await emitted_totals(settings, store, year)
    finally:
        await store.close()

    def write() -> int:
        with connect(settings.clickhouse_url) as client:
            migrate(client)
            return write_member_payment_totals(client, year, totals)

    try:
        rows = await asyncio.to_thread(write)
    except Exception as exc:
        print(
            f"  dashboard totals not written to ClickHouse ({type(exc).__name__}: {exc}); "
            "check LOYALTY_CLICKHOUSE_URL and run the command again (it pays nothing twice)",
            file=sys.stderr,
        )
        return
    print(f"  dashboard: {rows} rows of member payment totals written to ClickHouse")


def cmd_tax_report(args: argparse.Namespace, settings: Settings) -> int:
    async def run() -> int:
        store = Store.from_url(settings.redis_url, settings.redis_prefix)
        try:
            rows, waiting = await tax_report_rows(settings, store, args.year)
        finally:
            await store.close()
        with args.out.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(["payment_id", "household_id", "head_person_id", "amount_cents"])
            for row in rows:
                writer.writerow(
                    [row.payment_id, row.household_id, row.head_person_id, row.amount_cents]
                )
        total = sum(r.amount_cents for r in rows)
        print(
            f"tax report {args.year}: {len(rows)} capital interest payments, "
            f"{format_cents(total)}, written to {args.out}"
        )
        if waiting:
            print(
                f"  {len(waiting)} recorded payments not yet confirmed sent are left out: run "
                f"`loyalty member-payments {args.year}` to send them, then this report again",
                file=sys.stderr,
            )
            return 1
        return 0

    return asyncio.run(run())


# -- loyalty simulate ---------------------------------------------------------------------


def add_simulate(sub: Any) -> dict[str, Handler]:
    sim = sub.add_parser(
        "simulate",
        help="what a candidate rules file would cost: Bonus difference per co-op and tier band",
        description=(
            "Compute, from the accumulators already held, what every household would have "
            "earned in MONTHS under the candidate rules, and print the difference against the "
            "current rules (LOYALTY_RULES) per co-op, per tier band and in total, exact to the "
            "cent. Emits nothing. A change the accumulators cannot answer (excluded groups or "
            "methods, fuel groups, benefit methods, campaigns) is recomputed from the purchase "
            "lines in ClickHouse, and the output says so."
        ),
    )
    sim.add_argument("--rules", required=True, type=Path, metavar="CANDIDATE.toml")
    sim.add_argument("--months", required=True, metavar="YYYY-MM..YYYY-MM")
    sim.add_argument("--co-op", default=None, metavar="CO-OP", help="only this co-op")
    sim.add_argument("--html", type=Path, default=None, metavar="FILE", help="also write a page")
    return {"simulate": cmd_simulate}


def cmd_simulate(args: argparse.Namespace, settings: Settings) -> int:
    from models.errors import RulesError
    from models.rules import load_rules
    from stream.bonus.simulate import SimulateError, parse_months, run_simulation

    current = load_rules_or_exit(settings)
    try:
        candidate = load_rules(args.rules)
        months = parse_months(args.months)
    except (RulesError, SimulateError) as exc:
        print(f"cannot simulate: {exc}", file=sys.stderr)
        return 1

    async def run() -> int:
        store = Store.from_url(settings.redis_url, settings.redis_prefix)
        try:
            result = await run_simulation(
                settings,
                store,
                current,
                candidate,
                months,
                co_op=args.co_op,
                progress=lambda n: print(f"  {n} household-months priced", flush=True),
            )
        except SimulateError as exc:
            print(f"cannot simulate: {exc}", file=sys.stderr)
            return 1
        finally:
            await store.close()
        for line in simulation_text(result, current, args.rules, settings.rules):
            print(line)
        if args.html:
            from stream.cli.simulate_html import write_simulation_page

            write_simulation_page(result, current, args.html, candidate_path=args.rules)
            print(f"page written to {args.html}")
        return 0

    return asyncio.run(run())


def simulation_text(
    result: Any, current: Any, candidate_path: Path, current_path: Path
) -> list[str]:
    sim = result.simulation
    months = f"{result.months[0]}..{result.months[-1]}"
    out = [
        f"simulate {months}{f' co-op {result.co_op}' if result.co_op else ''}: "
        f"candidate {candidate_path} against {current_path} (from {result.source})",
        f"changed rules: {', '.join(result.changed) or 'none'}",
    ]
    out += [f"note: {n}" for n in result.notes]
    head = (
        f"  {'tier band (current)':<28} {'h-months':>9} {'up':>6} {'down':>6} "
        f"{'current':>15} {'candidate':>15} {'difference':>15}"
    )

    def row(label: str, s: Any) -> str:
        return (
            f"  {label:<28} {s.household_months:>9} {s.moved_up:>6} {s.moved_down:>6} "
            f"{format_cents(s.current_cents):>15} {format_cents(s.candidate_cents):>15} "
            f"{format_cents(s.difference_cents):>15}"
        )

    for co_op in sorted(sim.by_co_op):
        out.append(f"co-op {co_op}:")
        out.append(head)
        out += [row(label, sums) for label, sums in sim.bands(co_op, current)]
        out.append(row("all bands", sim.by_co_op[co_op]))
    t = sim.total
    out.append(
        f"total: {sim.households} households, {t.household_months} household-months; "
        f"current {format_cents(t.current_cents)}, candidate {format_cents(t.candidate_cents)}, "
        f"difference {format_cents(t.difference_cents)}"
    )
    out.append(
        f"households moving tier: {len(sim.moved_households)} (household-months up "
        f"{t.moved_up}, down {t.moved_down}); households whose Bonus changes: {len(sim.changed)}"
    )
    return out


# -- loyalty partner-settlement -----------------------------------------------------------


def add_partner_settlement(sub: Any) -> dict[str, Handler]:
    settle = sub.add_parser(
        "partner-settlement",
        help="print what each Bonus partner is invoiced for a closed month",
        description=(
            'Per partner of the rules ([partners."ID"]): the households that bought there, '
            "their eligible non-fuel purchases there and the Bonus earned on them, "
            "round(tier_bp x amount / 10000) per household with its final tier. Closed "
            "months only. The totals are also written to ClickHouse for the dashboard."
        ),
    )
    settle.add_argument("month", metavar="YYYY-MM")
    settle.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return {"partner-settlement": cmd_partner_settlement}


def cmd_partner_settlement(args: argparse.Namespace, settings: Settings) -> int:
    import orjson

    from models.months import Month
    from stream.bonus.partners import PartnerSettlementError, partner_settlement

    rules = load_rules_or_exit(settings)
    try:
        month = Month.parse(args.month)
    except ValueError as exc:
        print(f"cannot settle: {exc}", file=sys.stderr)
        return 1

    async def run() -> int:
        store = Store.from_url(settings.redis_url, settings.redis_prefix)
        try:
            totals, skipped = await partner_settlement(rules, store, month)
        except PartnerSettlementError as exc:
            print(f"cannot settle {month}: {exc}", file=sys.stderr)
            return 1
        finally:
            await store.close()
        if args.json:
            document = {"month": str(month), "partners": [t.to_json() for t in totals]}
            sys.stdout.write(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n")
        else:
            print(f"partner settlement {month} (closed month; final tiers)")
            print(
                f"  {'partner':<16} {'name':<24} {'households':>10} {'purchases':>16} {'bonus':>14}"
            )
            for t in totals:
                print(
                    f"  {t.partner_id:<16} {t.name:<24} {t.households:>10} "
                    f"{format_cents(t.partner_amount_cents):>16} {format_cents(t.bonus_cents):>14}"
                )
            print(f"  total bonus invoiced {format_cents(sum(t.bonus_cents for t in totals))}")
        if skipped:
            print(
                f"  {skipped} household-months with partner purchases but no household record "
                "are left out",
                file=sys.stderr,
            )
        await asyncio.to_thread(_write_partner_bonus, settings, month, totals)
        return 0

    return asyncio.run(run())


def _write_partner_bonus(settings: Settings, month: Any, totals: list[Any]) -> None:
    from stream.analytics.money import PartnerBonusRow, write_partner_bonus
    from stream.clickhouse.connect import connect
    from stream.clickhouse.migrate import migrate

    rows = [
        PartnerBonusRow(t.partner_id, t.name, t.households, t.partner_amount_cents, t.bonus_cents)
        for t in totals
    ]
    try:
        with connect(settings.clickhouse_url) as client:
            migrate(client)
            write_partner_bonus(client, month.first_day, rows)
    except Exception as exc:
        print(
            f"  dashboard rows not written to ClickHouse ({type(exc).__name__}: {exc}); "
            "check LOYALTY_CLICKHOUSE_URL and run the command again",
            file=sys.stderr,
        )
