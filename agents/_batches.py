"""The one loop every consuming agent runs: take a batch, handle it, then ack it."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from stream.pipeline import Record

if TYPE_CHECKING:
    from stream.app import LoyaltyApp

log = logging.getLogger(__name__)


async def run_batches(
    app: LoyaltyApp,
    stream: Any,
    handle: Callable[[list[Record]], Awaitable[object]],
    size: int,
    within: float,
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
