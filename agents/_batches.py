"""The one shape every consuming agent has: whole fetched batches, acked once handled.

Not Faust agents any more: ``LoyaltyApp.batch_handler`` registers a lane of the batch-delivery
consumer (``stream.kafka.batches``), which acks a batch only after its handler returned and
crashes the worker (acking nothing) if the handler raised.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from stream.kafka.batches import BatchHandler, ProcessHandler
from stream.kafka.topics import Record

if TYPE_CHECKING:
    from stream.app import LoyaltyApp

Handler = Callable[[list[Record]], Awaitable[object]]


def batch_agent(
    app: LoyaltyApp,
    topic_name: str,
    name: str,
    make_handler: Callable[[], Handler | BatchHandler],
    *,
    size: int,
    within: float | None = None,
    in_flight: int = 1,
    buffer: int = 0,
) -> None:
    """Deliver ``topic_name`` to ``make_handler()`` in batches of at most ``size`` records.

    The handler is a ``BatchHandler`` (``prepare`` then ``apply``: the next batch is prepared
    while this one waits on I/O) or a plain ``async process(records)``. ``within``: seconds to
    wait for a batch to fill (``LaneSpec.linger``); without it a batch is what one fetch
    brought. ``in_flight``: handler calls that may run at once; ``buffer``: messages queued
    before fetching pauses (``LaneSpec``).
    """

    def make() -> BatchHandler:
        handler = make_handler()
        if callable(handler):
            return ProcessHandler(handler)
        return handler

    app.batch_handler(
        topic_name,
        name,
        make,
        max_records=size,
        in_flight=in_flight,
        linger=within or 0.0,
        buffer=buffer,
    )
