"""A plain aiokafka publisher for processes that are not Faust workers (CLI, simulator)."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

from aiokafka import AIOKafkaProducer


def bootstrap_servers(kafka_url: str) -> str:
    """``kafka://h1:9092;h2:9092`` (Faust style) -> ``h1:9092,h2:9092``."""
    parts = urlsplit(kafka_url)
    return ",".join(
        server.split("://", 1)[-1] for server in f"{parts.netloc}{parts.path}".split(";") if server
    ).rstrip("/")


class KafkaPublisher:
    """``pipeline.Publisher`` over aiokafka; ``flush`` waits for every acknowledgement."""

    def __init__(self, kafka_url: str, **options: Any) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap_servers(kafka_url),
            acks="all",
            linger_ms=5,
            **options,
        )
        self._pending: list[asyncio.Future[Any]] = []

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

    async def send(self, topic: str, key: bytes | None, value: bytes) -> None:
        self._pending.append(await self._producer.send(topic, value=value, key=key))

    async def flush(self) -> None:
        pending, self._pending = self._pending, []
        await asyncio.gather(*pending)
