"""The Redis users of the compose stack, live: ``deploy/redis/redis-start.sh`` renders the ACL
file from secrets that ``deploy/make-secrets.sh`` made, and starts a real server with it. The
worker's real Lua path works as ``worker``; the API's real reads work as ``api`` and every
write of ``api`` is refused; nobody gets in without a password."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import redis.exceptions
from fastapi.testclient import TestClient
from pydantic import SecretStr

from models.rules import load_rules
from stream.api import create_api
from stream.auth import add_client
from stream.bonus.register import RegisterProcessor
from stream.bonus.swipes import SwipeProcessor
from stream.devstack.broker import TansuBroker
from stream.devstack.redis_server import find_redis_server
from stream.kafka.publisher import KafkaPublisher
from stream.kafka.topics import Record
from stream.settings import Settings
from stream.store.store import Store
from tests.support import events

REPO = Path(__file__).resolve().parents[2]
RULES = load_rules(REPO / "stream" / "rules.default.toml")
CARD = "6390001234567890"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def urls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """user -> URL of a live server started by the stack's own script with its ACL file."""
    tmp = tmp_path_factory.mktemp("redis-acl")
    secrets = tmp / "secrets"
    subprocess.run(["sh", str(REPO / "deploy" / "make-secrets.sh"), str(secrets)], check=True)
    port = _free_port()
    env = {
        "SECRETS_DIR": str(secrets),
        "ACL_TEMPLATE": str(REPO / "deploy" / "redis" / "users.acl.template"),
        "ACL_FILE": str(tmp / "users.acl"),
        "PATH": "/usr/bin:/bin:/usr/sbin:/sbin",
    }
    command = [
        "sh",
        str(REPO / "deploy" / "redis" / "redis-start.sh"),
        find_redis_server(),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(tmp),
        "--save",
        "",
        "--appendonly",
        "no",
    ]
    log = (tmp / "redis.log").open("wb")
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        probe = redis.Redis(port=port, username="probe", password="x")
        deadline = time.monotonic() + 20
        while True:
            try:
                assert probe.ping()
                break
            except redis.exceptions.ConnectionError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError((tmp / "redis.log").read_text()) from None
                time.sleep(0.1)
        probe.close()
        found = {}
        for user in ("worker", "api", "segments"):
            url = (secrets / f"redis_{user}_url").read_text().strip()
            found[user] = url.replace("@redis:6379/", f"@127.0.0.1:{port}/")
        found["anonymous"] = f"redis://127.0.0.1:{port}/0"
        yield found
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()


@pytest.fixture(scope="module")
def seeded(urls: dict[str, str], kafka: TansuBroker) -> Settings:
    """A household, its card and a swipe, written as ``worker`` through the real Lua path."""
    settings = Settings(
        kafka_url=kafka.url,
        redis_url=urls["worker"],
        redis_prefix="loyalty:",
        topic_prefix="acl-test.",
        api_tokens=SecretStr("acl-token"),
    )

    async def run() -> None:
        store = Store.from_url(settings.redis_url, settings.redis_prefix)
        async with KafkaPublisher(settings.kafka_url) as pub:
            sp = SwipeProcessor(settings, RULES, store, pub)
            rp = RegisterProcessor(settings, store, pub, sp)
            await rp.process(
                [
                    Record(*events.keyed(e))
                    for e in (events.household("H1"), events.card(CARD, "H1"))
                ]
            )
            await sp.process([Record(*events.keyed(events.swipe("ACL-1", CARD)))])
        await store.close()

    asyncio.run(run())
    return settings


def test_the_api_user_reads_what_the_api_reads(
    seeded: Settings, urls: dict[str, str], tmp_path: Path
) -> None:
    clients = tmp_path / "clients.toml"
    dpo = add_client(clients, "dpo", ["subject:read", "bonus:read"])
    api_settings = seeded.model_copy(update={"redis_url": urls["api"], "api_clients": clients})
    with TestClient(create_api(api_settings, RULES)) as client:
        auth = {"Authorization": "Bearer acl-token"}
        household = client.get("/v1/households/H1/bonus?month=2026-11", headers=auth)
        assert household.status_code == 200 and household.json()["swipes"] == 1
        card = client.get(f"/v1/cards/{CARD}/bonus?month=2026-11", headers=auth)
        assert card.json() == household.json()
        assert client.get("/healthz").json()["redis"] is True
        # the right of access and the insights read more of the household, still read-only
        full = {"Authorization": f"Bearer {dpo}"}
        data = client.get("/v1/households/H1/data", headers=full)
        assert data.status_code == 200, data.text
        assert data.json()["schema"] == "subject-access/1"
        insights = client.get("/v1/households/H1/insights?months=2", headers=full)
        assert insights.status_code == 200, insights.text


@pytest.mark.parametrize(
    "command",
    [
        ("SET", "loyalty:hh:H1", "x"),
        ("HSET", "loyalty:hh:H1", "co_op", "evil"),
        ("DEL", "loyalty:acc:H1:2026-11"),
        ("HINCRBY", "loyalty:acc:H1:2026-11", "purchases_cents", "1"),
        ("EXPIRE", "loyalty:card:" + CARD, "1"),
        ("EVAL", "return redis.call('SET', KEYS[1], 'x')", "1", "loyalty:hh:H1"),
        ("SMEMBERS", "loyalty:seen:H1:2026-11"),  # not a key the API's routes read
        ("GET", "loyalty:rights:last-run"),
        ("KEYS", "*"),
        ("FLUSHALL",),
        ("CONFIG", "GET", "*"),
    ],
    ids=lambda c: c[0],
)
def test_the_api_user_cannot_write_or_look_elsewhere(
    seeded: Settings, urls: dict[str, str], command: tuple[str, ...]
) -> None:
    api = redis.Redis.from_url(urls["api"])
    try:
        with pytest.raises(redis.exceptions.NoPermissionError):
            api.execute_command(*command)
        assert api.hget("loyalty:hh:H1", "co_op") == b"hok-elanto"  # unchanged
    finally:
        api.close()


def test_the_worker_owns_the_service_keys_and_nothing_else(
    seeded: Settings, urls: dict[str, str]
) -> None:
    worker = redis.Redis.from_url(urls["worker"])
    try:
        assert worker.set("loyalty:acl-probe", "1") and worker.delete("loyalty:acl-probe") == 1
        for command in (("SET", "other:key", "1"), ("FLUSHALL",), ("CONFIG", "GET", "*")):
            with pytest.raises(redis.exceptions.NoPermissionError):
                worker.execute_command(*command)
    finally:
        worker.close()


def test_the_segments_user_reads_only(seeded: Settings, urls: dict[str, str]) -> None:
    segments = redis.Redis.from_url(urls["segments"])
    try:
        assert segments.hget("loyalty:hh:H1", "co_op") == b"hok-elanto"
        with pytest.raises(redis.exceptions.NoPermissionError):
            segments.hset("loyalty:hh:H1", "co_op", "x")
    finally:
        segments.close()


def test_no_one_gets_in_without_a_password(urls: dict[str, str]) -> None:
    anonymous = redis.Redis.from_url(urls["anonymous"])
    wrong = redis.Redis.from_url(urls["api"].replace("://api:", "://api:x"))
    try:
        with pytest.raises(redis.exceptions.AuthenticationError):
            anonymous.get("loyalty:hh:H1")
        with pytest.raises(redis.exceptions.AuthenticationError):
            wrong.ping()
    finally:
        anonymous.close()
        wrong.close()
