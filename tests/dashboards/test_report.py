"""``loyalty report``: the business dashboard's figures of a month as one self-contained page.

Run on the dashboards' demo data (``conftest.py``) on both engines: on the 18.16 server through
the real command in a subprocess, on chdb (which one process opens at a time) through the
functions the command calls. The expected figures are computed here independently: from the
demo rows in Python, and the Bonus with ``models.bonus`` on the same swipes.
"""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from models.months import Month
from models.rules import load_rules
from stream.clickhouse.engine import ClickHouse
from stream.reporting.html import format_cents, format_int, format_ml_as_litres, write_page
from stream.reporting.monthly import month_report, report_page
from stream.settings import DEFAULT_RULES
from tests.dashboards.demo_data import DemoData
from tests.stream.reporting.test_html import external_references

REPO = Path(__file__).resolve().parents[2]
MONTH = "2026-11"  # the running month of the demo data, with the double-week-47 campaign


def _page(client: ClickHouse, path: Path) -> str:
    """The page, made the way the command makes it (through the command on the server)."""
    if client.engine == "chdb":
        rules = load_rules(DEFAULT_RULES)
        report = month_report(client, Month.parse(MONTH), timezone=rules.timezone.key)
        write_page(report_page(report), path)
    else:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOYALTY_")}
        result = subprocess.run(
            [sys.executable, "-m", "stream.cli", "report", "--month", MONTH, "--html", str(path)],
            check=False,
            capture_output=True,
            text=True,
            timeout=120,
            env={**env, "LOYALTY_CLICKHOUSE_URL": client.url},
            cwd=REPO,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        assert result.stdout.startswith(f"wrote {path}: {MONTH}, sales "), result.stdout
    return path.read_text(encoding="utf-8")


def _figure(page: str, label: str) -> str:
    m = re.search(
        rf'<div class="label">{re.escape(label)}</div>\s*<div class="value">([^<]*)</div>', page
    )
    assert m, f"no figure {label!r} on the page"
    return html.unescape(m.group(1))


def _row(page: str, first_cell: str) -> list[str]:
    m = re.search(rf"<tr><td>{re.escape(first_cell)}</td>(.*?)</tr>", page)
    assert m, f"no table row for {first_cell!r}"
    return [html.unescape(c) for c in re.findall(r"<td>([^<]*)</td>", m.group(1))]


def test_the_report_shows_the_months_figures_in_one_self_contained_page(
    dashboard_clickhouse: ClickHouse, demo: DemoData, tmp_path: Path
) -> None:
    page = _page(dashboard_clickhouse, tmp_path / "report.html")

    rows = [r for r in demo.rows if str(r["month"]).startswith(MONTH)]
    assert rows and demo.redelivered
    purchases = [r for r in rows if r["kind"] == "purchase"]
    receipts = len({r["event_id"] for r in purchases})
    assert _figure(page, "Sales") == format_cents(sum(r["amount_cents"] for r in rows))
    assert _figure(page, "Bonus purchases") == format_cents(
        sum(r["amount_cents"] for r in rows if r["bonus_eligible"])
    )
    assert _figure(page, "Returns") == format_cents(
        -sum(r["amount_cents"] for r in rows if r["kind"] == "return")
    )
    assert _figure(page, "Receipts") == format_int(receipts)
    assert _figure(page, "Households") == format_int(len({r["household_key"] for r in rows}))
    basket = sum(r["amount_cents"] for r in purchases)
    assert _figure(page, "Average basket") == format_cents(
        (2 * basket + receipts) // (2 * receipts)
    )

    # the Bonus: what models.bonus computes for the month under the default rules
    exact = demo.exact_bonus(MONTH, load_rules(DEFAULT_RULES))
    assert _figure(page, "Estimated Bonus") == format_cents(
        sum(f.total_cents for f in exact.values())
    )
    assert _figure(page, "Households paid") == format_int(
        sum(1 for f in exact.values() if f.total_cents > 0)
    )
    assert _figure(page, "Fuel Bonus") == format_cents(
        sum(f.fuel_bonus_cents for f in exact.values())
    )
    by_tier: dict[int, int] = defaultdict(int)
    for figures in exact.values():
        by_tier[figures.tier_bp] += figures.total_cents
    for bp, total in by_tier.items():
        if bp:
            cells = _row(page, f"{bp // 100}.{bp % 100:02d} %")
            assert cells[-1] == format_cents(total), (bp, cells)

    # product groups, the largest store, the campaign, fuel
    groups: dict[str, int] = defaultdict(int)
    stores: dict[str, int] = defaultdict(int)
    for r in rows:
        groups[r["product_group"]] += r["amount_cents"]
        stores[r["store_id"]] += r["amount_cents"]
    for group, cents in groups.items():
        assert _row(page, group)[0] == format_cents(cents), group
    top = max(stores, key=lambda s: (stores[s], s))
    assert _row(page, top)[0] == format_cents(stores[top])
    campaign = [r for r in rows if r["campaign_id"] == "double-week-47"]
    assert campaign, "the demo month has campaign lines"
    assert _row(page, "double-week-47")[:2] == [
        "× 2",
        format_cents(sum(r["amount_cents"] for r in campaign)),
    ]
    fuel = [r for r in rows if r["product_group"] == "fuel"]
    assert _figure(page, "Litres") == format_ml_as_litres(sum(r["fuel_ml"] for r in fuel))

    # charts inside, nothing fetched from anywhere
    assert len(re.findall(r"<svg\b", page)) >= 4
    assert external_references(page) == []
    assert "<script" not in page


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--month", "2026-13", "--html", "x.html"], "--month must be YYYY-MM"),
        (["--month", "2026-11"], "the following arguments are required: --html"),
    ],
)
def test_bad_arguments_are_one_line(args: list[str], message: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "stream.cli", "report", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if not k.startswith("LOYALTY_")}
        | {"PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
