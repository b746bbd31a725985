"""``bonus_rules`` on both engines: written from the rules, newest wins, read back exactly,
and the SQL the dashboards use on it finds the same tier and multiplier as ``models.bonus``."""

from __future__ import annotations

from datetime import UTC, datetime

from models.bonus import tier_bp
from models.rules import load_rules, parse_rules
from stream.analytics.rules_table import OPEN_END, read_bonus_rules, write_bonus_rules
from stream.clickhouse.engine import ClickHouse
from stream.clickhouse.migrate import migrate
from stream.settings import DEFAULT_RULES

OTHER_RULES = """
payment_benefit_bp = 75
payment_benefit_methods = ["s_etukortti_visa", "payment_card"]
payment_benefit_excluded_product_groups = ["tobacco"]

[bonus_tables.default]
tiers = [ { from_cents = 0, bp = 50 }, { from_cents = 10000, bp = 200 } ]

[bonus_tables.small]
tiers = [ { from_cents = 3000, bp = 300 } ]

[co_ops]
"pirkanmaan-osuuskauppa" = "small"

[[campaigns]]
id = "triple"
multiplier = 3
store_ids = ["S1"]
starts_at = "2026-11-01T00:00:00+02:00"
ends_at = "2026-11-08T00:00:00+02:00"

[[campaigns]]
id = "double"
multiplier = 2
store_ids = ["S2", "S3"]
starts_at = "2026-11-16T00:00:00+02:00"
ends_at = "2026-11-23T00:00:00+02:00"
"""

# The lookups the dashboards use (see dashboards/loyalty-business.json), on one value. The
# lambda captures nothing: ClickHouse 18.16 prunes subquery columns that only a lambda uses.
TIER_SQL = """
SELECT purchases, tname,
       arraySum(arrayMap((t, f, e, b, n, p) -> if(t = n AND p >= f AND p < e, b, 0),
           (SELECT argMax(tier_table, version) FROM bonus_rules),
           (SELECT argMax(tier_from_cents, version) FROM bonus_rules),
           (SELECT argMax(tier_to_cents, version) FROM bonus_rules),
           (SELECT argMax(tier_bp, version) FROM bonus_rules),
           arrayResize([tname], length((SELECT argMax(tier_table, version) FROM bonus_rules)),
                       tname),
           arrayResize([purchases], length((SELECT argMax(tier_table, version) FROM bonus_rules)),
                       purchases))) AS tier_bp
FROM (
    SELECT toInt64({purchases}) AS purchases, co_op_name, 0 AS unused,
           if(indexOf((SELECT argMax(co_op, version) FROM bonus_rules), co_op_name) = 0,
              'default',
              arrayElement((SELECT argMax(co_op_table, version) FROM bonus_rules),
                           indexOf((SELECT argMax(co_op, version) FROM bonus_rules), co_op_name)))
           AS tname
    FROM (SELECT '{co_op}' AS co_op_name)
)
"""
MULTIPLIER_SQL = """
SELECT greatest(arrayElement((SELECT argMax(campaign_multiplier, version) FROM bonus_rules),
                             indexOf((SELECT argMax(campaign_id, version) FROM bonus_rules),
                                     campaign_id)), 1)
FROM (SELECT '{campaign}' AS campaign_id)
"""


def test_the_rules_are_written_once_and_read_back(clickhouse: ClickHouse) -> None:
    migrate(clickhouse)
    empty = read_bonus_rules(clickhouse)
    assert (empty["tier_bp"], empty["payment_benefit_bp"]) == ([], 0), "no row: empty, no error"
    nothing = clickhouse.query(TIER_SQL.format(purchases=10**6, co_op="hok-elanto"))
    assert nothing[0][1:] == ("default", 0), "no rules yet: the lookups give 0, not an error"
    assert clickhouse.query(MULTIPLIER_SQL.format(campaign="x")) == [(1,)]
    rules = load_rules(DEFAULT_RULES)
    assert write_bonus_rules(clickhouse, rules) is True
    assert write_bonus_rules(clickhouse, rules) is False, "the same rules again: nothing added"
    assert clickhouse.query("SELECT count() FROM bonus_rules") == [(1,)]
    row = read_bonus_rules(clickhouse)
    tiers = rules.bonus_tables["default"]
    assert row["tier_table"] == ["default"] * len(tiers)
    assert row["tier_from_cents"] == [t.from_cents for t in tiers]
    assert row["tier_bp"] == [t.bp for t in tiers]
    assert row["tier_to_cents"] == [t.from_cents for t in tiers[1:]] + [OPEN_END]
    assert (row["co_op"], row["co_op_table"]) == (["hok-elanto"], ["default"])
    assert (row["campaign_id"], row["campaign_multiplier"]) == (["double-week-47"], [2])
    assert row["campaign_starts_at"] == [datetime(2026, 11, 15, 22, 0, tzinfo=UTC)]
    assert row["campaign_ends_at"] == [datetime(2026, 11, 22, 22, 0, tzinfo=UTC)]
    assert row["payment_benefit_bp"] == 50
    assert row["payment_benefit_methods"] == ["s_etukortti_visa"]
    assert row["payment_benefit_excluded_product_groups"] == ["alcohol", "lottery", "tobacco"]
    assert row["timezone"] == "Europe/Helsinki"


def test_the_newest_rules_win_and_the_dashboard_lookups_agree_with_the_model(
    clickhouse: ClickHouse,
) -> None:
    migrate(clickhouse)
    default = load_rules(DEFAULT_RULES)
    other = parse_rules(OTHER_RULES)
    assert write_bonus_rules(clickhouse, other, version=2)
    assert write_bonus_rules(clickhouse, default, version=1), "differs from the newest: written"
    assert read_bonus_rules(clickhouse)["payment_benefit_bp"] == 75, "version 2 is the newest"
    for co_op in ("hok-elanto", "pirkanmaan-osuuskauppa", "unnamed-co-op"):
        for purchases in (-100, 0, 2999, 3000, 9999, 10000, 10**9):
            got = clickhouse.query(TIER_SQL.format(purchases=purchases, co_op=co_op))[0][2]
            assert got == tier_bp(other.tiers_for(co_op), purchases), (co_op, purchases)
    multipliers = {c.id: c.multiplier for c in other.campaigns}
    for campaign in ("triple", "double", "", "gone-from-the-rules"):
        got = clickhouse.query(MULTIPLIER_SQL.format(campaign=campaign))[0][0]
        assert got == multipliers.get(campaign, 1), campaign


def test_a_later_write_gets_a_higher_version(clickhouse: ClickHouse) -> None:
    migrate(clickhouse)
    write_bonus_rules(clickhouse, parse_rules(OTHER_RULES))
    write_bonus_rules(clickhouse, load_rules(DEFAULT_RULES))
    assert read_bonus_rules(clickhouse)["payment_benefit_bp"] == 50
