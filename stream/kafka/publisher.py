"""Kafka sends that survive a failed send: ``flush`` returns only when every record is acked.

A failed produce future cannot be awaited again, so the pending records are kept with their
futures, and those that failed are sent anew (with backoff) until the broker confirms them.
Callers ack their input only after ``flush`` returned, so nothing is lost in between.

- ``Publisher``: the protocol the pipeline sends through;
- ``ConfirmingPublisher``: the confirm-on-flush discipline, over any producer;
- ``KafkaPublisher``: a plain aiokafka producer, for processes that are not Faust workers (CLI,
  simulator); the worker's ``FaustPublisher`` (``stream.app``) uses Faust's producer.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Protocol

from aiokafka import AIOKafkaProducer

from stream.kafka.topics import bootstrap_servers
from stream.metrics import TRANSIENT_ERRORS


class Publisher(Protocol):
    """Sends records to Kafka; ``flush`` returns only when every record sent is acknowledged
    (re-sending what failed), so a caller may ack its input right after (see publishing)."""

    async def send(self, topic: str, key: bytes | None, value: bytes) -> None: ...

    async def flush(self) -> None: ...


@dataclass(slots=True)
class _Pending:
    topic: str
    key: bytes | None
    value: bytes
    delivery: asyncio.Future[Any]


class ConfirmingPublisher(ABC):
    """``pipeline.Publisher``: ``send`` queues, ``flush`` waits for (and retries) delivery."""

    max_delay = 5.0

    def __init__(self) -> None:
        self._pending: list[_Pending] = []
        # One flush at a time: a flush that finds another running waits for it, so when it
        # returns, every record sent before it was called is confirmed, by one or the other.
        self._flushing = asyncio.Lock()

    @abstractmethod
    async def _produce(self, topic: str, key: bytes | None, value: bytes) -> asyncio.Future[Any]:
        """Hand one record to the producer; the future resolves when the broker acked it."""

    async def send(self, topic: str, key: bytes | None, value: bytes) -> None:
        delivery = await self._send_once(topic, key, value)
        # Appended after the await: a flush may have swapped the list in the meantime.
        self._pending.append(_Pending(topic, key, value, delivery))

    async def _send_once(self, topic: str, key: bytes | None, value: bytes) -> asyncio.Future[Any]:
        try:
            return await self._produce(topic, key, value)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            failed: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            failed.set_exception(exc)
            return failed

    async def flush(self) -> None:
        async with self._flushing:
            pending, self._pending = self._pending, []
            delay = 0.1
            while pending:
                results = await asyncio.gather(
                    *(p.delivery for p in pending), return_exceptions=True
                )
                for result in results:
                    if isinstance(result, asyncio.CancelledError):
                        self._pending = pending + self._pending
                        raise result
                pending = [
                    p for p, r in zip(pending, results, strict=True) if isinstance(r, BaseException)
                ]
                if not pending:
                    return
                TRANSIENT_ERRORS.labels(dependency="kafka").inc()
                log.warning(
                    "%d record(s) not delivered, sending again in %.1fs", len(pending), delay
                )
                await asyncio.sleep(delay)
                delay = min(self.max_delay, delay * 2)
                pending = [
                    _Pending(
                        p.topic, p.key, p.value, await self._send_once(p.topic, p.key, p.value)
                    )
                    for p in pending
                ]


class KafkaPublisher(ConfirmingPublisher):
    """Records through a plain aiokafka producer, confirmed on ``flush``."""

    def __init__(self, kafka_url: str, **options: Any) -> None:
        super().__init__()
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap_servers(kafka_url),
            acks="all",
            linger_ms=5,
            **options,
        )

    async def start(self) -> None:
        try:
            await self._producer.start()
        except BaseException:
            await self._producer.stop()  # a producer that failed to start still holds a client
            raise

    async def stop(self) -> None:
        try:
            await self.flush()
        finally:
            await self._producer.stop()

    async def __aenter__(self) -> KafkaPublisher:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _produce(self, topic: str, key: bytes | None, value: bytes) -> asyncio.Future[Any]:
        sent: asyncio.Future[Any] = await self._producer.send(topic, value=value, key=key)
        return sent


log = logging.getLogger(__name__)
