"""Small helpers around the local services the integration tests start (see ``conftest.py``)."""

from __future__ import annotations

import asyncio
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord, TopicPartition

from stream.devstack.broker import TansuBroker
from stream.devstack.processes import free_port
from stream.devstack.redis_server import RedisServer
from stream.kafka.publisher import KafkaPublisher
from stream.kafka.topics import Record

__all__ = [
    "consume",
    "free_port",
    "loyalty_env",
    "partitions_of",
    "pid_alive",
    "produce",
    "start_kafka",
    "start_redis",
    "unique_id",
    "wait_until",
]


def unique_id(prefix: str = "t") -> str:
    """A short unique name (``t`` + 8 hex digits) for topics, groups and key prefixes."""
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def start_kafka(data_dir: Path) -> TansuBroker:
    return TansuBroker(data_dir).start()


def start_redis(data_dir: Path, fsync: str = "always") -> RedisServer:
    return RedisServer(data_dir, fsync=fsync).start()


def wait_until(
    predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05, what: str = ""
) -> Any:
    """Poll ``predicate`` until it returns something truthy (returned); fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what or predicate}")
        time.sleep(interval)


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie, dead but not yet reaped, counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:  # not Linux: fall back to signal 0
        import os  # noqa: PLC0415

        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    # the state is the first field after the parenthesised command name
    return stat.rsplit(")", 1)[1].split()[0] not in {"Z", "X"}


def loyalty_env(
    *, kafka: TansuBroker, redis: RedisServer, unique: str, data_dir: Path
) -> dict[str, str]:
    """``LOYALTY_*`` settings for a worker/CLI isolated to one test (names, group, key prefix,
    ports), with short broker timeouts so that rebalances take seconds, not a minute."""
    return {
        "LOYALTY_KAFKA_URL": kafka.url,
        "LOYALTY_REDIS_URL": redis.url,
        "LOYALTY_CLICKHOUSE_URL": f"chdb://{data_dir.absolute() / 'chdb'}",
        "LOYALTY_TOPIC_PREFIX": f"{unique}.",
        "LOYALTY_GROUP_ID": unique,
        "LOYALTY_REDIS_PREFIX": f"{unique}:",
        "LOYALTY_WORKER_WEB_PORT": str(free_port()),
        "LOYALTY_WORKER_METRICS_PORT": str(free_port()),
        "LOYALTY_BROKER_SESSION_TIMEOUT": "10",
        "LOYALTY_BROKER_REBALANCE_TIMEOUT": "20",
    }


# -- Kafka, blocking wrappers for sync tests (there is no pytest-asyncio in this suite) ------


def produce(
    bootstrap: str,
    topic: str,
    messages: Iterable[tuple[bytes | None, bytes]],
    *,
    partition: int | None = None,
) -> None:
    """Send ``(key, value)`` pairs and wait until every one is acknowledged."""

    async def run() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False)
        await producer.start()
        try:
            futures = [
                await producer.send(topic, value, key=key, partition=partition)
                for key, value in messages
            ]
            await asyncio.gather(*futures)
        finally:
            await producer.stop()

    asyncio.run(run())


def consume(
    bootstrap: str,
    topic: str,
    count: int,
    *,
    group_id: str | None = None,
    timeout: float = 20.0,
) -> list[ConsumerRecord[bytes, bytes]]:
    """Read ``count`` records from the start of ``topic`` (fails after ``timeout`` seconds).

    ``auto_offset_reset`` is ``earliest``: "latest" is unreliable on Tansu (platform facts).
    """

    async def run() -> list[ConsumerRecord[bytes, bytes]]:
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=group_id,
            auto_offset_reset="earliest",
            enable_auto_commit=group_id is not None,
            # Tansu answers JoinGroup after about half the session timeout: keep it short
            session_timeout_ms=6000,
            heartbeat_interval_ms=1000,
        )
        await consumer.start()
        records: list[ConsumerRecord[bytes, bytes]] = []
        try:
            async with asyncio.timeout(timeout):
                while len(records) < count:
                    batches = await consumer.getmany(timeout_ms=200)
                    for batch in batches.values():
                        records.extend(batch)
        except TimeoutError:
            raise AssertionError(
                f"got {len(records)} of {count} records from {topic!r} in {timeout:g} s"
            ) from None
        finally:
            await consumer.stop()
        return records

    return asyncio.run(run())


async def read_partition(
    bootstrap: str, topic: str, timeout: float = 20.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of a one-partition topic so far, in offset order: read up to the high
    watermark the fetch responses report (not ListOffsets), without a consumer group."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    out: list[ConsumerRecord[bytes, bytes]] = []
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        async with asyncio.timeout(timeout):
            while (hw := consumer.highwater(tp)) is None or await consumer.position(tp) < hw:
                for batch in (await consumer.getmany(timeout_ms=200)).values():
                    out += batch
    finally:
        await consumer.stop()
    return out


def partitions_of(bootstrap: str, topic: str) -> set[int]:
    """The partition numbers of an existing ``topic`` according to the broker's metadata."""

    async def run() -> set[int]:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False)
        await producer.start()
        try:
            return set(await producer.partitions_for(topic))
        finally:
            await producer.stop()

    return asyncio.run(run())


def metric(url: str, series: str) -> float:
    """One series' value (``name{labels}`` as exposed) on a /metrics page; 0 if absent."""

    with urllib.request.urlopen(url, timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(series + " "):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


class TeePublisher(KafkaPublisher):
    """A real Kafka publisher that also keeps the purchase-line messages it sent."""

    def __init__(self, url: str, lines_topic: str) -> None:
        super().__init__(url)
        self.lines_topic = lines_topic
        self.lines: list[Record] = []

    async def send(self, topic: str, key: bytes | None, value: bytes) -> None:
        if topic == self.lines_topic:
            self.lines.append(Record(key, value))
        await super().send(topic, key, value)
