"""Settings for a test on the shared broker and Redis, with topics and keys of its own."""

from __future__ import annotations

from typing import Any

from stream.devstack.broker import TansuBroker
from stream.devstack.redis_server import RedisServer
from stream.settings import Settings


def isolated_settings(
    kafka: TansuBroker, redis_server: RedisServer, unique: str, **overrides: Any
) -> Settings:
    """``Settings`` on the test's broker and Redis; topics ``{unique}.*``, keys ``{unique}:*``."""
    return Settings(
        kafka_url=kafka.url,
        redis_url=redis_server.url,
        topic_prefix=f"{unique}.",
        redis_prefix=f"{unique}:",
        **overrides,
    )
