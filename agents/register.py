"""Register: materialise snapshots and capital payments; credit swipes held for new cards."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agents._batches import run_batches

if TYPE_CHECKING:
    from stream.app import LoyaltyApp


def register(app: LoyaltyApp) -> None:
    settings = app.settings
    topic = app.topic(
        app.topic_names.register,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.swipe_partitions,
    )

    @app.agent(topic, concurrency=1, name="register")
    async def process_register(stream: Any) -> None:
        processor = app.register_processor()
        await run_batches(
            app, stream, processor.process, settings.batch_size, settings.batch_seconds
        )
