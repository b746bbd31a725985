"""The analytics commands of ``loyalty``: migrate, segments build/export, retention run.

Wired like ``payouts_cli``: ``handlers.update(analytics_cli.add_commands(sub))`` in
``stream.cli``; the returned handler of a top-level command (``handler(args, settings) -> exit
code``) dispatches to its subcommand.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import getpass
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Callable
from datetime import date, datetime
from typing import IO, Any
from zoneinfo import ZoneInfo

from models.consent import CHANNELS
from models.errors import RulesError
from models.months import Month, retention_cutoff
from models.rules import load_rules
from stream.analytics.export import ExportResult, export_segment
from stream.analytics.pseudonym import household_key
from stream.analytics.retention import drop_old_partitions
from stream.analytics.rules_table import write_bonus_rules
from stream.analytics.segments import build_segments, segment_sizes
from stream.audit import AuditLog
from stream.cli.support import Handler
from stream.clickhouse.connect import connect
from stream.clickhouse.engine import ClickHouse
from stream.clickhouse.migrate import migrate
from stream.errors import LoyaltyError, map_exceptions
from stream.settings import MAX_RETENTION_MONTHS, Settings
from stream.store.store import Store

_CHDB_NOTE = (
    "With the embedded engine (LOYALTY_CLICKHOUSE_URL=chdb:///path) only one process can open "
    "the data directory: stop `loyalty worker` first. A ClickHouse server has no such limit."
)


def _out(stream: IO[str], text: str) -> None:
    stream.write(text + "\n")


def _timezone(settings: Settings) -> ZoneInfo:
    """The rules' time zone: bonus months and visit days are counted in it."""
    return load_rules(settings.rules).timezone


def _today(settings: Settings) -> date:
    return datetime.now(_timezone(settings)).date()


def _month_arg(text: str) -> date:
    try:
        return Month.parse(text).first_day
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _months_arg(highest: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if not 1 <= value <= highest:
            raise argparse.ArgumentTypeError(f"must be between 1 and {highest}")
        return value

    return parse


def _run(args: argparse.Namespace, settings: Settings, body: Callable[[ClickHouse], int]) -> int:
    """Connect, run ``body``, report our errors (ClickHouse, Redis, rules) as one line on stderr.

    With ``--debug`` they pass on, with their traceback.
    """
    try:
        with map_exceptions(settings), connect(settings.clickhouse_url) as client:
            return body(client)
    except (LoyaltyError, RulesError) as exc:
        if getattr(args, "debug", False):
            raise
        _out(sys.stderr, f"loyalty {args.command}: error: {exc}")  # as every command prints
        return 1


# -- handlers -----------------------------------------------------------------------------


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    def body(client: ClickHouse) -> int:
        applied = migrate(client)
        for name in applied:
            _out(sys.stdout, f"applied {name}")
        if not applied:
            _out(sys.stdout, "schema is up to date")
        written = write_bonus_rules(client, load_rules(settings.rules))
        _out(sys.stdout, f"bonus rules {'written' if written else 'unchanged'} ({settings.rules})")
        return 0

    return _run(args, settings, body)


def _product_data_banned_keys(settings: Settings) -> set[int]:
    """Pseudonymous keys of the households banning product-data marketing (from Redis)."""

    async def read() -> set[str]:
        store = Store.from_url(settings.redis_url, settings.redis_prefix)
        try:
            return await store.product_data_banned_households()
        finally:
            await store.close()

    key = settings.pseudonym_key.get_secret_value().encode()
    return {household_key(key, h) for h in asyncio.run(read())}


def cmd_segments_build(args: argparse.Namespace, settings: Settings) -> int:
    def body(client: ClickHouse) -> int:
        tz = _timezone(settings)
        as_of: date = args.as_of or Month.parse(f"{_today(settings):%Y-%m}").previous().first_day
        migrate(client)
        excluded = _product_data_banned_keys(settings)
        households = build_segments(client, as_of, args.months, tz=tz.key, excluded=excluded)
        _out(
            sys.stdout,
            f"built segments for {as_of:%Y-%m} over {args.months} month(s): "
            f"{households} households ({len(excluded)} left out: product_data_marketing ban)",
        )
        for code, count in segment_sizes(client, as_of).items():
            _out(sys.stdout, f"  {code:<32} {count}")
        return 0

    return _run(args, settings, body)


def write_export_csv(result: ExportResult, out: IO[str]) -> None:
    """``household_id,person_id``: one line per person who may be contacted."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["household_id", "person_id"])
    for row in result.rows:
        for person in row.person_ids:
            writer.writerow([row.household_id, person])


def _summary(result: ExportResult) -> list[str]:
    lines = [
        f"segment {result.segment} (build {result.build_month:%Y-%m}), channel "
        f"{result.channel}: {result.members} households in the segment, exported "
        f"{len(result.rows)} households / {result.persons} persons",
    ]
    for label, counts in (
        ("households", result.households_left_out),
        ("persons", result.persons_left_out),
    ):
        total = sum(counts.values())
        if total:
            detail = ", ".join(f"{reason} {n}" for reason, n in sorted(counts.items()))
            lines.append(f"left out: {total} {label} ({detail})")
        else:
            lines.append(f"left out: 0 {label}")
    return lines


async def _audit(settings: Settings, action: str, detail: str) -> None:
    """One audit/1 record of this command (client ``cli:<user>``); raises if not written."""
    audit = AuditLog.from_settings(settings)
    try:
        await audit.record(
            action=action,
            subject=None,
            client=f"cli:{getpass.getuser()}",
            outcome="ok",
            detail=detail,
        )
    finally:
        await audit.close()


def cmd_segments_export(args: argparse.Namespace, settings: Settings) -> int:
    def body(client: ClickHouse) -> int:
        async def export() -> ExportResult:
            store = Store.from_url(settings.redis_url, settings.redis_prefix)
            try:
                result = await export_segment(
                    client, store, settings, args.segment, args.channel, build_month=args.build
                )
            finally:
                await store.close()
            # contract section 10: recorded before the export leaves (AuditUnavailable: none)
            left_out = sum(result.households_left_out.values())
            await _audit(
                settings,
                "export",
                f"segment={result.segment} channel={result.channel} "
                f"build={result.build_month:%Y-%m} households={len(result.rows)} "
                f"left_out={left_out}",
            )
            return result

        result = asyncio.run(export())
        if args.output:
            with open(args.output, "w", encoding="utf-8", newline="") as f:
                write_export_csv(result, f)
        else:
            write_export_csv(result, sys.stdout)
        for line in _summary(result):
            _out(sys.stderr, line)
        return 0

    return _run(args, settings, body)


def cmd_retention_run(args: argparse.Namespace, settings: Settings) -> int:
    def body(client: ClickHouse) -> int:
        months: int = args.months or settings.retention_months
        longer = months > MAX_RETENTION_MONTHS and not settings.retention_allow_longer
        if longer and not args.dry_run:  # a dry run deletes nothing: any period may be listed
            _out(
                sys.stderr,
                f"error: --months {months} is over the register's {MAX_RETENTION_MONTHS} months: "
                "set LOYALTY_RETENTION_ALLOW_LONGER=true to keep data longer",
            )
            return 1
        today = _today(settings)
        migrate(client)
        if not args.dry_run:  # contract section 10: recorded before the deletion
            asyncio.run(_audit(settings, "retention", f"manual run, keeping {months} months"))
        dropped = drop_old_partitions(client, today, months, dry_run=args.dry_run)
        verb = "would drop" if args.dry_run else "dropped"
        cutoff = retention_cutoff(today, months)
        _out(
            sys.stdout,
            f"ClickHouse retention: keeping {months} months (from {cutoff:%Y-%m}); "
            f"{verb} {len(dropped)} partition(s)",
        )
        for p in dropped:
            _out(sys.stdout, f"  {verb} {p.table} {p.month:%Y-%m} ({p.rows} rows)")
        keep_from = Month(cutoff.year, cutoff.month)

        async def redis_retention() -> tuple[Counter[str], int]:
            store = Store.from_url(settings.redis_url, settings.redis_prefix)
            try:
                removed = await store.expire_months(keep_from, dry_run=args.dry_run)
                cutoff = time.time() - settings.hold_days * 86400
                return removed, await store.held_cards_count(older_than=cutoff)
            finally:
                await store.close()

        removed, held_past = asyncio.run(redis_retention())
        kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(removed.items())) or "nothing"
        _out(sys.stdout, f"Redis retention: {verb} keys of months before {keep_from}: {kinds}")
        _out(
            sys.stdout,
            f"Held swipes past {settings.hold_days} days: {held_past} card(s) "
            "(the worker's hold sweep sends them to dead letters as card_unknown)",
        )
        return 0

    return _run(args, settings, body)


# -- wiring -------------------------------------------------------------------------------


def _parser(
    subparsers: Any, name: str, handler: Handler | None, help_text: str, description: str
) -> argparse.ArgumentParser:
    # Raw, so that paragraphs survive; wrapped here, since raw text is not wrapped.
    paragraphs = [textwrap.fill(p, width=78) for p in description.split("\n\n")]
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name,
        help=help_text,
        description="\n\n".join(paragraphs),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    if handler is not None:
        parser.set_defaults(handler=handler)
    return parser


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    handler: Handler = args.handler
    return handler(args, settings)


def add_commands(subparsers: Any) -> dict[str, Handler]:
    """Register ``migrate``, ``segments build|export`` and ``retention run``.

    ``subparsers`` is what ``ArgumentParser.add_subparsers()`` returned. Returns top-level
    command -> handler; every leaf also sets ``handler`` in the parsed namespace.
    """
    _parser(
        subparsers,
        "migrate",
        cmd_migrate,
        "create or update the ClickHouse tables",
        "Apply the ClickHouse migrations (stream/clickhouse/migrations) not yet applied, recorded "
        "in schema_migrations. Safe to run again.\n\n" + _CHDB_NOTE,
    )

    segments = _parser(
        subparsers,
        "segments",
        None,
        "build household segments, export one for marketing",
        "Household segments from purchase_lines (pseudonymous keys only), and their export "
        "to a marketing channel with the register's consents applied.\n\n" + _CHDB_NOTE,
    )
    seg_sub = segments.add_subparsers(dest="segments_command", metavar="COMMAND", required=True)
    build = _parser(
        seg_sub,
        "build",
        cmd_segments_build,
        "rebuild household_segments for one month",
        "Rebuild the segments of the build month AS_OF over the MONTHS bonus months ending "
        "with it (the month's previous build is replaced).\n\n"
        "Codes: spend:low|medium|high|top (under 100 / 300 / 600 € a month, and above), "
        "visits:occasional|regular|frequent (under 2 / 8 shopping days a month, and more), "
        "lapsed (no purchase in the last 60 days), fuel, affinity:<product group> (the top "
        "non-fuel group has >= 25 % of the spend), campaign_responder (>= 20 % of the spend "
        "in campaigns).",
    )
    build.add_argument(
        "--months",
        type=_months_arg(255),
        default=3,
        metavar="N",
        help="length of the window in bonus months (default 3)",
    )
    build.add_argument(
        "--as-of",
        type=_month_arg,
        default=None,
        metavar="YYYY-MM",
        help="the build month (default: the last complete month in the rules' time zone)",
    )
    export = _parser(
        seg_sub,
        "export",
        cmd_segments_export,
        "export one segment's contactable households as CSV",
        "Write household_id,person_id of the households in SEGMENT (newest build) whose "
        "persons may be contacted on the channel; a summary of who was left out and why goes "
        "to stderr.\n\n"
        "Always left out: households with a person banning product_data_marketing (every "
        "segment is built from product-level data), ended households, and households the "
        "register no longer knows. email needs email_marketing and no email ban; sms needs "
        "sms_marketing; mail, phone, survey and owner_mail need no direct_mail, phone_marketing, "
        "surveys or owner_mail ban respectively.",
    )
    export.add_argument("segment", metavar="SEGMENT", help="a segment code, e.g. spend:high")
    export.add_argument("--channel", required=True, choices=CHANNELS, help="marketing channel")
    export.add_argument(
        "--output", "-o", metavar="FILE", default=None, help="write the CSV here (default stdout)"
    )
    export.add_argument(
        "--build",
        type=_month_arg,
        default=None,
        metavar="YYYY-MM",
        help="export from this build month (default: the newest build)",
    )

    retention = _parser(
        subparsers,
        "retention",
        None,
        "drop purchase data and per-month state older than the retention period",
        "Retention of purchase data (ClickHouse) and per-month state (Redis).\n\n" + _CHDB_NOTE,
    )
    ret_sub = retention.add_subparsers(dest="retention_command", metavar="COMMAND", required=True)
    run = _parser(
        ret_sub,
        "run",
        cmd_retention_run,
        "drop the months older than the retention period",
        "Drop the monthly partitions of purchase_lines and household_segments older than "
        "LOYALTY_RETENTION_MONTHS (the current month, in the rules' time zone, counts as "
        "one), and the Redis accumulators, seen event ids, payout records and month markers "
        "of those months; print what goes. Swipes held past LOYALTY_HOLD_DAYS are counted: "
        "the worker dead-letters them.\n\n" + _CHDB_NOTE,
    )
    run.add_argument("--dry-run", action="store_true", help="only print what would be dropped")
    run.add_argument(
        "--months",
        type=_months_arg(1200),
        default=None,
        metavar="N",
        help="keep this many months instead of LOYALTY_RETENTION_MONTHS",
    )
    return {"migrate": cmd_migrate, "segments": _dispatch, "retention": _dispatch}
