"""Checkout simulator for the docker-compose stack (the ``simulator`` profile).

Publishes the simulated member register (households, persons, cards, capital payments) and
then swipes at a steady rate to the Kafka the service reads (``LOYALTY_KAFKA_URL``, topic names
from ``LOYALTY_TOPIC_PREFIX``), with the odd case the service must cope with: every 100th swipe
comes from a card the register announces only 15 s later (held, then credited), every 250th
message is torn (a dead letter). Uses ``stream.devstack.simulator`` and ``stream.kafka``
from the image.

    python simulate.py [--rate 20] [--households 500] [--seed 7] [--seconds 0]

It touches ``--alive-file`` after every swipe it sends, for the container's health check.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from stream.devstack.simulator import Simulator
from stream.kafka.publisher import KafkaPublisher
from stream.settings import Settings

log = logging.getLogger("simulator")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=20.0, help="swipes per second")
    parser.add_argument("--households", type=int, default=500, help="simulated households")
    parser.add_argument("--seed", type=int, default=7, help="random seed (same seed, same cards)")
    parser.add_argument("--seconds", type=float, default=0, help="stop after this long (0: never)")
    parser.add_argument(
        "--alive-file", type=Path, default=Path("simulator.alive"), help="touched per swipe"
    )
    return parser.parse_args(argv)


async def simulate(args: argparse.Namespace, settings: Settings, stop: asyncio.Event) -> int:
    sim = Simulator(households=args.households, seed=args.seed)
    swipes, register = settings.topic("swipes"), settings.topic("register")
    sent = 0
    async with KafkaPublisher(settings.kafka_url) as publisher:
        for key, value in sim.register_events(datetime.now(UTC)):
            await publisher.send(register, key, value)
        await publisher.flush()
        log.info("register: %d households published to %s", len(sim.households), register)
        later: list[tuple[float, tuple[bytes, bytes]]] = []
        interval = 1.0 / args.rate if args.rate > 0 else 0.0
        deadline = time.monotonic() + args.seconds if args.seconds else None
        last_report = time.monotonic()
        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            tick = time.monotonic()
            key, value = sim.swipe(datetime.now(UTC))
            await publisher.send(swipes, key, value)
            sent += 1
            if sent % 100 == 0:  # a card the register does not know yet: held, then credited
                hh = sim.households[sent // 100 % len(sim.households)]
                card = f"639099{sent:010d}"
                await publisher.send(swipes, *sim.swipe(datetime.now(UTC), card=card))
                event = sim.card_event(card, hh.household_id, hh.person_ids[0], datetime.now(UTC))
                later.append((time.monotonic() + 15, event))
            if sent % 250 == 0:
                await publisher.send(swipes, key, value[:-7])  # torn JSON: a dead letter
            while later and later[0][0] <= time.monotonic():
                await publisher.send(register, *later.pop(0)[1])
            args.alive_file.touch()
            if time.monotonic() - last_report >= 10:
                await publisher.flush()
                last_report = time.monotonic()
                log.info("%d swipes sent", sent)
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - tick)))
        await publisher.flush()
    log.info("stopped after %d swipes", sent)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = Settings()

    async def run() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        return await simulate(args, settings, stop)

    return asyncio.run(run())


if __name__ == "__main__":
    raise SystemExit(main())
