"""Analytics: purchase lines from the internal topic into ClickHouse, in large batches."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from agents._batches import batch_agent

if TYPE_CHECKING:
    from stream.app import LoyaltyApp

log = logging.getLogger(__name__)
# A message carries up to 1000 rows (``stream.bonus.swipes.ROWS_PER_MESSAGE``): full ones in a
# backlog, fewer at a steady rate, where ``within`` fills the insert instead.
ROWS_PER_MESSAGE_GUESS = 1000


def register(app: LoyaltyApp) -> None:
    settings = app.settings
    batch_agent(
        app,
        app.topic_names.purchase_lines,
        "analytics",
        lambda: app.lines_processor().process,
        size=max(1, settings.analytics_batch_size // ROWS_PER_MESSAGE_GUESS),
        # ClickHouse pays per insert (a part written, merged later): wait to fill one.
        within=settings.analytics_batch_seconds,
        buffer=2 * max(1, settings.analytics_batch_size // ROWS_PER_MESSAGE_GUESS),  # ~50 kB each
    )

    @app.task
    async def analytics_start() -> None:
        """Connect at start, not at the first purchase line: the migrations, and the Bonus
        rules the dashboards read (``bonus_rules``), are there as soon as the worker runs."""
        try:
            await app.lines_processor().start()
        except Exception:
            log.exception("the analytics stage did not start; its first batch tries again")
