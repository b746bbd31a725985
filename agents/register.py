"""Register: materialise snapshots and capital payments; credit swipes held for new cards."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agents._batches import batch_agent

if TYPE_CHECKING:
    from stream.app import LoyaltyApp


def register(app: LoyaltyApp) -> None:
    batch_agent(
        app,
        app.topic_names.register,
        "register",
        lambda: app.register_processor().process,
        size=app.settings.batch_size,
    )
