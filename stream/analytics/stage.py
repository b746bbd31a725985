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
from datetime import date
from typing import Any, TypeVar

import orjson

from models.rules import Rules
from stream import metrics
from stream.analytics.audit_log import record_to_row, write_audit
from stream.analytics.erasure import delete_households
from stream.analytics.lines import is_v3, message_tuples, swipes_header
from stream.analytics.retention import Partition, drop_old_partitions
from stream.analytics.rotation import check_key
from stream.analytics.rules_table import write_bonus_rules
from stream.analytics.segments import build_segments
from stream.analytics.sink import PurchaseLineSink, SwipesMessage
from stream.clickhouse.connect import connect
from stream.clickhouse.engine import ClickHouse
from stream.clickhouse.migrate import migrate
from stream.errors import ClickHouseError
from stream.kafka.deadletters import dead_letter
from stream.kafka.publisher import Publisher
from stream.kafka.topics import Record, Topics
from stream.retry import retry_forever
from stream.settings import Settings
from stream.store.store import Store

log = logging.getLogger(__name__)
T = TypeVar("T")


#: the confirming ClickHouse pass of an erasure runs this long after the first
ERASURE_CONFIRM_SECONDS = 300.0


class LinesProcessor:
    """Writes purchase lines, and deletes erased households' rows, on one ClickHouse thread.

    Ordering with erasures: each write first drops the rows of households erased in Redis
    (checked in Redis right before the insert is queued on the thread), and the ClickHouse
    deletion of an erasure is queued on the same thread after that, so within one worker no
    row of an erased household survives. Rows another worker was inserting at the moment of
    the erasure are caught by a second deletion ``ERASURE_CONFIRM_SECONDS`` later.
    """

    def __init__(
        self,
        settings: Settings,
        publisher: Publisher,
        store: Store | None = None,
        *,
        client: ClickHouse | None = None,
        rules: Rules | None = None,
    ) -> None:
        self.settings = settings
        self.publisher = publisher
        self.store = store
        self.rules = rules  # written to bonus_rules once connected (the dashboards read them)
        self.topics = Topics(settings)
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="clickhouse")
        self._own_client = client is None  # a given client is the caller's to close
        self._client: ClickHouse | None = client
        self._sink: PurchaseLineSink | None = None
        self._starting = asyncio.Lock()  # the lines and audit agents may start it together

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, functools.partial(fn, *args, **kwargs))

    async def start(self) -> PurchaseLineSink:
        """Connect and migrate (retried until ClickHouse answers)."""
        if self._sink is not None:
            return self._sink
        async with self._starting:
            return await self._start()

    async def _start(self) -> PurchaseLineSink:
        if self._sink is None:
            if self._client is None:
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
            # after a `loyalty pseudonym rotate`, only the new key may write (KeyMismatch stops us)
            key = self.settings.pseudonym_key.get_secret_value().encode()
            await self._call(check_key, self._client, key)
            if self.rules is not None:
                rules = self.rules
                written = await retry_forever(
                    lambda: self._call(write_bonus_rules, self._client, rules),
                    dependency="clickhouse",
                    transient=(ClickHouseError, OSError),
                )
                if written:
                    log.info("Bonus rules written to ClickHouse (bonus_rules) for the dashboards")
            self._sink = PurchaseLineSink(
                self._client,
                self.settings.analytics_batch_size,
                self.settings.analytics_batch_seconds,
            )
        return self._sink

    async def process(self, records: list[Record]) -> int:
        """Write every row of ``records``; returns rows written. Bad messages: dead letters.

        A version 3 message is not read here: its header is checked and its rows wait in the
        sink for ClickHouse to parse (``purchase_swipes``); versions 1 and 2 are turned into
        rows in Python. A version 3 message ClickHouse refuses comes back in
        ``sink.rejected`` and goes to dead letters like the others."""
        started = time.perf_counter()
        sink = await self.start()
        for record in records:
            value = record.value or b""
            try:
                if is_v3(value):
                    # ClickHouse reads the rows (purchase_swipes): only the header here.
                    head = swipes_header(value)
                    if head.lines:
                        sink.add_swipes(
                            SwipesMessage(record.key, value, head.rows, head.lines, head.households)
                        )
                else:
                    sink.add_tuples(message_tuples(value))
            except (ValueError, TypeError, KeyError) as exc:
                await self._dead_letter(record.key, record.value, str(exc))
        written = await retry_forever(
            lambda: self._flush(sink), dependency="clickhouse", transient=(ClickHouseError, OSError)
        )
        rejected, sink.rejected = sink.rejected, []
        for message, reason in rejected:
            await self._dead_letter(message.key, message.value, reason)
        await self.publisher.flush()
        await self.run_erasures()
        metrics.BATCH_SIZE.labels(stage="analytics").observe(written)
        metrics.BATCH_SECONDS.labels(stage="analytics").observe(time.perf_counter() - started)
        return written

    async def _dead_letter(self, key: bytes | None, value: bytes | None, reason: str) -> None:
        metrics.DEAD_LETTERS.labels(source="purchase-lines", reason="invalid_rows").inc()
        letter = dead_letter(self.topics.purchase_lines, key, value, "invalid_rows", reason)
        await self.publisher.send(self.topics.dead_letters, key, letter)

    async def _flush(self, sink: PurchaseLineSink) -> int:
        if self.store is not None:
            erased = await retry_forever(
                lambda: self.store.erased_among(sink.household_keys()),  # type: ignore[union-attr]
                dependency="redis",
            )
            dropped = sink.drop_households(erased)
            if dropped:
                log.info("dropped %d purchase line(s) of erased households", dropped)
        # Queued right after the check, with no await in between (see the class docstring).
        return await self._call(sink.flush, force=True)

    async def run_erasures(self, now: float | None = None) -> int:
        """Delete the ClickHouse rows of households erased in Redis whose deletion is due;
        returns how many households were handled."""
        if self.store is None:
            return 0
        moment = time.time() if now is None else now
        store = self.store
        first, second = await retry_forever(lambda: store.due_erasures(moment), dependency="redis")
        keys = sorted(set(first) | set(second))
        if not keys:
            return 0
        await self.start()
        started = time.perf_counter()
        await retry_forever(
            lambda: self._call(delete_households, self._client, keys),
            dependency="clickhouse",
            transient=(ClickHouseError, OSError),
        )
        await retry_forever(
            lambda: store.erasures_done(first, second, moment + ERASURE_CONFIRM_SECONDS),
            dependency="redis",
        )
        log.info(
            "erased %d household(s) in ClickHouse in %.2f s",
            len(keys),
            time.perf_counter() - started,
        )
        return len(keys)

    async def process_audit(self, records: list[Record]) -> int:
        """``audit/1`` records into ``audit_log``, on this stage's ClickHouse thread and client
        (chdb allows one engine per process); bad records go to dead letters."""
        await self.start()
        parsed: list[dict[str, Any]] = []
        for record in records:
            try:
                entry = orjson.loads(record.value or b"")
                if not isinstance(entry, dict):
                    raise ValueError("expected a JSON object")
                record_to_row(entry)
                parsed.append(entry)
            except (ValueError, TypeError) as exc:
                metrics.DEAD_LETTERS.labels(source="audit", reason="invalid_rows").inc()
                letter = dead_letter(
                    self.topics.audit, record.key, record.value, "invalid_rows", str(exc)
                )
                await self.publisher.send(self.topics.dead_letters, record.key, letter)
        written = await retry_forever(
            lambda: self._call(write_audit, self._client, parsed),
            dependency="clickhouse",
            transient=(ClickHouseError, OSError),
        )
        await self.publisher.flush()
        return written

    async def _client_call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(client, ...)`` on the ClickHouse thread, retried while ClickHouse is down."""
        await self.start()
        client = self._client
        return await retry_forever(
            lambda: self._call(fn, client, *args, **kwargs),
            dependency="clickhouse",
            transient=(ClickHouseError, OSError),
        )

    async def drop_old_months(self, today: date, months: int) -> list[Partition]:
        """Retention: drop the monthly partitions older than ``months`` months."""
        return await self._client_call(drop_old_partitions, today, months)

    async def build_segments(self, as_of: date, months: int, excluded: set[int], tz: str) -> int:
        """(Re)build the segments of ``as_of``'s month, ``excluded`` households left out."""
        return await self._client_call(build_segments, as_of, months, tz=tz, excluded=excluded)

    async def close(self) -> None:
        if self._client is not None and self._own_client:
            await self._call(self._client.close)
        self._thread.shutdown(wait=True)
