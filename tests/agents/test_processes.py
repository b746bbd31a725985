"""``loyalty worker --processes 2``: two worker processes in one group, each with its own ports."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from stream.devstack.services import WorkerProcess
from tests.agents.conftest import Deployment
from tests.support import events
from tests.support.services import metric, pid_alive, wait_until


class TwoWorkers(WorkerProcess):
    """The parent process; ``port`` is the first child's metrics port, the second has port + 1."""

    args: ClassVar[tuple[str, ...]] = ("worker", "--processes", "2")

    def url(self, index: int) -> str:
        return f"http://127.0.0.1:{self.port + index}/metrics"


def test_two_processes_share_the_partitions_and_the_work(deployment: Deployment) -> None:
    cards = {f"63900002{n:08d}": f"P{n:03d}" for n in range(20)}
    deployment.send("register", events.households_with_cards(cards))
    deployment.send(
        "swipes", [events.swipe(f"TP-{n}", card) for n, card in enumerate(list(cards) * 10)]
    )
    parent = TwoWorkers(deployment.tmp / "workers", deployment.env)
    deployment.processes.append(parent)
    parent.start()

    def partitions(index: int) -> float:
        return metric(parent.url(index), "loyalty_worker_partitions_assigned")

    # Each process serves its own metrics and holds part of the partitions of the group.
    wait_until(
        lambda: partitions(0) > 0 and partitions(1) > 0,
        timeout=90,
        what="both processes with partitions",
    )

    def applied() -> int:
        return sum(deployment.accumulator(h, "2026-11").get("swipes", 0) for h in cards.values())

    wait_until(lambda: applied() == 200, timeout=90, what="every swipe applied once")
    pid = parent.pid
    assert pid is not None
    children = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    assert len(children) == 2
    parent.stop()  # SIGTERM, passed on to both
    assert not pid_alive(pid)
    wait_until(
        lambda: not any(pid_alive(c) for c in children), timeout=30, what="both children gone"
    )
