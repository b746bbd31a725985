"""Member insights (contract section 13), served from Redis: each month's accumulator holds the
eligible purchases by product group (``g:<group>`` fields, see ``models.insights``), so one
request is one Redis round trip (the snapshot and the months' hashes) plus the bans of its
persons, and never touches ClickHouse or the pseudonym key."""

from __future__ import annotations

from typing import Any

from models.bonus import Accumulator, bonus_for
from models.consent import PRODUCT_DATA_SERVICES_BAN
from models.insights import by_group, to_next_tier_cents
from models.rules import Rules
from stream.store.store import Store, household_from_hash


async def insights_body(
    store: Store, rules: Rules, household_id: str, months: list[str], running: str
) -> dict[str, Any] | None:
    """The insights of ``months`` (oldest first; ``running`` is the current month), or None
    for an unknown (or erased) household."""
    record, accumulators = await store.insight_months(household_id, months)
    household = household_from_hash(household_id, record)
    if household is None and not any(accumulators):
        return None
    co_op = household.co_op if household else ""
    business = bool(household and household.business)
    banned = PRODUCT_DATA_SERVICES_BAN in await store.household_bans(household_id)
    tiers = rules.tiers_for(co_op)
    out_months = []
    for month, raw in zip(months, accumulators, strict=True):
        acc = Accumulator.from_fields(raw)
        figures = bonus_for(acc, rules, co_op, business=business)
        item: dict[str, Any] = {
            "month": month,
            "purchases_cents": figures.purchases_cents,
            "total_cents": figures.total_cents,
            "tier_bp": figures.tier_bp,
        }
        if month == running and not business:
            missing = to_next_tier_cents(figures.purchases_cents, tiers)
            if missing is not None:
                item["to_next_tier_cents"] = missing
        if not banned:
            item["by_group"] = {} if business else by_group(raw)
        out_months.append(item)
    body: dict[str, Any] = {"household_id": household_id, "co_op": co_op, "months": out_months}
    if banned:
        body["product_data"] = "banned"
    return body
