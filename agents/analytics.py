"""Analytics: purchase lines from the internal topic into ClickHouse, in large batches."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agents._batches import run_batches
from stream.app import FaustPublisher
from stream.lines import LinesProcessor

if TYPE_CHECKING:
    from stream.app import LoyaltyApp

ROWS_PER_MESSAGE_GUESS = 250  # a message carries up to 1000 rows; most carry fewer


def register(app: LoyaltyApp) -> None:
    settings = app.settings
    topic = app.topic(
        app.topic_names.purchase_lines,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.swipe_partitions,
    )
    messages = max(1, settings.analytics_batch_size // ROWS_PER_MESSAGE_GUESS)

    @app.agent(topic, concurrency=1, name="analytics")
    async def write_lines(stream: Any) -> None:
        processor = LinesProcessor(settings, FaustPublisher(app))
        try:
            await run_batches(
                app, stream, processor.process, messages, settings.analytics_batch_seconds
            )
        finally:
            await processor.close()
