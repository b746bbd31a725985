"""The analytics stage: ``loyalty.purchase-lines`` (internal) -> ClickHouse ``purchase_lines``.

Separate from the bonus path on purpose: ClickHouse being slow or down delays analytics
only, never balances. ClickHouse calls block (chdb runs in-process), so they run on one
dedicated thread, which is also what the server client's lack of thread safety asks for.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import orjson

from stream import metrics
from stream.analytics.sink import PurchaseLineSink
from stream.clickhouse.connect import connect
from stream.clickhouse.engine import ClickHouse
from stream.clickhouse.migrate import migrate
from stream.errors import ClickHouseError
from stream.kafka.deadletters import dead_letter
from stream.kafka.publisher import Publisher
from stream.kafka.topics import Record, Topics
from stream.retry import retry_forever
from stream.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")


class LinesProcessor:
    def __init__(self, settings: Settings, publisher: Publisher) -> None:
        self.settings = settings
        self.publisher = publisher
        self.topics = Topics(settings)
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="clickhouse")
        self._client: ClickHouse | None = None
        self._sink: PurchaseLineSink | None = None

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, functools.partial(fn, *args, **kwargs))

    async def start(self) -> PurchaseLineSink:
        """Connect and migrate (retried until ClickHouse answers)."""
        if self._sink is None:
            self._client = await retry_forever(
                lambda: self._call(connect, self.settings.clickhouse_url),
                dependency="clickhouse",
                transient=(ClickHouseError, OSError),
            )
            applied = await retry_forever(
                lambda: self._call(migrate, self._client),
                dependency="clickhouse",
                transient=(ClickHouseError, OSError),
            )
            if applied:
                log.info("ClickHouse migrations applied: %s", ", ".join(applied))
            self._sink = PurchaseLineSink(
                self._client,
                self.settings.analytics_batch_size,
                self.settings.analytics_batch_seconds,
            )
        return self._sink

    async def process(self, records: list[Record]) -> int:
        """Write every row of ``records``; returns rows written. Bad messages: dead letters."""
        started = time.perf_counter()
        sink = await self.start()
        for record in records:
            try:
                rows = orjson.loads(record.value or b"")
                if not isinstance(rows, list):
                    raise ValueError("expected a JSON array of rows")
                sink.add(rows)
            except (ValueError, TypeError, KeyError) as exc:
                metrics.DEAD_LETTERS.labels(source="purchase-lines", reason="invalid_rows").inc()
                letter = dead_letter(
                    self.topics.purchase_lines, record.key, record.value, "invalid_rows", str(exc)
                )
                await self.publisher.send(self.topics.dead_letters, record.key, letter)
        written = await retry_forever(
            lambda: self._call(sink.flush, force=True),
            dependency="clickhouse",
            transient=(ClickHouseError, OSError),
        )
        await self.publisher.flush()
        metrics.BATCH_SIZE.labels(stage="analytics").observe(written)
        metrics.BATCH_SECONDS.labels(stage="analytics").observe(time.perf_counter() - started)
        return written

    async def close(self) -> None:
        if self._client is not None:
            await self._call(self._client.close)
        self._thread.shutdown(wait=True)
