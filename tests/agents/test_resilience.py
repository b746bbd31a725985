"""Faults of a dependency: the worker waits them out and loses nothing."""

from __future__ import annotations

from pathlib import Path

import httpx
import redis

from stream.devstack.redis_server import RedisServer
from tests.agents.conftest import Deployment
from tests.support import events
from tests.support.services import wait_until

CARD = "6390000000000555"


def test_the_worker_retries_while_redis_is_down_and_recovers_by_itself(
    deployment: Deployment, tmp_path: Path
) -> None:
    # A Redis of this test's own, so that it can be stopped and started again on its port.
    own = RedisServer(tmp_path / "own-redis", fsync="always").start()
    try:
        deployment.env["LOYALTY_REDIS_URL"] = own.url
        deployment.redis = redis.Redis.from_url(own.url)
        deployment.send("register", [events.household("HR"), events.card(CARD, "HR")])
        worker = deployment.start_worker()
        wait_until(lambda: deployment.redis.exists(deployment.key("card", CARD)), timeout=60)
        own.stop()
        deployment.send("swipes", [events.swipe(f"R-{n}", CARD) for n in range(20)])

        def retrying() -> bool:
            text = httpx.get(worker.metrics_url).text
            return 'loyalty_transient_errors_total{dependency="redis"}' in text

        wait_until(retrying, timeout=30, what="the worker retrying Redis")
        assert worker.running, "the worker must wait for Redis, not die"
        own.start()  # the same port and data directory (AOF)
        acc = wait_until(
            lambda: (a := deployment.accumulator("HR", "2026-11")).get("swipes") == 20 and a,
            timeout=60,
            what="every swipe applied after Redis came back",
        )
        assert acc["purchases_cents"] == 20 * 398
        assert worker.running
    finally:
        for proc in deployment.processes:
            proc.stop()
        deployment.processes.clear()
        deployment.redis.close()  # this test's own client (the fixture closes its own)
        own.stop()
