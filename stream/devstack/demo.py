"""``loyalty demo``: the whole service on the embedded stack, fed by the checkout simulator."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import shutil
import signal
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from models.money import format_cents
from stream.devstack.processes import free_port
from stream.devstack.services import ApiProcess, WorkerProcess
from stream.devstack.simulator import Simulator
from stream.devstack.stack import EmbeddedStack
from stream.errors import UnsafeDataDir
from stream.kafka.publisher import KafkaPublisher
from stream.settings import Settings
from stream.worker import ensure_topics

#: written into a data directory the demo creates; only such a directory is ever wiped
DATA_DIR_MARKER = ".loyalty-demo"


def fresh_data_dir(data_dir: Path) -> Path:
    """``data_dir``, emptied, with the marker in it; refuses a directory the demo did not make.

    A fresh stack each run: the broker keeps topics in memory only, so old Redis state would
    not match the topics' offsets. But ``--data-dir`` is a user's path: a directory that holds
    anything and lacks our marker is not ours to delete.
    """
    if data_dir.exists():
        if not data_dir.is_dir():
            raise UnsafeDataDir(f"--data-dir {data_dir} is not a directory")
        if any(data_dir.iterdir()) and not (data_dir / DATA_DIR_MARKER).is_file():
            raise UnsafeDataDir(
                f"--data-dir {data_dir} is not empty and was not created by `loyalty demo` "
                f"(no {DATA_DIR_MARKER} in it): refusing to wipe it; "
                "pass --data-dir a new or empty directory"
            )
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True)
    (data_dir / DATA_DIR_MARKER).write_text(
        "created by `loyalty demo`, which wipes this directory on its next start\n",
        encoding="utf-8",
    )
    return data_dir


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM stops the demo as cleanly as Ctrl-C


def run_demo(args: argparse.Namespace) -> int:
    signal.signal(signal.SIGTERM, _interrupt)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request drowns the demo
    data_dir = fresh_data_dir(Path(args.data_dir).absolute())
    started = time.monotonic()
    print(f"starting the embedded stack in {data_dir} ...", flush=True)
    stack = EmbeddedStack(data_dir).start()
    processes: list[WorkerProcess | ApiProcess] = []
    try:
        print(f"  kafka (Tansu) {stack.kafka_url}\n  redis         {stack.redis_url}", flush=True)
        print(f"  clickhouse    {stack.clickhouse_url} (in the worker)", flush=True)
        settings = Settings(
            kafka_url=stack.kafka_url,
            redis_url=stack.redis_url,
            clickhouse_url=stack.clickhouse_url,
        )
        ensure_topics(settings)
        env = {**stack.environment(), "LOYALTY_WORKER_WEB_PORT": "0"}
        worker = WorkerProcess(data_dir, env, free_port())
        api = ApiProcess(data_dir, env, args.port or free_port())
        api.no_auth = True  # the demo's API serves localhost only, without clients
        processes += [worker, api]
        worker.start()
        api.start()
        print(
            f"worker ready (metrics http://127.0.0.1:{worker.port}/metrics), "
            f"API {api.base_url} ({api.base_url}/docs) after {time.monotonic() - started:.1f} s",
            flush=True,
        )
        print("simulating checkouts; Ctrl-C stops everything", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_simulate(args, settings, api.base_url, started))
    finally:
        # Ctrl-C reaches the whole process group; stop in reverse order regardless.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for proc in reversed(processes):
            proc.stop()
        stack.stop()
        print("stopped: worker, API, Redis and Kafka", flush=True)
    return 0


async def _simulate(
    args: argparse.Namespace, settings: Settings, api_url: str, started: float
) -> None:
    sim = Simulator(households=args.households)
    now = datetime.now(UTC)
    swipes_topic, register_topic = settings.topic("swipes"), settings.topic("register")
    async with KafkaPublisher(settings.kafka_url) as publisher, httpx.AsyncClient() as http:
        for key, value in sim.register_events(now):
            await publisher.send(register_topic, key, value)
        await publisher.flush()
        watched = [hh.household_id for hh in sim.households[:3]]
        sent, first_seen, last_report = 0, None, time.monotonic()
        later: list[tuple[float, tuple[bytes, bytes]]] = []
        deadline = time.monotonic() + args.seconds if args.seconds else None
        interval = 1.0 / args.rate if args.rate > 0 else 0.0
        while deadline is None or time.monotonic() < deadline:
            tick = time.monotonic()
            key, value = sim.swipe(datetime.now(UTC))
            await publisher.send(swipes_topic, key, value)
            sent += 1
            if sent % 100 == 0:
                # A brand-new card swiped before the register knows it: held, then credited.
                hh = sim.households[sent // 100 % len(sim.households)]
                card = f"639099{sent:010d}"
                await publisher.send(swipes_topic, *sim.swipe(datetime.now(UTC), card=card))
                later.append(
                    (
                        time.monotonic() + 15,
                        sim.card_event(card, hh.household_id, hh.person_ids[0], datetime.now(UTC)),
                    )
                )
            if sent % 250 == 0:
                await publisher.send(swipes_topic, key, value[:-7])  # a torn message: dead letter
            while later and later[0][0] <= time.monotonic():
                await publisher.send(register_topic, *later.pop(0)[1])
            if first_seen is None and sent % 10 == 0:
                first_seen = await _first_balance(http, api_url, watched, started)
            if time.monotonic() - last_report >= 5:
                await publisher.flush()
                last_report = time.monotonic()
                lines = []
                for household_id in watched:
                    r = await http.get(f"{api_url}/v1/households/{household_id}/bonus")
                    if r.status_code == 200:
                        body = r.json()
                        if first_seen is None and body["swipes"]:
                            first_seen = time.monotonic() - started
                            print(
                                f"first balance visible {first_seen:.1f} s after start", flush=True
                            )
                        lines.append(
                            f"  {household_id}: purchases {format_cents(body['purchases_cents'])}, "
                            f"tier {_percent(body['tier_bp'])}, "
                            f"bonus so far {format_cents(body['total_cents'])}"
                        )
                print(f"{sent} swipes sent; live balances:", *lines, sep="\n", flush=True)
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - tick)))
        await publisher.flush()


def _percent(bp: int) -> str:
    return f"{bp // 100}.{bp % 100:02d} %"


async def _first_balance(
    http: httpx.AsyncClient, api_url: str, households: list[str], started: float
) -> float | None:
    """Seconds from start to the first balance with a swipe in it, once there is one."""
    for household_id in households:
        r = await http.get(f"{api_url}/v1/households/{household_id}/bonus")
        if r.status_code == 200 and r.json()["swipes"]:
            seen = time.monotonic() - started
            print(f"first balance visible {seen:.1f} s after start", flush=True)
            return seen
    return None
