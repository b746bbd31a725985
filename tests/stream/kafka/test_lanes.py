"""A lane's scheduling (``stream.kafka.batches._Lane``): batch sizes, lingering, ack order.

Pure: the lane runs against a stand-in of the few consumer attributes it reads (generation,
flow, ``ack``), no broker. What it acks across a real rebalance is
``tests/agents/test_rebalance.py``.
"""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

from faust.types import TP

from stream.kafka.batches import LaneSpec, _Batch, _Lane
from stream.kafka.topics import Record

TP0 = TP("t", 0)


class Handler:
    def __init__(self) -> None:
        self.calls: list[tuple[float, list[bytes | None]]] = []

    def prepare(self, records: list[Record]) -> list[Record]:
        return records

    async def apply(self, prepared: list[Record]) -> None:
        self.calls.append((time.monotonic(), [r.value for r in prepared]))


class Consumer:
    def __init__(self) -> None:
        self.acked: list[int] = []
        self.flow: list[tuple[str, int]] = []  # ("pause" | "resume", messages queued)
        self.flow_active = True
        self.app = SimpleNamespace(
            consumer_generation_id=1, rebalancing=False, monitor=None, crash=self._crash
        )

    async def _crash(self, exc: BaseException) -> None:
        raise AssertionError(f"the lane crashed: {exc!r}")

    def ack(self, message: Any) -> None:
        self.acked.append(message.offset)

    def on_buffer_full(self, tp: TP) -> None:
        self.flow.append(("pause", self.lane.queued))

    def on_buffer_drop(self, tp: TP) -> None:
        self.flow.append(("resume", self.lane.queued))

    lane: _Lane


def batch(*offsets: int) -> _Batch:
    messages: list[Any] = [
        SimpleNamespace(offset=o, key=b"k", value=str(o).encode()) for o in offsets
    ]
    return _Batch(1, messages, {TP0})


async def _run(linger: float, max_records: int, feed: list[tuple[float, _Batch]]) -> Any:
    consumer = Consumer()
    handler = Handler()
    spec = LaneSpec("t", "t", lambda: handler, max_records, 1, linger)
    lane = _Lane(consumer, spec)  # type: ignore[arg-type]
    lane.task = asyncio.ensure_future(lane.run())
    started = time.monotonic()
    for delay, b in feed:
        await asyncio.sleep(delay)
        lane.put(b)
    await asyncio.sleep(linger + 0.2)
    lane.task.cancel()
    return started, handler.calls, consumer.acked


def test_without_linger_each_fetch_is_handled_at_once() -> None:
    _, calls, acked = asyncio.run(_run(0.0, 100, [(0, batch(0, 1)), (0.05, batch(2))]))
    assert [values for _, values in calls] == [[b"0", b"1"], [b"2"]]
    assert acked == [0, 1, 2]


def test_a_lingering_lane_joins_fetches_until_the_time_is_up() -> None:
    feed = [(0, batch(0)), (0.05, batch(1, 2)), (0.05, batch(3))]
    started, calls, acked = asyncio.run(_run(0.5, 100, feed))
    assert [values for _, values in calls] == [[b"0", b"1", b"2", b"3"]]
    assert calls[0][0] - started >= 0.5  # from the oldest batch's arrival
    assert acked == [0, 1, 2, 3]


def test_a_lingering_lane_goes_at_once_when_the_batch_is_full() -> None:
    feed = [(0, batch(0, 1)), (0.05, batch(2, 3, 4))]
    started, calls, acked = asyncio.run(_run(1.0, 4, feed))
    assert [values for _, values in calls] == [[b"0", b"1", b"2", b"3"], [b"4"]]
    assert calls[0][0] - started < 0.5  # full: no waiting
    assert calls[1][0] - started >= 1.0  # the rest waited for more, then went
    assert acked == [0, 1, 2, 3, 4]


def test_fetching_pauses_at_eight_batches_queued_and_resumes_below_half() -> None:
    consumer = Consumer()
    spec = LaneSpec("t", "t", Handler, 10, 1)
    lane = consumer.lane = _Lane(consumer, spec)  # type: ignore[arg-type]
    assert lane.high_water == 80
    lane.put(batch(*range(50)))
    assert consumer.flow == []
    lane.put(batch(*range(50, 85)))
    assert consumer.flow == [("pause", 85)]
    taken = 0
    while consumer.flow[-1][0] != "resume":
        taken += len(lane._take().messages)
    # Resumed as soon as fewer than 40 were queued, with four batches' worth still to handle.
    assert consumer.flow[-1] == ("resume", 35) and taken == 50
    sized = _Lane(consumer, LaneSpec("t", "t", Handler, 10, 1, buffer=25))  # type: ignore[arg-type]
    assert sized.high_water == 25  # a lane of large messages sets its own
