"""The dashboards in ``dashboards/``: well formed, and every ClickHouse query works.

Every panel's SQL is rewritten the way Grafana and the ClickHouse plugin would (macros, time
range, template variables; see ``grafana_json``) and run on both engines, chdb (current
ClickHouse) and the Debian server (18.16), against the demo data of ``demo_data``: each must
return rows with exactly the columns the panel is configured for. Panels are also checked
for their figures: the period totals count a redelivered swipe once, the running month's
Bonus liability equals what ``models.bonus`` computes for the same swipes (under the default
rules, and under other rules written to ``bonus_rules``: no rule is hard-coded in the SQL), and
households are counted in the tier their purchases reach.
"""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from models.rules import Tier, load_rules, parse_rules
from stream.analytics.rules_table import write_bonus_rules
from stream.clickhouse.engine import ClickHouse
from stream.settings import DEFAULT_RULES
from tests.dashboards.demo_data import AUDIT_SUBJECT, END, START, DemoData
from tests.dashboards.grafana_json import (
    CLICKHOUSE_TYPE,
    PROMETHEUS_TYPE,
    Query,
    Selection,
    all_queries,
    load_dashboards,
    render_clickhouse,
    render_promql,
)

DASHBOARDS = load_dashboards()
CH_QUERIES = all_queries(CLICKHOUSE_TYPE)
RANGE_START = START - timedelta(days=1)
RANGE_END = END + timedelta(hours=1)
CO_OPS = ["hok-elanto", "pirkanmaan-osuuskauppa"]  # the simulator's co-ops
SELECTIONS = {
    "all-co-ops": Selection(),
    "one-co-op": Selection({"co_op": CO_OPS[:1]}),
    "two-co-ops": Selection({"co_op": CO_OPS}),
}
# SQL that Debian's ClickHouse 18.16 does not know (the plugin's ``_ms`` macros and
# ``$__timeInterval`` expand to DateTime64 / toStartOfInterval ... INTERVAL forms).
NEWER_ONLY = [
    r"\bOVER\s*\(",
    r"\bQUALIFY\b",
    r"\bDateTime64\b",
    r"toStartOfInterval",
    r"\$__timeInterval",
    r"\$__\w+_ms\b",
    r"fromUnixTimestamp64",
    r"\bstartsWith\s*\(",
    r"\bWITH\s+FILL\b",
    r"\bLowCardinality\b",
]


def _panel(title: str) -> Query:
    found = [q for q in CH_QUERIES if not q.is_variable and q.panel["title"] == title]
    assert len(found) == 1, f"expected one ClickHouse panel titled {title!r}, found {len(found)}"
    return found[0]


def _run(
    client: ClickHouse, query: Query, selection: Selection | None = None
) -> tuple[list[tuple[Any, ...]], list[str]]:
    sql = render_clickhouse(query, RANGE_START, RANGE_END, selection)
    return client.query_with_columns(sql)


# -- static checks: no database needed -----------------------------------------------------


def test_there_are_a_business_and_an_operations_dashboard() -> None:
    assert {d.path.name for d in DASHBOARDS} >= {"loyalty-business.json", "loyalty-operations.json"}
    uids = [d.uid for d in DASHBOARDS]
    assert len(uids) == len(set(uids)), uids
    types = {d.uid: {q.datasource_type for q in d.queries()} for d in DASHBOARDS}
    assert types["loyalty-business"] == {CLICKHOUSE_TYPE}
    # Prometheus, and the audit trail panel (contract section 10) on ClickHouse
    assert types["loyalty-operations"] == {PROMETHEUS_TYPE, CLICKHOUSE_TYPE}


@pytest.mark.parametrize("dashboard", DASHBOARDS, ids=lambda d: d.uid)
def test_every_panel_has_a_title_a_description_and_a_unit(dashboard: Any) -> None:
    ids = [p["id"] for p in dashboard.panels()]
    assert len(ids) == len(set(ids)), f"panel ids repeat: {ids}"
    for panel in dashboard.panels():
        assert panel.get("title", "").strip(), f"panel {panel['id']} has no title"
        assert {"h", "w", "x", "y"} <= set(panel.get("gridPos", {})), panel["title"]
    for panel in dashboard.data_panels():
        where = f"{dashboard.uid}: {panel['title']!r}"
        assert len(panel.get("description", "")) >= 40, f"{where} needs a description"
        assert panel.get("fieldConfig", {}).get("defaults", {}).get("unit"), f"{where} has no unit"
        assert panel.get("targets"), f"{where} has no query"
        ref_ids = [t.get("refId") for t in panel["targets"]]
        assert all(ref_ids) and len(ref_ids) == len(set(ref_ids)), f"{where}: refIds {ref_ids}"
        for override in panel["fieldConfig"].get("overrides", []):
            props = {p["id"] for p in override["properties"]}
            assert "displayName" in props, f"{where}: column {override['matcher']} has no name"


def test_a_clickhouse_panel_names_every_column_it_shows() -> None:
    for query in CH_QUERIES:
        if not query.is_variable:
            assert query.expected_columns(), f"{query.name}: no byName overrides"


def test_clickhouse_queries_read_purchase_lines_with_final() -> None:
    for query in CH_QUERIES:
        for m in re.finditer(r"\bpurchase_lines\b(\s+\w+)?", query.text):
            following = (m.group(1) or "").strip()
            assert following.upper() == "FINAL", (
                f"{query.name}: purchase_lines without FINAL (a redelivered swipe would count "
                f"twice): ...{query.text[m.start() : m.end() + 20]}..."
            )


@pytest.mark.parametrize("pattern", NEWER_ONLY)
def test_clickhouse_queries_use_nothing_18_16_lacks(pattern: str) -> None:
    for query in CH_QUERIES:
        assert not re.search(pattern, query.text, re.IGNORECASE), f"{query.name}: {pattern}"


def test_no_bonus_rule_is_hard_coded_in_the_sql() -> None:
    """Tiers, co-op tables, campaign multipliers and the payment benefit come from the
    ``bonus_rules`` table the worker writes from rules.toml, never from literals that drift."""
    rules = load_rules(DEFAULT_RULES)
    reading = 0
    for dashboard in DASHBOARDS:
        for var in dashboard.variables():
            assert "multiplier" not in var["name"], f"{var['name']}: a rule as a dashboard constant"
    for query in CH_QUERIES:
        compared = re.findall(r"\bpurchases\s*(?:>=|>|<=|<|=)\s*(\d+)", query.text)
        assert not compared, f"{query.name}: purchases compared with literals {compared}"
        assert "multiIf" not in query.text, query.name
        for method in rules.payment_benefit_methods:
            assert method not in query.text, f"{query.name}: payment method {method} in SQL"
        if re.search(r"\btier_bp\b", query.text):
            for column in ("tier_table", "tier_from_cents", "tier_to_cents", "tier_bp"):
                assert f"argMax({column}, version) FROM bonus_rules" in query.text, query.name
            reading += 1
        if "_cents" in query.text and re.search(r"\bbase_cents\b", query.text):
            assert "argMax(campaign_multiplier, version) FROM bonus_rules" in query.text
            assert "argMax(payment_benefit_bp, version) FROM bonus_rules" in query.text
    assert reading >= 4, "the tier, liability (2) and fuel Bonus panels read the tiers"


@pytest.mark.parametrize("selection", list(SELECTIONS), ids=str)
def test_every_query_renders_without_leftover_variables(selection: str) -> None:
    for query in CH_QUERIES:
        sql = render_clickhouse(query, RANGE_START, RANGE_END, SELECTIONS[selection])
        assert "$" not in sql, query.name
    for dashboard in DASHBOARDS:
        for query in dashboard.queries():
            if query.datasource_type == PROMETHEUS_TYPE:
                assert "$" not in render_promql(query), query.name


def test_the_co_op_filter_is_substituted_like_grafana() -> None:
    query = _panel("Sales and Bonus purchases in the period")
    everything = render_clickhouse(query, RANGE_START, RANGE_END, Selection())
    one = render_clickhouse(query, RANGE_START, RANGE_END, SELECTIONS["one-co-op"])
    two = render_clickhouse(query, RANGE_START, RANGE_END, SELECTIONS["two-co-ops"])
    assert "1=1" in everything and "co_op IN" not in everything
    assert "co_op IN ('hok-elanto')" in one
    assert "co_op IN ('hok-elanto','pirkanmaan-osuuskauppa')" in two
    start, end = int(RANGE_START.timestamp()), int(RANGE_END.timestamp())
    assert f"occurred_at >= toDateTime({start}) AND occurred_at <= toDateTime({end})" in one


# -- every query against the demo data, on both engines ------------------------------------


def _query_cases() -> list[Any]:
    cases = []
    for query in CH_QUERIES:
        for name, selection in SELECTIONS.items():
            if name != "all-co-ops" and "$co_op" not in query.text and "${co_op" not in query.text:
                continue
            cases.append(pytest.param(query, selection, id=f"{query.name} {name}"))
    return cases


@pytest.mark.parametrize(("query", "selection"), _query_cases())
def test_query_returns_rows_with_the_panel_columns(
    dashboard_clickhouse: ClickHouse, query: Query, selection: Selection
) -> None:
    rows, columns = _run(dashboard_clickhouse, query, selection)
    assert rows, f"{query.name}: no rows on the demo data"
    assert len(columns) == len(set(columns)), f"{query.name}: repeated columns {columns}"
    expected = query.expected_columns()
    if expected is None:  # a variable query: one column of values
        assert len(columns) == 1
        assert {r[0] for r in rows} == set(CO_OPS)
        return
    assert set(columns) == expected, (
        f"{query.name}: the query returns {sorted(columns)}, the panel shows {sorted(expected)}"
    )
    if query.is_timeseries:
        assert columns[0] == "time", f"{query.name}: a time series starts with its time column"
        times = [r[0] for r in rows]
        assert all(isinstance(t, datetime) for t in times), f"{query.name}: time is {times[:3]}"
        assert times == sorted(times), f"{query.name}: not in time order"
    for row in rows:
        for name, value in zip(columns, row, strict=True):
            if name != "time" and not isinstance(value, str):
                assert isinstance(value, int | float | Decimal | date) or value is None, (
                    f"{query.name}: column {name} = {value!r}"
                )


def test_period_totals_count_a_redelivered_swipe_once(
    dashboard_clickhouse: ClickHouse, demo: DemoData
) -> None:
    rows, columns = _run(dashboard_clickhouse, _panel("Sales and Bonus purchases in the period"))
    got = dict(zip(columns, rows[0], strict=True))
    assert demo.redelivered, "the demo data must redeliver some rows"
    sales = sum(r["amount_cents"] for r in demo.rows)
    eligible = sum(r["amount_cents"] for r in demo.rows if r["bonus_eligible"])
    assert round(got["sales_eur"] * 100) == sales
    assert round(got["bonus_purchases_eur"] * 100) == eligible
    assert got["receipts"] == len({r["event_id"] for r in demo.rows if r["kind"] == "purchase"})
    assert got["households"] == len({r["household_key"] for r in demo.rows})


def test_running_month_liability_is_the_exact_bonus_for_the_default_rules(
    dashboard_clickhouse: ClickHouse, demo: DemoData
) -> None:
    """With one bonus table and campaigns of multiplier 2 (the default rules), the estimate
    is exact: the same tiers, the same half-up rounding per component and household."""
    rules = load_rules(DEFAULT_RULES)
    month = f"{RANGE_END:%Y-%m}"
    wanted: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for figures in demo.exact_bonus(month, rules).values():
        tier = wanted[figures.tier_bp]
        tier["households"] += 1
        tier["purchases"] += figures.purchases_cents
        tier["base"] += figures.base_bonus_cents
        tier["fuel"] += figures.fuel_bonus_cents
        tier["benefit"] += figures.payment_benefit_cents
        tier["total"] += figures.total_cents
    assert len([bp for bp in wanted if bp]) >= 3, "the demo data should reach several tiers"

    rows, columns = _run(
        dashboard_clickhouse, _panel("Bonus liability of the running month by tier")
    )
    got = {}
    for row in rows:
        r = dict(zip(columns, row, strict=True))
        got[round(r["tier_pct"] * 100)] = {
            "households": r["households"],
            "purchases": round(r["purchases_eur"] * 100),
            "base": round(r["base_bonus_eur"] * 100),
            "fuel": round(r["fuel_bonus_eur"] * 100),
            "benefit": round(r["payment_benefit_eur"] * 100),
            "total": round(r["total_bonus_eur"] * 100),
        }
    for bp in sorted(set(wanted) | set(got)):
        w, g = dict(wanted.get(bp, {})), dict(got.get(bp, {}))
        if bp == 0:  # households without any eligible line are not listed by the panel
            w.pop("households", None)
            g.pop("households", None)
        for key in ("purchases", "base", "fuel", "benefit", "total"):
            w.setdefault(key, 0)
            g.setdefault(key, 0)
        assert g == w, f"tier {bp} bp: dashboard {g} != exact {w}"

    stat_rows, stat_columns = _run(
        dashboard_clickhouse, _panel("Estimated Bonus liability of the running month")
    )
    stat = dict(zip(stat_columns, stat_rows[0], strict=True))
    assert round(stat["total_bonus_eur"] * 100) == sum(t["total"] for t in wanted.values())
    assert stat["households_paid"] == sum(
        1 for f in demo.exact_bonus(month, rules).values() if f.total_cents > 0
    )


def test_who_read_a_household_is_one_panel_filtered_by_its_subject_key(
    dashboard_clickhouse: ClickHouse,
) -> None:
    query = _panel("Who read personal data (audit trail)")
    rows, columns = _run(dashboard_clickhouse, query)
    by_client = {(r[columns.index("client")], r[columns.index("action")]): r for r in rows}
    assert set(by_client) == {
        ("checkout-app", "bonus_read"),
        ("dpo", "subject_access"),
        ("crm", "bonus_read"),
    }
    one = Selection(values={"subject_key": [AUDIT_SUBJECT]})
    rows, columns = _run(dashboard_clickhouse, query, one)
    accesses = {r[columns.index("client")]: r[columns.index("accesses")] for r in rows}
    assert accesses == {"checkout-app": 2, "dpo": 1}  # the redelivered records count once


# Rules unlike the default ones in everything the estimates read from bonus_rules (tiers, a
# second table for one co-op, the campaign's multiplier, the payment benefit), alike in what
# the worker decided per line (eligibility, which lines are in the campaign).
OTHER_RULES = """
timezone = "Europe/Helsinki"
payment_benefit_bp = 75
payment_benefit_methods = ["s_etukortti_visa", "payment_card"]
payment_benefit_excluded_product_groups = ["tobacco"]
excluded_payment_methods = ["invoice", "company_card", "benefit_voucher"]
excluded_product_groups = ["gift_card", "lottery"]
fuel_product_groups = ["fuel"]

[bonus_tables.default]
tiers = [ { from_cents = 0, bp = 50 }, { from_cents = 10000, bp = 200 },
          { from_cents = 40000, bp = 425 } ]

[bonus_tables.small]
tiers = [ { from_cents = 3000, bp = 300 } ]

[co_ops]
"pirkanmaan-osuuskauppa" = "small"

[[campaigns]]
id = "double-week-47"
multiplier = 3
store_ids = ["S0042"]
starts_at = "2026-11-16T00:00:00+02:00"
ends_at   = "2026-11-23T00:00:00+02:00"
"""


def _liability_by_tier(client: ClickHouse) -> dict[int, dict[str, int]]:
    rows, columns = _run(client, _panel("Bonus liability of the running month by tier"))
    got = {}
    for row in rows:
        r = dict(zip(columns, row, strict=True))
        got[round(r["tier_pct"] * 100)] = {
            "households": r["households"],
            "purchases": round(r["purchases_eur"] * 100),
            "base": round(r["base_bonus_eur"] * 100),
            "fuel": round(r["fuel_bonus_eur"] * 100),
            "benefit": round(r["payment_benefit_eur"] * 100),
            "total": round(r["total_bonus_eur"] * 100),
        }
    return got


def test_the_estimates_follow_the_rules_in_clickhouse(
    dashboard_clickhouse: ClickHouse, demo: DemoData
) -> None:
    """Other rules written to bonus_rules (as a worker with another rules.toml does at start):
    the liability panel is again exactly what models.bonus computes under those rules."""
    other = parse_rules(OTHER_RULES)
    month = f"{RANGE_END:%Y-%m}"
    exact = demo.exact_bonus(month, other, recompute=True)
    wanted: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for figures in exact.values():
        if figures.purchases_cents == 0 and figures.total_cents == 0:
            continue
        tier = wanted[figures.tier_bp]
        tier["households"] += 1
        tier["purchases"] += figures.purchases_cents
        tier["base"] += figures.base_bonus_cents
        tier["fuel"] += figures.fuel_bonus_cents
        tier["benefit"] += figures.payment_benefit_cents
        tier["total"] += figures.total_cents
    assert {300, 425} <= set(wanted), "both tables and a high tier are reached"
    default_totals = _liability_by_tier(dashboard_clickhouse)
    try:
        assert write_bonus_rules(dashboard_clickhouse, other)
        got = _liability_by_tier(dashboard_clickhouse)
    finally:
        write_bonus_rules(dashboard_clickhouse, load_rules(DEFAULT_RULES))
    assert got != default_totals
    for bp in sorted(set(wanted) | set(got)):
        w = {k: wanted.get(bp, {}).get(k, 0) for k in ("purchases", "base", "fuel", "benefit")}
        g = {k: got.get(bp, {}).get(k, 0) for k in ("purchases", "base", "fuel", "benefit")}
        assert g == w, f"tier {bp} bp: dashboard {g} != exact {w}"
    assert sum(t["total"] for t in got.values()) == sum(f.total_cents for f in exact.values())
    assert _liability_by_tier(dashboard_clickhouse) == default_totals, "default rules back"


def _tier_label(rules_tiers: tuple[Tier, ...], table: str, purchases: int) -> str:
    reached = [t for t in rules_tiers if t.from_cents <= purchases]
    if not reached:
        return "below the first tier (0 %)"
    prefix = "" if table == "default" else f"{table}: "
    tier = reached[-1]
    return f"{prefix}{tier.from_cents / 100:g} € and more ({tier.bp / 100:g} %)"


def test_households_by_tier_counts_each_household_month_in_its_tier(
    dashboard_clickhouse: ClickHouse, demo: DemoData
) -> None:
    rules = load_rules(DEFAULT_RULES)
    purchases: dict[tuple[str, int], int] = defaultdict(int)
    co_op: dict[int, str] = {}
    for row in demo.rows:
        key = (str(row["month"])[:7], row["household_key"])
        purchases[key] += row["amount_cents"] if row["bonus_eligible"] else 0
        co_op[row["household_key"]] = row["co_op"]
    wanted: dict[tuple[str, str], int] = defaultdict(int)
    for (month, household), cents in purchases.items():
        table = rules.table_name(co_op[household])
        wanted[(month, _tier_label(rules.bonus_tables[table], table, cents))] += 1
    rows, columns = _run(
        dashboard_clickhouse, _panel("Households by Bonus tier (monthly Bonus purchases)")
    )
    got = {(f"{r[0]:%Y-%m}", r[1]): r[2] for r in rows}
    assert columns == ["time", "tier", "households"]
    assert got == dict(wanted)
