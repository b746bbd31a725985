"""Swipes: validate, resolve the card, apply to the household-month accumulator."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agents._batches import batch_agent

if TYPE_CHECKING:
    from stream.app import LoyaltyApp


def register(app: LoyaltyApp) -> None:
    batch_agent(
        app,
        app.topic_names.swipes,
        "swipes",
        app.swipe_processor,
        size=app.settings.batch_size,
        # Swipe batches commute: each swipe counts once per household-month whatever the order
        # (one Lua step per batch), so two batches may wait on Redis at once.
        in_flight=2,
    )
