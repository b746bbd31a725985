"""Topic names, raw records, broker addresses, and topic creation (aiokafka's admin client)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import NamedTuple
from urllib.parse import urlsplit

from stream.settings import Settings

# -- topics -------------------------------------------------------------------------------


def _bootstrap(url_or_bootstrap: str) -> str:
    return url_or_bootstrap.removeprefix("kafka://").rstrip("/")


async def create_topics_async(
    bootstrap: str,
    topics: Mapping[str, int],
    *,
    replication_factor: int = 1,
    configs: Mapping[str, str] | None = None,
    request_timeout: float = 30.0,
) -> list[str]:
    """Create ``{name: partitions}``; existing topics are fine. Returns the names created now.

    ``bootstrap`` is ``host:port`` or a ``kafka://host:port`` URL. An existing topic is left as
    it is, whatever its partition count (Tansu cannot add partitions), so create topics before
    any client touches them: Tansu auto-creates unknown topics with its default of 4.
    """
    if not topics:
        return []
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # noqa: PLC0415
    from aiokafka.errors import TopicAlreadyExistsError, for_code  # noqa: PLC0415

    admin = AIOKafkaAdminClient(
        bootstrap_servers=_bootstrap(bootstrap), request_timeout_ms=int(request_timeout * 1000)
    )
    await admin.start()
    try:
        response = await admin.create_topics(
            [
                NewTopic(name, partitions, replication_factor, topic_configs=dict(configs or {}))
                for name, partitions in topics.items()
            ],
            timeout_ms=int(request_timeout * 1000),
        )
    finally:
        await admin.close()
    created: list[str] = []
    for entry in response.topic_errors:
        name, code = entry[0], entry[1]
        message = entry[2] if len(entry) > 2 else None
        if code == 0:
            created.append(name)
        elif code != TopicAlreadyExistsError.errno:
            error = for_code(code)
            raise error(f"creating topic {name!r}: {message or error.description}")
    return created


def create_topics(
    bootstrap: str,
    topics: Mapping[str, int],
    *,
    replication_factor: int = 1,
    configs: Mapping[str, str] | None = None,
    request_timeout: float = 30.0,
) -> list[str]:
    """Blocking :func:`create_topics_async`, for code not running in an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(
            create_topics_async(
                bootstrap,
                topics,
                replication_factor=replication_factor,
                configs=configs,
                request_timeout=request_timeout,
            )
        )
    raise RuntimeError(
        "create_topics() called inside a running event loop; await create_topics_async()"
    )


class Record(NamedTuple):
    """One Kafka record as the handlers see it (a tuple: one is made per message)."""

    key: bytes | None
    value: bytes | None


class Topics:
    def __init__(self, settings: Settings) -> None:
        self.swipes = settings.topic("swipes")
        self.register = settings.topic("register")
        self.payouts = settings.topic("bonus-payouts")
        self.dead_letters = settings.topic("dead-letters")
        self.purchase_lines = settings.topic("purchase-lines")
        self.audit = settings.topic("audit")
        self.member_payments = settings.topic("member-payments")


def bootstrap_servers(kafka_url: str) -> str:
    """``kafka://h1:9092;h2:9092`` (Faust style) -> ``h1:9092,h2:9092``."""
    parts = urlsplit(kafka_url)
    return ",".join(
        server.split("://", 1)[-1] for server in f"{parts.netloc}{parts.path}".split(";") if server
    ).rstrip("/")
