"""Batch delivery across a rebalance: no offset is ever committed past an unhandled message.

Worker A reads Redis through a proxy the test can stall. With A's batch stuck in Redis (in
flight, not handled), worker B joins the group: the partitions are split anew, B handles its
share and commits. At that moment, for every partition, the committed offset must not pass
the first message whose swipe is not in Redis. Then the proxy lets A's stale batch through
(after the rebalance: A must not ack it; the partition's owner replays it) and every swipe
ends up counted exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import threading
import time
from collections.abc import Iterator

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from stream.devstack.processes import free_port
from tests.agents.conftest import Deployment
from tests.agents.test_swipes import expected_accumulators
from tests.support import events
from tests.support.services import consume, partitions_of, wait_until


class StallingProxy:
    """A TCP proxy to a local port whose traffic the test can hold (``stall``) and release."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.flowing = threading.Event()
        self.flowing.set()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._sockets: list[socket.socket] = [self._server]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            self._sockets += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                self.flowing.wait()
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def stall(self) -> None:
        self.flowing.clear()

    def release(self) -> None:
        self.flowing.set()

    def close(self) -> None:
        self.flowing.set()
        for s in self._sockets:
            s.close()


@pytest.fixture
def redis_proxy(deployment: Deployment) -> Iterator[StallingProxy]:
    port = int(deployment.env["LOYALTY_REDIS_URL"].rsplit(":", 1)[1].split("/", 1)[0])
    proxy = StallingProxy(port)
    try:
        yield proxy
    finally:
        proxy.close()


def committed_offsets(d: Deployment, partitions: set[int]) -> dict[int, int]:
    """The group's committed offset per partition (-1: none), read without joining the group."""

    async def run() -> dict[int, int]:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=d.bootstrap,
            group_id=d.env["LOYALTY_GROUP_ID"],
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            found = {}
            for p in partitions:
                offset = await consumer.committed(TopicPartition(d.topic("swipes"), p))
                found[p] = -1 if offset is None else offset
            return found
        finally:
            await consumer.stop()

    return asyncio.run(run())


def test_no_offset_is_committed_past_an_unhandled_message_across_a_rebalance(
    deployment: Deployment, redis_proxy: StallingProxy
) -> None:
    rng = random.Random(11)
    cards = {f"63900001{n:08d}": f"R{n:03d}" for n in range(40)}
    deployment.send("register", events.households_with_cards(cards))
    swipes = [
        events.encode(
            events.swipe(
                f"RB-{n}",
                rng.choice(list(cards)),
                lines=[
                    {"sku": "s", "product_group": "dairy", "quantity": 1, "amount_cents": 1 + n}
                ],
            )
        )
        for n in range(3000)
    ]
    deployment.send_raw("swipes", [(orjson.loads(s)["card"].encode(), s) for s in swipes])
    expected = expected_accumulators(swipes, cards)
    on_topic = consume(deployment.bootstrap, deployment.topic("swipes"), len(swipes))
    event_at = {(r.partition, r.offset): orjson.loads(r.value)["event_id"] for r in on_topic}
    partitions = partitions_of(deployment.bootstrap, deployment.topic("swipes"))
    assert len(partitions) > 1

    def applied_ids() -> set[str]:
        """Swipes handled: applied (in a seen set) or held for a card not yet registered (a
        card whose register event sits on a partition of the stalled worker A)."""
        ids: set[str] = set()
        # held first: a held swipe credited meanwhile is then found in its seen set
        for key in deployment.redis.scan_iter(deployment.key("held", "*")):
            if deployment.redis.type(key) == b"hash":
                ids |= {m.decode() for m in deployment.redis.hkeys(key)}
        for key in deployment.redis.scan_iter(deployment.key("seen", "*")):
            ids |= {m.decode() for m in deployment.redis.smembers(key)}
        return ids

    def applied() -> int:
        return sum(deployment.accumulator(h, m).get("swipes", 0) for h, m in expected)

    proxied = f"redis://127.0.0.1:{redis_proxy.port}/0"
    deployment.start_worker("worker-a", LOYALTY_BATCH_SIZE="50", LOYALTY_REDIS_URL=proxied)
    wait_until(lambda: applied() >= 300, timeout=60, what="worker A under way")
    redis_proxy.stall()  # A's next Redis call hangs: its batch is in flight, unhandled
    stalled_at = applied()
    assert stalled_at < len(swipes), "worker A finished before the stall; stall earlier"

    deployment.start_worker(
        "worker-b", LOYALTY_BATCH_SIZE="50", LOYALTY_WORKER_METRICS_PORT=str(free_port())
    )
    # B gets part of the partitions in the rebalance and handles them (A stays stuck).
    wait_until(lambda: applied() >= stalled_at + 300, timeout=90, what="worker B under way")

    def first_unhandled() -> dict[int, int]:
        done = applied_ids()
        ends = {p: 1 + max(o for q, o in event_at if q == p) for p in partitions}
        first = dict(ends)
        for (p, offset), event_id in event_at.items():
            if event_id not in done and offset < first[p]:
                first[p] = offset
        return first

    # Committed offsets first, then what is handled: a commit is only ever made after the
    # messages below it were handled, so this order cannot make a correct worker look wrong.
    checks = 0
    stuck = False
    while checks < 5:
        committed = committed_offsets(deployment, partitions)
        unhandled = first_unhandled()
        for p in partitions:
            assert committed[p] <= unhandled[p], (
                f"partition {p}: committed {committed[p]} but offset {unhandled[p]} unhandled"
            )
        stuck = stuck or any(
            unhandled[p] < 1 + max(o for q, o in event_at if q == p) for p in partitions
        )
        checks += 1
        time.sleep(1)
    assert stuck, "no message was unhandled while A was stalled: the test proved nothing"
    assert applied() < len(swipes), "A's partitions should still be waiting"

    # A's stale batch now reaches Redis (after the rebalance): it must not be acked by A, and
    # whoever owns its partition now replays it. Everything is counted exactly once.
    redis_proxy.release()
    wait_until(lambda: applied() >= len(swipes), timeout=120, what="every swipe applied")
    actual = {key: deployment.accumulator(*key) for key in expected}
    assert actual == expected
    assert applied() == len(swipes)
    ends = {p: 1 + max(o for q, o in event_at if q == p) for p in partitions}
    wait_until(
        lambda: committed_offsets(deployment, partitions) == ends,
        timeout=60,
        what="every offset committed once handled",
    )
