"""Fault injection at scale (``make chaos``; ``make test`` runs the one-kill version in
test_swipes.py): two workers in one group, SIGKILLed again and again mid-stream while a large
backlog drains. Nothing may be lost and nothing counted twice, to the cent.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time

import orjson
import pytest

from stream.devstack.processes import free_port
from tests.agents.conftest import Deployment
from tests.agents.test_swipes import expected_accumulators, random_swipes
from tests.support import events
from tests.support.services import wait_until

pytestmark = pytest.mark.slow

SWIPES = int(os.environ.get("LOYALTY_CHAOS_SWIPES", "100000"))
KILLS = int(os.environ.get("LOYALTY_CHAOS_KILLS", "8"))


def test_workers_killed_again_and_again_lose_nothing_and_count_nothing_twice(
    deployment: Deployment,
) -> None:
    rng = random.Random(8)
    cards = {f"63900002{n:08d}": f"C{n:03d}" for n in range(200)}
    deployment.send("register", events.households_with_cards(cards))
    swipes = random_swipes(rng, list(cards), SWIPES, "X")
    duplicates = rng.sample(swipes, SWIPES // 10)  # redelivered by the checkouts themselves
    messages = [(orjson.loads(s)["card"].encode(), s) for s in [*swipes, *duplicates]]
    rng.shuffle(messages)
    expected = expected_accumulators(swipes, cards)

    def applied() -> int:
        return sum(deployment.accumulator(h, m).get("swipes", 0) for h, m in expected)

    workers = [
        deployment.start_worker(
            f"worker-{i}", LOYALTY_BATCH_SIZE="100", LOYALTY_WORKER_METRICS_PORT=str(free_port())
        )
        for i in range(2)
    ]
    wait_until(
        lambda: all(deployment.redis.exists(deployment.key("card", c)) for c in cards),
        timeout=90,
        what="the register applied",
    )

    def checkouts() -> None:  # a steady stream (about 1,000 swipes/s) while workers die
        for start in range(0, len(messages), 1000):
            deployment.send_raw("swipes", messages[start : start + 1000])
            time.sleep(1.0)  # slower than the workers: every kill lands mid-stream

    sending = threading.Thread(target=checkouts, daemon=True)
    sending.start()
    kills = 0
    progress = [applied()]
    while kills < KILLS and (sending.is_alive() or applied() < len(swipes)):
        victim = rng.choice(workers)
        time.sleep(rng.uniform(0.5, 2.0))
        victim.kill(signal.SIGKILL)
        kills += 1
        victim.restart()
        progress.append(applied())
    print(f"{kills} kills; swipes applied at each: {progress}")
    assert kills == KILLS, f"only {kills} kills landed mid-stream: raise LOYALTY_CHAOS_SWIPES"
    sending.join()
    wait_until(lambda: applied() >= len(swipes), timeout=600, what="every swipe applied")
    actual = {key: deployment.accumulator(*key) for key in expected}
    assert actual == expected
    assert applied() == len(swipes)
