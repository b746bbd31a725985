"""API latency at a fixed request rate, with auth, audit and rate limiting on, and without.

Starts the embedded stack (Tansu, Valkey/Redis), seeds households through the real register
and swipe paths, then runs the API (one uvicorn process) twice:

- ``secured``: named clients (bearer token, SHA-256 digests), every read audited to
  ``loyalty.audit`` on the broker before it is answered, the per-client rate limiter on
  (its limit set above the offered rate, so it is paid for but refuses nothing);
- ``open``: no authentication, no audit record, no rate limiter.

Against each, an open-loop load (requests sent on a fixed schedule, latency measured from the
scheduled time, so a slow server is not hidden by a slower client) of household and card
reads; prints p50/p90/p99/max and the achieved rate. Usage:

    python bench/api_latency.py [--rate 2000] [--seconds 10] [--households 500]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import orjson

from models.rules import load_rules
from stream.auth import add_client
from stream.bonus.register import RegisterProcessor
from stream.bonus.swipes import SwipeProcessor
from stream.devstack.processes import free_port
from stream.devstack.stack import EmbeddedStack
from stream.kafka.publisher import KafkaPublisher
from stream.kafka.topics import Record, create_topics_async
from stream.settings import DEFAULT_RULES, Settings
from stream.store.store import Store

ROOT = Path(__file__).resolve().parents[1]

# The API process of one variant: ``python api_latency.py --serve VARIANT PORT``.
SERVE = """
import sys, uvicorn
sys.path.insert(0, {root!r})
from stream.api import create_api
from stream.audit import AuditLog
from stream.auth import Clients
from stream.settings import Settings

class NoAudit:
    async def write(self, topic, key, value):
        return None
    async def close(self):
        return None

settings = Settings()
if {variant!r} == "secured":
    api = create_api(settings)
else:
    open_settings = settings.model_copy(update={{"api_rate_per_second": 0.0}})
    api = create_api(
        open_settings,
        clients=Clients.disabled(),
        audit=AuditLog(NoAudit(), b"unused", "unused"),
    )
uvicorn.run(api, host="127.0.0.1", port={port}, log_level="warning", access_log=False)
"""


def card_of(n: int) -> str:
    return f"639000{n:010d}"


async def seed(settings: Settings, households: int) -> None:
    rules = load_rules(DEFAULT_RULES)
    store = Store.from_url(settings.redis_url, settings.redis_prefix)
    async with KafkaPublisher(settings.kafka_url) as pub:
        sp = SwipeProcessor(settings, rules, store, pub)
        rp = RegisterProcessor(settings, store, pub, sp)
        await rp.process([r for n in range(households) for r in (_household(n), _card(n))])
        swipes = [
            Record(
                card_of(n).encode(),
                _json(
                    {
                        "schema": "swipe/1",
                        "event_id": f"B-{n}",
                        "kind": "purchase",
                        "card": card_of(n),
                        "store_id": "S1",
                        "occurred_at": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
                        "currency": "EUR",
                        "payment_method": "payment_card",
                        "total_cents": 5000,
                        "lines": [
                            {
                                "sku": "1",
                                "product_group": "dairy",
                                "quantity": 1,
                                "amount_cents": 5000,
                            }
                        ],
                    }
                ),
            )
            for n in range(households)
        ]
        await sp.process(swipes)
    await store.close()


def _json(value: object) -> bytes:
    return orjson.dumps(value)


def _household(n: int) -> Record:
    return Record(
        f"household:H{n}".encode(),
        _json(
            {
                "schema": "register/1",
                "type": "household",
                "household_id": f"H{n}",
                "co_op": "hok-elanto",
                "head_person_id": f"P{n}",
                "person_ids": [f"P{n}"],
                "business": False,
                "status": "active",
                "capital_required_cents": 0,
                "payout_account": f"FI21{n:014d}",
                "updated_at": "2026-01-01T00:00:00+00:00",
            }
        ),
    )


def _card(n: int) -> Record:
    return Record(
        f"card:{card_of(n)}".encode(),
        _json(
            {
                "schema": "register/1",
                "type": "card",
                "card": card_of(n),
                "household_id": f"H{n}",
                "person_id": f"P{n}",
                "status": "active",
                "valid_until": "2099-12-31",
                "updated_at": "2026-01-01T00:00:00+00:00",
            }
        ),
    )


async def load(
    url: str, headers: dict[str, str], rate: float, seconds: float, households: int
) -> tuple[list[float], dict[int, int], float]:
    """Open loop: request i is due at start + i / rate, latency counted from the due time.

    A lean HTTP/1.1 client (keep-alive connections, raw asyncio streams): httpx would spend
    more CPU than the server on this machine. A request waits for a free connection, and that
    wait counts in its latency.
    """
    host, port = url.removeprefix("http://").split(":")
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    total = int(rate * seconds)
    rng = random.Random(7)
    paths = [
        f"/v1/households/H{n}/bonus" if i % 2 else f"/v1/cards/{card_of(n)}/bonus"
        for i, n in enumerate(rng.randrange(households) for _ in range(total + 100))
    ]
    requests = [f"GET {p} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n".encode() for p in paths]

    async def call(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, i: int) -> int:
        writer.write(requests[i])
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        await reader.readexactly(length)
        return status

    next_index = iter(range(total))
    start = 0.0

    async def connection(warm: int) -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        for k in range(warm):
            await call(reader, writer, total + k % 100)
        await ready.wait()
        for i in next_index:
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            status = await call(reader, writer, i)
            latencies.append(time.perf_counter() - due)
            statuses[status] = statuses.get(status, 0) + 1
        writer.close()

    ready = asyncio.Event()
    tasks = [asyncio.create_task(connection(2)) for _ in range(128)]
    await asyncio.sleep(2.0)  # connections open and warm
    start = time.perf_counter() + 0.1
    ready.set()
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    return latencies, statuses, total / elapsed


def serve(variant: str, env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    code = SERVE.format(root=str(ROOT), variant=variant, port=port)
    out = log.open("wb")
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=out, stderr=out)
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                if r.status == 200:
                    return proc, f"http://127.0.0.1:{port}"
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the {variant} API did not start: {log.read_text()[-2000:]}")
        time.sleep(0.2)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=2000.0, help="requests per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--households", type=int, default=500)
    args = parser.parse_args()

    with (
        tempfile.TemporaryDirectory(prefix="api-bench-") as tmp,
        EmbeddedStack(Path(tmp) / "stack") as stack,
    ):
        prefix = f"bench{os.getpid()}"
        settings = Settings(
            kafka_url=stack.kafka_url,
            redis_url=stack.redis_url,
            topic_prefix=f"{prefix}.",
            redis_prefix=f"{prefix}:",
        )
        names = ("swipes", "register", "dead-letters", "purchase-lines", "audit")
        asyncio.run(create_topics_async(stack.kafka_url, {settings.topic(n): 4 for n in names}))
        asyncio.run(seed(settings, args.households))
        clients = Path(tmp) / "clients.toml"
        token = add_client(clients, "bench", ["bonus:read"])
        env = {
            **os.environ,
            "LOYALTY_KAFKA_URL": stack.kafka_url,
            "LOYALTY_REDIS_URL": stack.redis_url,
            "LOYALTY_TOPIC_PREFIX": f"{prefix}.",
            "LOYALTY_REDIS_PREFIX": f"{prefix}:",
            "LOYALTY_API_CLIENTS": str(clients),
            "LOYALTY_AUDIT_KEY": "bench-audit-key",
            # the limiter runs on every request but refuses none at the offered rate
            "LOYALTY_API_RATE_PER_SECOND": str(args.rate * 2),
        }
        print(
            f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
            f"{args.rate:.0f} req/s for {args.seconds:.0f} s, {args.households} households, "
            "half household and half card reads, one uvicorn process"
        )
        for variant in ("open", "secured"):
            proc, url = serve(variant, env, Path(tmp) / f"{variant}.log")
            try:
                headers = {"Authorization": f"Bearer {token}"} if variant == "secured" else {}
                latencies, statuses, achieved = asyncio.run(
                    load(url, headers, args.rate, args.seconds, args.households)
                )
            finally:
                proc.terminate()
                proc.wait(timeout=20)
            print(
                f"{variant:>8}: p50 {pct(latencies, 0.50):7.1f} ms  p90 {pct(latencies, 0.90):7.1f}"
                f" ms  p99 {pct(latencies, 0.99):7.1f} ms  max {max(latencies) * 1000:7.1f} ms"
                f"  mean {statistics.fmean(latencies) * 1000:6.1f} ms  achieved {achieved:6.0f}"
                f" req/s  statuses {dict(sorted(statuses.items()))}"
            )


if __name__ == "__main__":
    main()
