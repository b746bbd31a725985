"""``python -m tests.support.member_payments_crash YEAR NOW``: the member payments of YEAR as
``loyalty member-payments`` makes them, in a process that is killed (SIGKILL) at its first send
to Kafka, that is, after it recorded the payments and before any reached the broker."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import datetime

from models.rules import load_rules
from stream.bonus.member_payments import run_member_payments
from stream.kafka.publisher import KafkaPublisher
from stream.settings import Settings
from stream.store.store import Store


class KilledAtFirstSend(KafkaPublisher):
    async def send(self, topic: str, key: bytes | None, value: bytes) -> None:
        print("about to send: killed", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)


async def main(year: int, now: datetime) -> None:
    settings = Settings()
    store = Store.from_url(settings.redis_url, settings.redis_prefix)
    async with KilledAtFirstSend(settings.kafka_url) as publisher:
        await run_member_payments(
            settings, load_rules(settings.rules), store, publisher, year, now=now
        )
    print("not killed", flush=True)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), datetime.fromisoformat(sys.argv[2])))
