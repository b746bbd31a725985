"""Retry a dependency call until it succeeds: a transient fault must never lose an event."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import redis.exceptions

from stream.errors import dependency_error
from stream.metrics import TRANSIENT_ERRORS

T = TypeVar("T")
log = logging.getLogger(__name__)

REDIS_TRANSIENT: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.BusyLoadingError,
    redis.exceptions.TryAgainError,
    ConnectionError,
    TimeoutError,
    OSError,
)


async def retry_forever(
    call: Callable[[], Awaitable[T]],
    *,
    dependency: str,
    transient: tuple[type[BaseException], ...] = REDIS_TRANSIENT,
    first_delay: float = 0.05,
    max_delay: float = 5.0,
) -> T:
    """Await ``call()`` until it returns; back off exponentially on ``transient`` faults.

    Cancellation passes through, so a stopping worker does not ack what it did not finish.
    """
    delay = first_delay
    attempt = 0
    while True:
        try:
            return await call()
        except transient as exc:
            attempt += 1
            TRANSIENT_ERRORS.labels(dependency=dependency).inc()
            if attempt == 1 or attempt % 10 == 0:
                # Ours names the address and the setting to check; else the type is enough.
                ours = dependency_error(exc, service=dependency)
                log.warning(
                    "%s unavailable (%s), attempt %d, retrying in %.2fs",
                    dependency,
                    ours if ours is not None else type(exc).__name__,
                    attempt,
                    delay,
                )
            await asyncio.sleep(delay)
            delay = min(max_delay, delay * 2)
