"""Batch delivery inside Faust: whole fetched batches to a handler, acked only once handled.

Faust's per-event path (the fetcher's ``wait_first`` per message, the Conductor, a channel
queue, the stream iterator) costs about 150 microseconds of main-thread Python per event on
our machines. ``BatchConsumer`` replaces only the drain loop of Faust's aiokafka consumer: Faust
keeps group membership, assignment, rebalances, timers, the web server and the offset commits.

For each fetch, the drain loop groups the records of every topic with a registered handler (a
*lane*), marks each message in flight (``track_message``) and queues it on its lane. A lane
processes its batches in order: ``prepare`` (CPU: decode, validate) runs for batch N+1 while
batch N waits in ``apply`` on Redis or the producer (for a handler that allows it, several
``apply`` calls overlap); the messages of a batch are acked only after its ``apply`` returned
and every earlier batch's was acked, in offset order, and only if the consumer
generation has not changed since the batch was fetched (so a rebalance never commits an
unhandled message: the new owner replays it, idempotently). A handler that raises acks
nothing and crashes the app, as the per-event agents did. Topics without a handler (Faust's
own) still go through Faust's per-event path.

This leans on Faust internals (``_drain_messages``, ``_wait_next_records``, ``_to_message``,
``_read_offset``, ``_add_gap``, ``on_buffer_full``/``on_buffer_drop``, the Monitor's
``stream_inbound_time``); faust-streaming is
pinned exactly and ``tests/stream/kafka/test_batches.py`` checks each of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from time import monotonic
from typing import Any, Protocol

from faust.transport.consumer import ensure_TP
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, Message

from stream.kafka.topics import Record

log = logging.getLogger(__name__)


class BatchHandler(Protocol):
    """What a lane drives: ``prepare`` (sync, no I/O) then ``apply`` (async), per batch."""

    def prepare(self, records: list[Record]) -> Any: ...

    async def apply(self, prepared: Any) -> object: ...


class ProcessHandler:
    """A ``BatchHandler`` over a plain ``async process(records)`` (nothing to prepare)."""

    def __init__(self, process: Callable[[list[Record]], Awaitable[object]]) -> None:
        self._process = process

    def prepare(self, records: list[Record]) -> list[Record]:
        return records

    async def apply(self, prepared: list[Record]) -> object:
        return await self._process(prepared)


@dataclass(frozen=True, slots=True)
class LaneSpec:
    """A registered handler: ``make()`` is called once, in the worker's event loop."""

    topic: str
    name: str
    make: Callable[[], BatchHandler]
    max_records: int  # per handler call; larger fetches are split, smaller ones joined
    # ``apply`` calls running at once (acks still in order). More than 1 only for a handler
    # whose batches may be applied in any order (idempotent, order-free effects).
    in_flight: int = 1
    # Seconds a lane with fewer than ``max_records`` queued waits for more (from the arrival
    # of the oldest queued batch): fewer, larger handler calls where each call has a high fixed
    # cost (a ClickHouse insert). 0: handle what a fetch brought at once.
    linger: float = 0.0
    # Messages queued before fetching the topic pauses (0: 8 x ``max_records``).
    buffer: int = 0


@dataclass(slots=True)
class _Batch:
    generation: int
    messages: list[Message]
    tps: set[TP] = field(default_factory=set)
    arrived: float = field(default_factory=monotonic)


class _Lane:
    """One topic's queue of fetched batches and the task that handles them in order."""

    def __init__(self, consumer: BatchConsumer, spec: LaneSpec) -> None:
        self.consumer = consumer
        self.spec = spec
        self.handler: BatchHandler | None = None
        self.queue: deque[_Batch] = deque()
        self.queued = 0  # messages waiting in ``queue``
        self.wakeup = asyncio.Event()
        self.paused: set[TP] = set()
        self.task: asyncio.Task[None] | None = None

    @property
    def high_water(self) -> int:
        """Queued messages at which fetching this topic pauses; it resumes below half of it,
        early enough that the next fetch (thousands of messages, ~100 ms on Tansu) lands
        before the queue runs dry."""
        return self.spec.buffer or 8 * self.spec.max_records

    def put(self, batch: _Batch) -> None:
        self.queue.append(batch)
        self.queued += len(batch.messages)
        self.wakeup.set()
        if self.queued >= self.high_water:
            # Stop fetching this topic until the lane caught up (Faust's own buffer-full path).
            for tp in batch.tps - self.paused:
                self.consumer.on_buffer_full(tp)
                self.paused.add(tp)

    def _take(self) -> _Batch:
        """The next batch: queued batches of one generation joined up to ``max_records``."""
        first = self.queue.popleft()
        limit = self.spec.max_records
        if len(first.messages) > limit:
            rest = _Batch(first.generation, first.messages[limit:], first.tps, first.arrived)
            first = _Batch(first.generation, first.messages[:limit], first.tps, first.arrived)
            self.queue.appendleft(rest)
        else:
            while (
                self.queue
                and self.queue[0].generation == first.generation
                and len(first.messages) < limit
            ):
                following = self.queue.popleft()
                room = limit - len(first.messages)
                if len(following.messages) > room:  # fill up to the limit, keep the rest
                    rest = _Batch(
                        following.generation,
                        following.messages[room:],
                        following.tps,
                        following.arrived,
                    )
                    self.queue.appendleft(rest)
                    following = _Batch(
                        following.generation, following.messages[:room], following.tps
                    )
                first.messages += following.messages
                first.tps |= following.tps
        self.queued -= len(first.messages)
        if self.paused and self.queued < self.high_water // 2:
            for tp in self.paused:
                self.consumer.on_buffer_drop(tp)
            self.paused.clear()
        return first

    async def run(self) -> None:
        consumer = self.consumer
        app = consumer.app
        self.handler = handler = self.spec.make()
        depth = self.spec.in_flight
        linger = self.spec.linger
        in_flight: deque[tuple[_Batch, asyncio.Task[object]]] = deque()
        try:
            while True:
                if not self.queue:
                    if in_flight:
                        await self._finish(*in_flight.popleft())
                        continue
                    self.wakeup.clear()
                    await self.wakeup.wait()
                    continue
                if linger and self.queued < self.spec.max_records:
                    wait = self.queue[0].arrived + linger - monotonic()
                    if wait > 0:
                        if in_flight:  # ack what is done before lingering
                            await self._finish(*in_flight.popleft())
                            continue
                        self.wakeup.clear()
                        with contextlib.suppress(asyncio.TimeoutError):
                            await asyncio.wait_for(self.wakeup.wait(), wait)
                        continue
                batch = self._take()
                if batch.generation != app.consumer_generation_id:
                    # Fetched before a rebalance: Faust seeks every assigned partition back to
                    # its committed offset, so these come again (here or at the new owner).
                    continue
                records = [Record(m.key, m.value) for m in batch.messages]
                prepared = handler.prepare(records)
                while len(in_flight) >= depth:
                    await self._finish(*in_flight.popleft())  # oldest first: acks in order
                in_flight.append((batch, asyncio.ensure_future(handler.apply(prepared))))
        except asyncio.CancelledError:
            for _, task in in_flight:
                task.cancel()
            raise
        except Exception as exc:
            for _, task in in_flight:
                task.cancel()
            # Handlers route bad input themselves and retry transient faults; reaching here is
            # a bug. Unacked, the batch is not committed: crash and let a restart replay it.
            log.critical(
                "batch handler %s failed; stopping the worker so nothing is acked",
                self.spec.name,
            )
            await app.crash(exc)

    async def _finish(self, batch: _Batch, task: asyncio.Task[object]) -> None:
        await task  # raises what the handler raised: nothing acked
        consumer = self.consumer
        if (
            batch.generation == consumer.app.consumer_generation_id
            and consumer.flow_active
            and not consumer.app.rebalancing
        ):
            ack = consumer.ack
            for message in batch.messages:
                ack(message)
        # What Faust's stream would have told its Monitor per event; its livelock check
        # (``verify_event_path``) reads it and would otherwise report the lane as stalled.
        inbound = getattr(consumer.app.monitor, "stream_inbound_time", None)
        if inbound is not None:
            now = monotonic()
            for tp in batch.tps:
                inbound[tp] = now


# How long the broker may hold a fetch waiting for data. Faust hard-codes 1500 ms; on Tansu
# that long poll is what a swipe waits for before the worker sees it (measured at 2,000
# swipes/s offered: p50 563 ms, p99 1,162 ms send-to-visible with 1500; 58 and 135 with 100).
FETCH_MAX_WAIT_MS = 100


class BatchConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's aiokafka consumer thread, with a short fetch wait (``FETCH_MAX_WAIT_MS``)."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # read by the consumer's start()
        return consumer


class BatchConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer with a drain loop that hands whole batches to lanes."""

    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return BatchConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def _lanes(self) -> dict[str, _Lane]:
        specs: dict[str, LaneSpec] = getattr(self.app, "batch_lanes", {})
        return {topic: _Lane(self, spec) for topic, spec in specs.items()}

    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover - Faust's task
        lanes = self._lanes()
        if not lanes:
            await super()._drain_messages(fetcher)
            return
        for lane in lanes.values():
            lane.task = asyncio.ensure_future(lane.run())
        try:
            await self._drain_batches(fetcher, lanes)
        except self.consumer_stopped_errors:
            if not self.transport.app.should_stop:
                raise
            log.info("Broker stopped consumer, shutting down...")
        except asyncio.CancelledError:
            if not self.transport.app.should_stop:
                raise
        finally:
            for lane in lanes.values():
                if lane.task is not None:
                    lane.task.cancel()
            await asyncio.gather(
                *(lane.task for lane in lanes.values() if lane.task is not None),
                return_exceptions=True,
            )

    async def _drain_batches(self, fetcher: Any, lanes: dict[str, _Lane]) -> None:
        app = self.app
        callback = self.callback
        consumer_stopped = self._stopped.is_set
        fetcher_stopped = fetcher._stopped.is_set
        read_offset = self._read_offset
        acks_enabled_for = app.topics.acks_enabled_for
        to_message = self._to_message
        track = self.track_message
        commit_every = self._commit_every
        while not (consumer_stopped() or fetcher_stopped()):
            for lane in lanes.values():
                if lane.task is not None and lane.task.done():
                    return  # a lane crashed the app (or was cancelled): fetch no more
            records, active = await self._wait_next_records(1.0)
            generation = app.consumer_generation_id
            if not records or self.should_stop:
                await asyncio.sleep(0)
                continue
            if not self.flow_active:
                # Fetched while a rebalance stopped the flow: Faust's getmany seeks back.
                try:
                    await self.perform_seek()
                except Exception as exc:
                    log.warning("seek to committed offsets failed: %r", exc)
                continue
            batches: dict[str, _Batch] = {}
            for tp, tp_records in records.items():
                if active is not None and tp not in active and tp not in self._buffered_partitions:
                    continue
                target = lanes.get(tp.topic)
                last = read_offset[tp]
                gaps = acks_enabled_for(tp.topic)
                if target is None:
                    for record in tp_records:
                        offset = record.offset
                        if last is None or offset >= last:
                            if gaps and last is not None and offset - last > 1:
                                await self._add_gap(tp, *gap_bounds(last, offset))
                            await callback(to_message(tp, record))
                            read_offset[tp] = last = offset
                    continue
                batch = batches.get(tp.topic)
                if batch is None:
                    batch = batches[tp.topic] = _Batch(generation, [])
                batch.tps.add(ensure_TP(tp))  # aiokafka's tuple -> Faust's (Faust asserts it)
                messages = batch.messages
                for record in tp_records:
                    offset = record.offset
                    if last is not None and offset < last:
                        continue  # already read (Faust drops these too)
                    if gaps and last is not None and offset - last > 1:
                        # Offsets that will never come (compaction, transaction markers):
                        # registered so that commits can pass them.
                        await self._add_gap(tp, *gap_bounds(last, offset))
                    message = to_message(tp, record)
                    track(message)
                    messages.append(message)
                    last = offset
                read_offset[tp] = last
            for topic, batch in batches.items():
                if batch.messages:
                    lanes[topic].put(batch)
            if commit_every is not None and self._n_acked >= commit_every:
                self._n_acked = 0
                await self.commit()
            await asyncio.sleep(0)


def gap_bounds(last_read: int, offset: int) -> tuple[int, int]:
    """The offsets strictly between the last one read and ``offset``, as ``_add_gap`` takes
    them (both ends inclusive). Faust's own drain loop passes ``offset`` as the end, which marks
    the message about to be handled as if it were a gap: a commit could then pass it."""
    return last_read + 1, offset - 1


class BatchTransport(faust_aiokafka.Transport):
    Consumer = BatchConsumer
