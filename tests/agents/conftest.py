"""A running worker (and API) per test, on the session's broker and Redis."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis

from stream.devstack.broker import TansuBroker
from stream.devstack.processes import free_port
from stream.devstack.redis_server import RedisServer
from stream.devstack.services import ApiProcess, WorkerProcess
from stream.settings import Settings
from tests.support.events import keyed
from tests.support.services import consume, produce


@dataclass
class Deployment:
    """One test's service: its settings, processes, and helpers to feed and inspect it."""

    env: dict[str, str]
    tmp: Path
    redis: redis.Redis
    processes: list[Any] = field(default_factory=list)

    @property
    def settings(self) -> Settings:
        return Settings(**{k.removeprefix("LOYALTY_").lower(): v for k, v in self.env.items()})

    @property
    def bootstrap(self) -> str:
        return self.env["LOYALTY_KAFKA_URL"].removeprefix("kafka://")

    def topic(self, name: str) -> str:
        return self.env["LOYALTY_TOPIC_PREFIX"] + name

    def key(self, *parts: str) -> str:
        return self.env["LOYALTY_REDIS_PREFIX"] + ":".join(parts)

    def start_worker(self, name: str = "worker", **env: str) -> WorkerProcess:
        worker = WorkerProcess(self.tmp / name, {**self.env, **env}, free_port())
        self.processes.append(worker)
        return worker.start()

    def start_api(self) -> ApiProcess:
        api = ApiProcess(self.tmp / "api", self.env, free_port())
        self.processes.append(api)
        return api.start()

    def send(self, topic: str, events: list[dict[str, Any]]) -> None:
        produce(self.bootstrap, self.topic(topic), [keyed(e) for e in events])

    def send_raw(self, topic: str, messages: list[tuple[bytes | None, bytes]]) -> None:
        produce(self.bootstrap, self.topic(topic), messages)

    def read(self, topic: str, count: int, timeout: float = 30.0) -> list[Any]:
        return consume(self.bootstrap, self.topic(topic), count, timeout=timeout)

    def accumulator(self, household_id: str, month: str) -> dict[str, int]:
        """The bonus sums of a household-month (the by-group sums of the member insights,
        ``g:<group>`` fields of the same hash, are in ``groups``)."""
        data = self.redis.hgetall(self.key("acc", household_id, month))
        return {k.decode(): int(v) for k, v in data.items() if not k.startswith(b"g:")}

    def groups(self, household_id: str, month: str) -> dict[str, int]:
        """The eligible purchases by product group of a household-month (member insights)."""
        data = self.redis.hgetall(self.key("acc", household_id, month))
        return {k.decode()[2:]: int(v) for k, v in data.items() if k.startswith(b"g:")}


@pytest.fixture
def deployment(
    kafka: TansuBroker,
    redis_server: RedisServer,
    loyalty_env: dict[str, str],
    tmp_path: Path,
    redis_client: redis.Redis,
) -> Iterator[Deployment]:
    env = {**loyalty_env, "LOYALTY_WORKER_WEB_PORT": "0", "LOYALTY_BATCH_SECONDS": "0.1"}
    deployment = Deployment(env, tmp_path, redis_client)
    try:
        yield deployment
    finally:
        for proc in reversed(deployment.processes):
            proc.stop()
