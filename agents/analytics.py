"""Analytics: purchase lines from the internal topic into ClickHouse, in large batches."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agents._batches import batch_agent

if TYPE_CHECKING:
    from stream.app import LoyaltyApp

ROWS_PER_MESSAGE_GUESS = 250  # a message carries up to 1000 rows; most carry fewer


def register(app: LoyaltyApp) -> None:
    settings = app.settings
    batch_agent(
        app,
        app.topic_names.purchase_lines,
        "analytics",
        lambda: app.lines_processor().process,
        size=max(1, settings.analytics_batch_size // ROWS_PER_MESSAGE_GUESS),
    )
