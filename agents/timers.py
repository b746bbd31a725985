"""Timers: the hold sweep, gauges, and the scheduled month close (leader only)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from stream import metrics
from stream.app import FaustPublisher
from stream.bonus.housekeeping import (
    consumer_lag,
    outbox_gauges,
    scheduled_close,
    set_held_gauges,
    sweep_hold,
)

if TYPE_CHECKING:
    from stream.app import LoyaltyApp

log = logging.getLogger(__name__)


def register(app: LoyaltyApp) -> None:
    settings = app.settings

    # Timers never raise: a failed round is logged and the next one tries again.
    @app.timer(interval=30.0, name="hold_sweep")
    async def hold_sweep() -> None:
        try:
            publisher = FaustPublisher(app)
            processor = app.swipe_processor()
            counts = await sweep_hold(settings, app.store, processor, publisher)
            if any(counts.values()):
                log.info("hold sweep: %s", counts)
        except Exception:
            log.exception("hold sweep failed; next round in 30 s")

    @app.timer(interval=10.0, name="gauges")
    async def gauges() -> None:
        try:
            for (topic, partition), lag in consumer_lag(app.consumer).items():
                metrics.CONSUMER_LAG.labels(topic=topic, partition=str(partition)).set(lag)
            await set_held_gauges(app.store)
            await outbox_gauges(app.store)
        except Exception:
            log.exception("gauges failed")

    @app.timer(interval=60.0, on_leader=True, name="scheduled_close")
    async def close() -> None:
        try:
            await scheduled_close(settings, app.rules, app.store, FaustPublisher(app))
        except Exception:
            log.exception("scheduled close failed; retrying in 60 s")
