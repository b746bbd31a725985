"""``loyalty report``: one month of the business dashboard as a self-contained HTML page.

The figures are those of ``dashboards/loyalty-business.json`` for one bonus month, read from
ClickHouse (``purchase_lines`` with ``FINAL``, ``household_segments``, and the Bonus rules of
``bonus_rules``): sales and Bonus purchases, the sales of each day and of the last twelve
months, the estimated Bonus by tier, product groups, the largest stores, campaigns, fuel and
segments. Money stays integer cents until ``stream.reporting.html`` prints it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from models.months import Month
from stream.analytics.rules_table import read_bonus_rules
from stream.clickhouse.engine import ClickHouse
from stream.reporting.html import (
    Figure,
    Page,
    Section,
    Table,
    bar_chart,
    format_bp,
    format_cents,
    format_int,
    format_ml_as_litres,
    line_chart,
)

TOTALS_SQL = """
SELECT
    sum(amount_cents) AS sales,
    sumIf(amount_cents, bonus_eligible = 1) AS bonus_purchases,
    -sumIf(amount_cents, kind = 'return') AS returns,
    uniqExactIf(event_id, kind = 'purchase') AS receipts,
    uniqExact(household_key) AS households,
    sumIf(amount_cents, kind = 'purchase') AS purchase_sales,
    sumIf(amount_cents, product_group = 'fuel') AS fuel_sales,
    sumIf(fuel_ml, product_group = 'fuel') AS fuel_total_ml,
    sumIf(fuel_ml, product_group = 'fuel' AND bonus_eligible = 1) AS bonus_fuel_ml
FROM purchase_lines FINAL
WHERE month = {month:Date}
"""
DAILY_SQL = """
SELECT toDate(occurred_at, {tz:String}) AS day,
       sum(amount_cents) AS sales,
       sumIf(amount_cents, bonus_eligible = 1) AS bonus_purchases
FROM purchase_lines FINAL
WHERE month = {month:Date}
GROUP BY day
ORDER BY day
"""
TREND_SQL = """
SELECT month, sum(amount_cents) AS sales, sumIf(amount_cents, bonus_eligible = 1) AS bonus
FROM purchase_lines FINAL
WHERE month > addMonths({month:Date}, -12) AND month <= {month:Date}
GROUP BY month
ORDER BY month
"""
GROUPS_SQL = """
SELECT product_group,
       sum(amount_cents) AS sales,
       sumIf(amount_cents, bonus_eligible = 1) AS bonus_purchases,
       uniqExact(household_key) AS households
FROM purchase_lines FINAL
WHERE month = {month:Date}
GROUP BY product_group
ORDER BY sales DESC, product_group
"""
STORES_SQL = """
SELECT store_id,
       sum(amount_cents) AS sales,
       uniqExactIf(event_id, kind = 'purchase') AS receipts,
       uniqExact(household_key) AS households
FROM purchase_lines FINAL
WHERE month = {month:Date}
GROUP BY store_id
ORDER BY sales DESC, store_id
"""
CAMPAIGNS_SQL = """
SELECT campaign_id,
       sum(amount_cents) AS sales,
       uniqExact(household_key) AS households,
       uniqExact(store_id) AS stores
FROM purchase_lines FINAL
WHERE month = {month:Date} AND campaign_id != ''
GROUP BY campaign_id
ORDER BY campaign_id
"""
SEGMENTS_SQL = """
SELECT segment, uniqExact(household_key) AS households
FROM household_segments
WHERE build_month = (SELECT max(build_month) FROM household_segments
                     WHERE build_month <= {month:Date})
GROUP BY segment
ORDER BY segment
"""


def _r(column: str) -> str:
    return f"(SELECT argMax({column}, version) FROM bonus_rules)"  # noqa: S608 (our names)


def _tier(value: str) -> str:
    # no column captured by the lambda: ClickHouse 18.16 would prune it (see rules_table)
    return (
        f"arraySum(arrayMap((t, f, e, b, n, p) -> if(t = n AND p >= f AND p < e, {value}, 0), "
        f"{_r('tier_table')}, {_r('tier_from_cents')}, {_r('tier_to_cents')}, {_r('tier_bp')}, "
        f"arrayResize([tname], length({_r('tier_table')}), tname), "
        f"arrayResize([purchases], length({_r('tier_table')}), purchases)))"
    )


# The liability estimate of the dashboard ("Bonus liability of the running month by tier"):
# per household its co-op's tier, base Bonus with each campaign's multiplier, fuel Bonus and
# payment benefit, rounded half up per household as the month close does.
TIERS_SQL = f"""
SELECT
    tier_bp,
    count() AS households,
    sum(purchases) AS purchases_total,
    sum(base_cents) AS base_total,
    sum(fuel_cents) AS fuel_total,
    sum(benefit_cents) AS benefit_total,
    sum(base_cents + fuel_cents + benefit_cents) AS bonus_total,
    countIf(base_cents + fuel_cents + benefit_cents > 0) AS paid
FROM
(
    SELECT
        purchases,
        tname,
        {_tier("b")} AS tier_bp,
        greatest(intDiv(tier_bp * weighted + 5000, 10000), 0) AS base_cents,
        greatest(intDiv(tier_bp * bonus_fuel_ml + 50000, 100000), 0) AS fuel_cents,
        greatest(intDiv({_r("payment_benefit_bp")} * benefit + 5000, 10000), 0) AS benefit_cents
    FROM
    (
        SELECT
            household_key,
            any(co_op) AS household_co_op,
            if(indexOf({_r("co_op")}, household_co_op) = 0, 'default',
               arrayElement({_r("co_op_table")}, indexOf({_r("co_op")}, household_co_op)))
               AS tname,
            sumIf(amount_cents, bonus_eligible = 1) AS purchases,
            sumIf(amount_cents * greatest(arrayElement({_r("campaign_multiplier")},
                                                       indexOf({_r("campaign_id")}, campaign_id)),
                                          1),
                  bonus_eligible = 1 AND product_group != 'fuel') AS weighted,
            sumIf(fuel_ml, bonus_eligible = 1 AND product_group = 'fuel') AS bonus_fuel_ml,
            sumIf(amount_cents, bonus_eligible = 1
                  AND has({_r("payment_benefit_methods")}, payment_method)
                  AND NOT has({_r("payment_benefit_excluded_product_groups")}, product_group))
                  AS benefit
        FROM purchase_lines FINAL
        WHERE month = {{month:Date}}
        GROUP BY household_key
        HAVING countIf(bonus_eligible = 1) > 0
    )
)
GROUP BY tier_bp
ORDER BY tier_bp
"""  # noqa: S608 (built from our own column names only)


@dataclass(frozen=True, slots=True)
class TierRow:
    tier_bp: int
    households: int
    purchases_cents: int
    base_cents: int
    fuel_cents: int
    benefit_cents: int
    total_cents: int
    paid_households: int


@dataclass
class MonthReport:
    """The month's figures, integers throughout (cents, millilitres, counts)."""

    month: Month
    sales_cents: int = 0
    bonus_purchases_cents: int = 0
    returns_cents: int = 0
    receipts: int = 0
    households: int = 0
    purchase_sales_cents: int = 0
    fuel_sales_cents: int = 0
    fuel_ml: int = 0
    bonus_fuel_ml: int = 0
    daily: list[tuple[date, int, int]] = field(default_factory=list)
    trend: list[tuple[date, int, int]] = field(default_factory=list)
    groups: list[tuple[str, int, int, int]] = field(default_factory=list)
    stores: list[tuple[str, int, int, int]] = field(default_factory=list)
    tiers: list[TierRow] = field(default_factory=list)
    campaigns: list[tuple[str, int, int, int, int]] = field(default_factory=list)  # + multiplier
    segments: list[tuple[str, int]] = field(default_factory=list)
    rules: dict[str, Any] = field(default_factory=dict)

    @property
    def average_basket_cents(self) -> int:
        """Purchases per receipt, rounded half up to a cent."""
        if not self.receipts:
            return 0
        return (2 * self.purchase_sales_cents + self.receipts) // (2 * self.receipts)

    @property
    def bonus_total_cents(self) -> int:
        return sum(t.total_cents for t in self.tiers)


def month_report(
    client: ClickHouse, month: Month, *, timezone: str, top_stores: int = 10
) -> MonthReport:
    """Read the month's figures from ClickHouse."""
    params: dict[str, Any] = {"month": month.first_day, "tz": timezone}
    report = MonthReport(month)
    rows, columns = client.query_with_columns(TOTALS_SQL, params)
    totals = dict(zip(columns, rows[0], strict=True)) if rows else {}
    report.sales_cents = int(totals.get("sales") or 0)
    report.bonus_purchases_cents = int(totals.get("bonus_purchases") or 0)
    report.returns_cents = int(totals.get("returns") or 0)
    report.receipts = int(totals.get("receipts") or 0)
    report.households = int(totals.get("households") or 0)
    report.purchase_sales_cents = int(totals.get("purchase_sales") or 0)
    report.fuel_sales_cents = int(totals.get("fuel_sales") or 0)
    report.fuel_ml = int(totals.get("fuel_total_ml") or 0)
    report.bonus_fuel_ml = int(totals.get("bonus_fuel_ml") or 0)
    report.daily = [(d, int(s), int(b)) for d, s, b in client.query(DAILY_SQL, params)]
    report.trend = [(m, int(s), int(b)) for m, s, b in client.query(TREND_SQL, params)]
    report.groups = [
        (str(g), int(s), int(b), int(h)) for g, s, b, h in client.query(GROUPS_SQL, params)
    ]
    report.stores = [
        (str(i), int(s), int(r), int(h)) for i, s, r, h in client.query(STORES_SQL, params)
    ][:top_stores]  # (18.16 takes no parameter in LIMIT)
    report.tiers = [TierRow(*(int(v) for v in row)) for row in client.query(TIERS_SQL, params)]
    report.rules = read_bonus_rules(client)
    multipliers = dict(
        zip(report.rules["campaign_id"], report.rules["campaign_multiplier"], strict=True)
    )
    report.campaigns = [
        (str(c), int(multipliers.get(c, 1)), int(s), int(h), int(n))
        for c, s, h, n in client.query(CAMPAIGNS_SQL, params)
    ]
    report.segments = [(str(s), int(h)) for s, h in client.query(SEGMENTS_SQL, params)]
    return report


def _euros(cents: int) -> float:
    return cents / 100  # drawing only: the page prints cents exactly


def report_page(report: MonthReport) -> Page:
    """The page for ``report``: figures, charts (with their numbers) and tables."""
    month = str(report.month)
    overview = Section(
        "The month in figures",
        f"Bonus month {month}: every purchase line of the month (returns negative), each "
        "counted once even when it was delivered twice.",
        figures=[
            Figure("Sales", format_cents(report.sales_cents), "net of returns"),
            Figure("Bonus purchases", format_cents(report.bonus_purchases_cents)),
            Figure("Returns", format_cents(report.returns_cents)),
            Figure("Receipts", format_int(report.receipts)),
            Figure("Households", format_int(report.households)),
            Figure("Average basket", format_cents(report.average_basket_cents)),
            Figure("Estimated Bonus", format_cents(report.bonus_total_cents), "see below"),
        ],
        charts=_daily_charts(report),
    )
    return Page(
        "Loyalty: business report",
        f"Bonus month {month}",
        [
            overview,
            _tier_section(report),
            _groups_section(report),
            _stores_section(report),
            _campaign_section(report),
            _fuel_section(report),
            _segment_section(report),
        ],
        footer="Figures from the pseudonymous purchase lines in ClickHouse, as in the Grafana "
        "business dashboard. Estimates of Bonus use the rules the worker wrote to ClickHouse; "
        "exact amounts per household come from the month close.",
    )


def _daily_charts(report: MonthReport) -> list[Any]:
    charts = []
    if report.daily:
        days = [f"{d:%d.%m.}" for d, _, _ in report.daily]
        table = Table(
            ["day", "sales", "Bonus purchases"],
            [[f"{d:%Y-%m-%d}", format_cents(s), format_cents(b)] for d, s, b in report.daily],
        )
        charts.append(
            line_chart(
                "Sales by day",
                days,
                {
                    "sales": [_euros(s) for _, s, _ in report.daily],
                    "Bonus purchases": [_euros(b) for _, _, b in report.daily],
                },
                unit="€",
                table=table,
            )
        )
    if report.trend:
        months = [f"{m:%Y-%m}" for m, _, _ in report.trend]
        table = Table(
            ["month", "sales", "Bonus purchases"],
            [[f"{m:%Y-%m}", format_cents(s), format_cents(b)] for m, s, b in report.trend],
        )
        charts.append(
            bar_chart(
                "Sales of the last twelve months",
                months,
                {
                    "sales": [_euros(s) for _, s, _ in report.trend],
                    "Bonus purchases": [_euros(b) for _, _, b in report.trend],
                },
                unit="€",
                table=table,
            )
        )
    return charts


def _tier_section(report: MonthReport) -> Section:
    tiers = report.tiers
    table = Table(
        [
            "tier",
            "households",
            "Bonus purchases",
            "base Bonus",
            "fuel Bonus",
            "payment benefit",
            "total Bonus",
        ],
        [
            [
                format_bp(t.tier_bp),
                format_int(t.households),
                format_cents(t.purchases_cents),
                format_cents(t.base_cents),
                format_cents(t.fuel_cents),
                format_cents(t.benefit_cents),
                format_cents(t.total_cents),
            ]
            for t in tiers
        ],
        note="Households with Bonus purchases in the month, by the tier they reach in their "
        "co-op's bonus table.",
    )
    charts = []
    if tiers:
        charts.append(
            bar_chart(
                "Households by Bonus tier",
                [format_bp(t.tier_bp) for t in tiers],
                {"households": [t.households for t in tiers]},
                unit="households",
            )
        )
    return Section(
        "Bonus by tier (estimate)",
        "What the month close would pay for this month if no more purchases came: base Bonus "
        "(campaign lines counted with their multiplier), fuel Bonus (tier % as cents per litre) "
        "and the payment benefit, rounded per household.",
        figures=[
            Figure("Estimated Bonus", format_cents(report.bonus_total_cents)),
            Figure("Households paid", format_int(sum(t.paid_households for t in tiers))),
            Figure("Base Bonus", format_cents(sum(t.base_cents for t in tiers))),
            Figure("Fuel Bonus", format_cents(sum(t.fuel_cents for t in tiers))),
            Figure("Payment benefit", format_cents(sum(t.benefit_cents for t in tiers))),
        ],
        charts=charts,
        tables=[table],
    )


def _groups_section(report: MonthReport) -> Section:
    groups = report.groups
    table = Table(
        ["product group", "sales", "Bonus purchases", "households"],
        [[g, format_cents(s), format_cents(b), format_int(h)] for g, s, b, h in groups],
    )
    charts = []
    if groups:
        charts.append(
            bar_chart(
                "Sales by product group",
                [g for g, _, _, _ in groups],
                {
                    "sales": [_euros(s) for _, s, _, _ in groups],
                    "Bonus purchases": [_euros(b) for _, _, b, _ in groups],
                },
                unit="€",
                horizontal=True,
            )
        )
    return Section("Product groups", charts=charts, tables=[table])


def _stores_section(report: MonthReport) -> Section:
    table = Table(
        ["store", "sales", "receipts", "households"],
        [[s, format_cents(c), format_int(r), format_int(h)] for s, c, r, h in report.stores],
    )
    return Section(f"The {len(report.stores)} largest stores", tables=[table])


def _campaign_section(report: MonthReport) -> Section:
    table = Table(
        ["campaign", "multiplier", "sales of campaign lines", "households", "stores"],
        [
            [c, f"× {m}", format_cents(s), format_int(h), format_int(n)]
            for c, m, s, h, n in report.campaigns
        ],
        note="Lines that earned a campaign's multiplier (Bonus purchases outside fuel).",
    )
    intro = "" if report.campaigns else "No campaign ran in this month."
    return Section("Campaigns", intro, tables=[table] if report.campaigns else [])


def _fuel_section(report: MonthReport) -> Section:
    fuel_bonus = sum(t.fuel_cents for t in report.tiers)
    return Section(
        "Fuel",
        figures=[
            Figure("Fuel sales", format_cents(report.fuel_sales_cents)),
            Figure("Litres", format_ml_as_litres(report.fuel_ml)),
            Figure("Bonus litres", format_ml_as_litres(report.bonus_fuel_ml)),
            Figure("Fuel Bonus (estimate)", format_cents(fuel_bonus)),
        ],
    )


def _segment_section(report: MonthReport) -> Section:
    if not report.segments:
        return Section("Segments", "No segment build for this month or before it.")
    table = Table(["segment", "households"], [[s, format_int(h)] for s, h in report.segments])
    return Section(
        "Segments",
        "Households per segment of the latest segment build up to this month.",
        tables=[table],
    )
