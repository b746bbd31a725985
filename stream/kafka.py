"""A plain aiokafka publisher for processes that are not Faust workers (CLI, simulator)."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

from aiokafka import AIOKafkaProducer

from stream.publishing import ConfirmingPublisher


def bootstrap_servers(kafka_url: str) -> str:
    """``kafka://h1:9092;h2:9092`` (Faust style) -> ``h1:9092,h2:9092``."""
    parts = urlsplit(kafka_url)
    return ",".join(
        server.split("://", 1)[-1] for server in f"{parts.netloc}{parts.path}".split(";") if server
    ).rstrip("/")


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
        await self._producer.start()

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
        return await self._producer.send(topic, value=value, key=key)  # type: ignore[no-any-return]
