"""Delivery confirmation against the real broker, with sends that fail for a while."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka.errors import KafkaTimeoutError

from stream.devstack.broker import TansuBroker
from stream.kafka.publisher import KafkaPublisher
from tests.support.services import consume


class Flaky(KafkaPublisher):
    """Fails every record's first two sends: once at hand-over, once at delivery."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.attempts: dict[bytes, int] = {}

    async def _produce(self, topic: str, key: bytes | None, value: bytes) -> asyncio.Future[Any]:
        n = self.attempts[value] = self.attempts.get(value, 0) + 1
        if n == 1:
            raise KafkaTimeoutError("broker slow")
        if n == 2:
            failed: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            failed.set_exception(KafkaTimeoutError("not acked"))
            return failed
        return await super()._produce(topic, key, value)


def test_flush_returns_only_when_every_record_is_delivered_exactly_as_sent(
    kafka: TansuBroker, unique: str
) -> None:
    topic = f"{unique}.out"
    values = [f"record-{n}".encode() for n in range(50)]

    async def run() -> dict[bytes, int]:
        async with Flaky(kafka.url) as publisher:
            for value in values:
                await publisher.send(topic, b"k", value)
            await publisher.flush()
            return publisher.attempts

    attempts = asyncio.run(run())
    assert set(attempts.values()) == {3}
    records = consume(kafka.bootstrap, topic, len(values))
    assert sorted(r.value for r in records) == sorted(values)
