"""The embedded stack: broker and Redis as children, ClickHouse as chdb in-process."""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType
from typing import Self

from stream.devstack.broker import TansuBroker
from stream.devstack.redis_server import RedisServer

# -- the stack ----------------------------------------------------------------------------


class EmbeddedStack:
    """Kafka (Tansu) and Redis under ``data_dir``; ClickHouse is chdb in ``<data_dir>/chdb``."""

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        kafka_port: int | None = None,
        redis_port: int | None = None,
        redis_fsync: str = "everysec",
    ) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.kafka = TansuBroker(self.data_dir / "kafka", kafka_port)
        self.redis = RedisServer(self.data_dir / "redis", redis_port, fsync=redis_fsync)

    @property
    def kafka_url(self) -> str:
        return self.kafka.url

    @property
    def redis_url(self) -> str:
        return self.redis.url

    @property
    def clickhouse_url(self) -> str:
        return f"chdb://{self.data_dir / 'chdb'}"

    def environment(self) -> dict[str, str]:
        """The ``LOYALTY_*`` URLs pointing at this stack."""
        return {
            "LOYALTY_KAFKA_URL": self.kafka_url,
            "LOYALTY_REDIS_URL": self.redis_url,
            "LOYALTY_CLICKHOUSE_URL": self.clickhouse_url,
        }

    def start(self) -> Self:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.kafka.start()
            self.redis.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop everything, in reverse order of start; every part is stopped even if one fails."""
        errors: list[BaseException] = []
        for proc in (self.redis, self.kafka):
            try:
                proc.stop()
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise errors[0]

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
