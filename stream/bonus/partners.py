"""``loyalty partner-settlement``: each Bonus partner's invoice for a closed month (contract
section 12), from the month's accumulators as they stand now (late swipes included, so with
each household-month's final tier)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from models.bonus import Accumulator
from models.months import Month
from models.partner import PartnerTotal, settle
from models.rules import Rules
from stream.errors import LoyaltyError
from stream.store.store import Store

BATCH = 1000


class PartnerSettlementError(LoyaltyError):
    """A month that is not closed yet cannot be settled."""


async def _household_months(
    store: Store, month: Month, skipped: list[int]
) -> AsyncIterator[tuple[Accumulator, str, bool]]:
    async for ids in store.month_household_batches(str(month), BATCH):
        households = await store.households(ids)
        for hh, acc in zip(households, await store.accumulators(ids, str(month)), strict=True):
            if not acc.partner_cents:
                continue
            if hh is None:  # no household record (erased): nobody's tier to price it by
                skipped[0] += 1
                continue
            yield acc, hh.co_op, hh.business


async def partner_settlement(
    rules: Rules, store: Store, month: Month
) -> tuple[list[PartnerTotal], int]:
    """Every partner's total for ``month``, and how many household-months with partner
    purchases had no household record (left out)."""
    if not await store.month_closed(str(month)):
        raise PartnerSettlementError(
            f"month {month} has not been closed: run `loyalty close-month {month}` first "
            "(partners are invoiced with each household's final tier)"
        )
    skipped = [0]
    items = [item async for item in _household_months(store, month, skipped)]
    return settle(items, rules), skipped[0]
