"""``loyalty report --month YYYY-MM --html FILE``: the business figures of a month as one page."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from models.months import Month
from stream.cli.support import Handler, load_rules_or_exit
from stream.settings import Settings


def _month(text: str) -> Month:
    try:
        return Month.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--month must be YYYY-MM: {exc}") from None


def add_commands(sub: Any) -> dict[str, Handler]:
    report = sub.add_parser(
        "report",
        help="write a month's business figures as one self-contained HTML page",
        description=(
            "The business dashboard's main figures for one bonus month (sales and Bonus "
            "purchases, the sales of each day and of the last twelve months, the estimated Bonus "
            "by tier, product groups, the largest stores, campaigns, fuel, segments) as one HTML "
            "file with its charts inside: it opens offline and can be mailed as it is. Reads "
            "ClickHouse (LOYALTY_CLICKHOUSE_URL); with the embedded chdb, stop the worker first."
        ),
    )
    report.add_argument("--month", required=True, type=_month, metavar="YYYY-MM")
    report.add_argument("--html", required=True, type=Path, metavar="FILE", help="page to write")
    report.add_argument(
        "--stores", type=int, default=10, metavar="N", help="how many stores to list (default 10)"
    )
    return {"report": cmd_report}


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    from stream.clickhouse.connect import connect
    from stream.clickhouse.migrate import migrate
    from stream.reporting.html import format_cents, write_page
    from stream.reporting.monthly import month_report, report_page

    rules = load_rules_or_exit(settings)
    with connect(settings.clickhouse_url) as client:
        migrate(client)  # a fresh database reports zeros instead of failing
        report = month_report(
            client, args.month, timezone=rules.timezone.key, top_stores=max(1, args.stores)
        )
    path = write_page(report_page(report), args.html)
    print(
        f"wrote {path}: {args.month}, sales {format_cents(report.sales_cents)}, "
        f"{report.households} households, estimated Bonus {format_cents(report.bonus_total_cents)}"
    )
    return 0
