"""The one shape every consuming agent has: take a batch, handle it, then ack it."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from stream.kafka.topics import Record

if TYPE_CHECKING:
    from stream.app import LoyaltyApp

log = logging.getLogger(__name__)

Handler = Callable[[list[Record]], Awaitable[object]]


def batch_agent(
    app: LoyaltyApp,
    topic_name: str,
    name: str,
    make_handler: Callable[[], Handler],
    *,
    size: int,
    within: float,
) -> None:
    """Attach agent ``name`` consuming ``topic_name`` in batches handed to ``make_handler()``.

    ``concurrency=1``: with more, Faust can commit past an event still in flight.
    """
    topic = app.topic(
        topic_name,
        key_serializer="raw",
        value_serializer="raw",
        partitions=app.settings.swipe_partitions,
    )

    async def agent(stream: Any) -> None:
        await run_batches(app, stream, make_handler(), size, within)

    agent.__name__ = agent.__qualname__ = name
    app.agent(topic, concurrency=1, name=name)(agent)


async def run_batches(
    app: LoyaltyApp, stream: Any, handle: Handler, size: int, within: float
) -> None:
    # noack_take: a batch is acked only after it was handled, never on cancellation, so a
    # stopping or killed worker leaves it to be processed again (idempotently).
    async for events in stream.noack_take(size, within=within):
        try:
            await handle([Record(e.key, e.value) for e in events])
        except Exception as exc:
            # Handlers route bad input themselves and retry transient faults; reaching here
            # is a bug. Unacked, the batch is not committed: crash and let a restart replay it.
            log.critical("batch handler failed; stopping the worker so nothing is acked")
            await app.crash(exc)
            return
        for event in events:
            await stream.ack(event)
