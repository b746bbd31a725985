"""The Bonus rules in ClickHouse (``bonus_rules``, migration 003), for the dashboards and reports.

Grafana's estimates (the running month's liability, Bonus by tier, fuel Bonus) and
``loyalty report`` need the tier tables, the co-ops' tables, the campaign multipliers and the
payment benefit. They read them from the newest row of ``bonus_rules``, which the worker (when
its analytics stage connects) and ``loyalty migrate`` write from ``LOYALTY_RULES``: change
rules.toml, restart, and the dashboards follow. Rewriting the same rules adds nothing.

A reader picks the newest row in SQL with ``argMax(column, version)`` (an aggregate, so an
empty table gives empty arrays and zeros instead of an error), e.g.::

    (SELECT argMax(tier_bp, version) FROM bonus_rules)

A tier is looked up with ``arrayMap`` over the parallel ``tier_*`` arrays; the lambda must
capture no column (pass them in with ``arrayResize``): ClickHouse 18.16 drops a subquery's
columns that only a lambda uses. ``dashboards/loyalty-business.json`` shows the SQL.
"""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime
from typing import Any

from models.rules import Rules
from stream.clickhouse.engine import ClickHouse

TABLE = "bonus_rules"
OPEN_END = 2**63 - 1  # to_cents of a top tier: no upper bound
COLUMNS = (
    "version",
    "rules_sha256",
    "timezone",
    "tier_table",
    "tier_from_cents",
    "tier_to_cents",
    "tier_bp",
    "co_op",
    "co_op_table",
    "campaign_id",
    "campaign_multiplier",
    "campaign_starts_at",
    "campaign_ends_at",
    "payment_benefit_bp",
    "payment_benefit_methods",
    "payment_benefit_excluded_product_groups",
)


def rules_row(rules: Rules, version: int) -> dict[str, Any]:
    """The ``bonus_rules`` row of ``rules`` (``version`` orders the writes)."""
    tier_table: list[str] = []
    tier_from: list[int] = []
    tier_to: list[int] = []
    tier_bp: list[int] = []
    for name in sorted(rules.bonus_tables):
        tiers = rules.bonus_tables[name]
        for index, tier in enumerate(tiers):
            tier_table.append(name)
            tier_from.append(tier.from_cents)
            tier_to.append(tiers[index + 1].from_cents if index + 1 < len(tiers) else OPEN_END)
            tier_bp.append(tier.bp)
    co_ops = sorted(rules.co_ops.items())
    campaigns = sorted(rules.campaigns, key=lambda c: c.id)
    row: dict[str, Any] = {
        "version": version,
        "timezone": rules.timezone.key,
        "tier_table": tier_table,
        "tier_from_cents": tier_from,
        "tier_to_cents": tier_to,
        "tier_bp": tier_bp,
        "co_op": [c for c, _ in co_ops],
        "co_op_table": [t for _, t in co_ops],
        "campaign_id": [c.id for c in campaigns],
        "campaign_multiplier": [c.multiplier for c in campaigns],
        "campaign_starts_at": [c.starts_at.astimezone(UTC) for c in campaigns],
        "campaign_ends_at": [c.ends_at.astimezone(UTC) for c in campaigns],
        "payment_benefit_bp": rules.payment_benefit_bp,
        "payment_benefit_methods": sorted(rules.payment_benefit_methods),
        "payment_benefit_excluded_product_groups": sorted(
            rules.payment_benefit_excluded_product_groups
        ),
    }
    # what the row says, without its version: the same rules give the same digest
    content = repr([row[c] for c in COLUMNS if c not in {"version", "rules_sha256"}])
    row["rules_sha256"] = hashlib.sha256(content.encode("utf-8")).hexdigest()
    return row


def current_rules_sha256(client: ClickHouse) -> str:
    """The digest of the newest row ('' when the table is empty)."""
    rows = client.query(f"SELECT argMax(rules_sha256, version) FROM {TABLE}")  # noqa: S608
    return str(rows[0][0]) if rows else ""


def write_bonus_rules(client: ClickHouse, rules: Rules, *, version: int | None = None) -> bool:
    """Make ``rules`` the newest row of ``bonus_rules``; False when they already are.

    ``version`` defaults to the time in nanoseconds: a later write wins.
    """
    row = rules_row(rules, time.time_ns() if version is None else version)
    if current_rules_sha256(client) == row["rules_sha256"]:
        return False
    client.insert(TABLE, COLUMNS, [tuple(row[c] for c in COLUMNS)])
    return True


def read_bonus_rules(client: ClickHouse) -> dict[str, Any]:
    """The newest row as a dict (column -> value); empty arrays and zeros when none."""
    # (aliases of their own: an alias named like a column would replace it inside argMax)
    names = [c for c in COLUMNS if c != "version"]
    select = ", ".join(f"argMax({c}, version) AS newest_{c}" for c in names)
    rows = client.query(f"SELECT max(version) AS newest, {select} FROM {TABLE}")  # noqa: S608
    row = dict(zip(["version", *names], rows[0], strict=True))
    for name in ("campaign_starts_at", "campaign_ends_at"):
        row[name] = [_aware(t) for t in row[name]]
    return row


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
