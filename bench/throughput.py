"""Swipes per second through one worker on the embedded stack (Tansu, Valkey/Redis, chdb).

Pre-loads N swipes onto the topic, starts one worker, and times from the worker being ready
until every swipe is applied (read off the worker's own metrics). Repeats and prints medians.
Usage: python bench/throughput.py [--swipes 20000] [--runs 3] [--batch-size 500]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stream.devstack.processes import free_port
from stream.devstack.services import WorkerProcess
from stream.devstack.simulator import Simulator
from stream.devstack.stack import EmbeddedStack
from stream.kafka.publisher import KafkaPublisher
from stream.kafka.topics import create_topics_async


def counter(metrics_port: int, name: str) -> int:
    """Sum of all series of a counter on the worker's /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as r:
        text = r.read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


def processed(metrics_port: int) -> int:
    return counter(metrics_port, "loyalty_swipes_total")


def register_applied(metrics_port: int) -> int:
    return counter(metrics_port, "loyalty_register_events_total")


async def load_register(stack: EmbeddedStack, prefix: str, sim: Simulator) -> int:
    async with KafkaPublisher(stack.kafka_url, max_batch_size=1 << 20) as pub:
        events = sim.register_events(datetime.now(UTC))
        for key, value in events:
            await pub.send(f"{prefix}register", key, value)
    return len(events)


async def load(stack: EmbeddedStack, prefix: str, sim: Simulator, swipes: int) -> float:
    async with KafkaPublisher(stack.kafka_url, max_batch_size=1 << 20) as pub:
        started = time.perf_counter()
        now = datetime.now(UTC)
        for _ in range(swipes):
            key, value = sim.swipe(now)
            await pub.send(f"{prefix}swipes", key, value)
        await pub.flush()
        return swipes / (time.perf_counter() - started)


def one_run(stack: EmbeddedStack, run: int, args: argparse.Namespace, data: Path) -> float:
    prefix = f"bench{run}."
    asyncio.run(
        create_topics_async(
            stack.kafka.bootstrap,
            {
                f"{prefix}{t}": 4
                for t in ("swipes", "register", "dead-letters", "purchase-lines", "bonus-payouts")
            },
        )
    )
    sim = Simulator(households=args.households, seed=run)
    registered = asyncio.run(load_register(stack, prefix, sim))
    env = {
        **stack.environment(),
        "LOYALTY_TOPIC_PREFIX": prefix,
        "LOYALTY_GROUP_ID": f"bench{run}",
        "LOYALTY_REDIS_PREFIX": f"bench{run}:",
        "LOYALTY_WORKER_WEB_PORT": "0",
        "LOYALTY_BATCH_SIZE": str(args.batch_size),
        "LOYALTY_LOG_LEVEL": "warn",
        "LOYALTY_CLICKHOUSE_URL": f"chdb://{data}/chdb{run}",
    }
    # Phase 1: the register (so that the swipes measured are not held for unknown cards).
    worker = WorkerProcess(data / f"run{run}-register", env, free_port()).start()
    try:
        deadline = time.perf_counter() + 300
        while register_applied(worker.port) < registered and time.perf_counter() < deadline:
            time.sleep(0.1)
    finally:
        worker.stop()
    # Phase 2: swipes already waiting on the topic, one fresh worker, timed from ready to done.
    rate = asyncio.run(load(stack, prefix, sim, args.swipes))
    worker = WorkerProcess(data / f"run{run}", env, free_port())
    worker.start()
    try:
        started = time.perf_counter()
        deadline = started + 600
        while (done := processed(worker.port)) < args.swipes and time.perf_counter() < deadline:
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
    finally:
        worker.stop()
    per_second = done / elapsed
    print(
        f"run {run}: {done} swipes in {elapsed:.2f} s = {per_second:,.0f} swipes/s "
        f"(producer loaded them at {rate:,.0f}/s)",
        flush=True,
    )
    return per_second


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--swipes", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--households", type=int, default=2_000)
    parser.add_argument("--batch-size", type=int, default=500)
    args = parser.parse_args()
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    print(f"machine: {os.cpu_count()} cores, {cpu}; Python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp, EmbeddedStack(Path(tmp) / "stack") as stack:
        results = [one_run(stack, run, args, Path(tmp)) for run in range(1, args.runs + 1)]
    print(
        f"median: {statistics.median(results):,.0f} swipes/s through one worker "
        f"({args.swipes} swipes per run, batch size {args.batch_size}, {args.runs} runs)"
    )


if __name__ == "__main__":
    main()
