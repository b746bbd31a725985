"""Contract section 10 against real services: clients and scopes, the audit trail on a real
broker, rate limits, 404s that tell nothing, and JSON errors when Redis or the broker is gone."""

from __future__ import annotations

import asyncio
import hashlib
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
from aiokafka import AIOKafkaConsumer
from fastapi.testclient import TestClient
from pydantic import SecretStr

from models.rules import load_rules
from stream.api import create_api
from stream.audit import subject_key
from stream.auth import Clients, RateLimiter, add_client, load_clients_file
from stream.bonus.register import RegisterProcessor
from stream.bonus.swipes import SwipeProcessor
from stream.cli.main import main as cli_main
from stream.devstack.broker import TansuBroker
from stream.devstack.redis_server import RedisServer
from stream.kafka.publisher import KafkaPublisher
from stream.kafka.topics import Record, create_topics
from stream.settings import Settings
from stream.store.store import Store
from tests.support import events
from tests.support.settings import isolated_settings

RULES = load_rules("stream/rules.default.toml")
HOUSEHOLD = "HX-secret-77"
CARD = "6390001234567890"
AUDIT_KEY = "test-audit-key"
MONTH = "2026-11"


def seed(settings: Settings) -> None:
    async def run() -> None:
        store = Store.from_url(settings.redis_url, settings.redis_prefix)
        async with KafkaPublisher(settings.kafka_url) as pub:
            sp = SwipeProcessor(settings, RULES, store, pub)
            rp = RegisterProcessor(settings, store, pub, sp)
            await rp.process(
                [
                    Record(*events.keyed(e))
                    for e in (events.household(HOUSEHOLD), events.card(CARD, HOUSEHOLD))
                ]
            )
            await sp.process([Record(*events.keyed(events.swipe("AC-1", CARD)))])
        await store.close()

    asyncio.run(run())


def read_audit(settings: Settings, expected: int, settle: float = 1.5) -> list[bytes]:
    """Every record on the audit topic: waits for ``expected``, then ``settle`` s for more."""

    async def run() -> list[bytes]:
        consumer = AIOKafkaConsumer(
            settings.topic("audit"),
            bootstrap_servers=settings.kafka_url.removeprefix("kafka://"),
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        values: list[bytes] = []
        try:
            deadline = time.monotonic() + 20
            quiet_until: float | None = None
            while time.monotonic() < deadline:
                batches = await consumer.getmany(timeout_ms=200)
                for batch in batches.values():
                    values += [bytes(r.key or b"") + b"\0" + bytes(r.value or b"") for r in batch]
                if len(values) >= expected:
                    quiet_until = quiet_until or time.monotonic() + settle
                    if time.monotonic() >= quiet_until:
                        break
        finally:
            await consumer.stop()
        return values

    return asyncio.run(run())


def records(raw: list[bytes]) -> list[dict[str, Any]]:
    return [orjson.loads(r.split(b"\0", 1)[1]) for r in raw]


@pytest.fixture
def base(kafka: TansuBroker, redis_server: RedisServer, unique: str, tmp_path: Path) -> Settings:
    # one partition, so the records read back in the order they were written
    create_topics(kafka.bootstrap, {f"{unique}.audit": 1})
    return isolated_settings(
        kafka,
        redis_server,
        unique,
        audit_key=SecretStr(AUDIT_KEY),
        api_clients=tmp_path / "clients.toml",
        api_tokens=SecretStr("legacy-token-1"),
    )


@pytest.fixture
def tokens(base: Settings) -> dict[str, str]:
    assert base.api_clients is not None
    return {
        "checkout-app": add_client(base.api_clients, "checkout-app", ["bonus:read"]),
        "dpo": add_client(base.api_clients, "dpo", ["subject:read"]),
        "ops": add_client(base.api_clients, "ops", ["bonus:read", "subject:read"]),
    }


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def api(base: Settings, tokens: dict[str, str]) -> Iterator[TestClient]:
    seed(base)
    with TestClient(create_api(base, RULES)) as c:
        yield c


ROUTES = [
    f"/v1/households/{HOUSEHOLD}/bonus?month={MONTH}",
    f"/v1/cards/{CARD}/bonus?month={MONTH}",
]


def test_clients_file_keeps_only_digests(base: Settings, tokens: dict[str, str]) -> None:
    assert base.api_clients is not None
    text = base.api_clients.read_text()
    for token in tokens.values():
        assert token not in text
        assert hashlib.sha256(token.encode()).hexdigest() in text
    assert base.api_clients.stat().st_mode & 0o077 == 0  # readable by its owner only
    names = [c.name for _, c in load_clients_file(base.api_clients)]
    assert names == ["checkout-app", "dpo", "ops"]
    clients = Clients.from_settings(base)
    assert clients.authenticate(tokens["dpo"]).scopes == {"subject:read"}  # type: ignore[union-attr]
    legacy = clients.authenticate("legacy-token-1")
    assert legacy is not None and legacy.scopes == {"bonus:read"}
    assert clients.authenticate("legacy-token-") is None
    assert clients.authenticate("") is None


#: route, the client with its scope, the client without, the audit action, v1 tokens accepted
EVERY_ROUTE = [
    (ROUTES[0], "checkout-app", "dpo", "bonus_read", True),
    (ROUTES[1], "checkout-app", "dpo", "bonus_read", True),
    (f"/v1/households/{HOUSEHOLD}/insights?months=2", "checkout-app", "dpo", "insights_read", True),
    (f"/v1/households/{HOUSEHOLD}/data", "dpo", "checkout-app", "subject_access", False),
]


@pytest.mark.parametrize(("route", "right", "lacking", "action", "v1"), EVERY_ROUTE)
def test_each_route_401_401_403_200_with_one_audit_record_each(
    base: Settings,
    tokens: dict[str, str],
    api: TestClient,
    route: str,
    right: str,
    lacking: str,
    action: str,
    v1: bool,
) -> None:
    nothing = api.get(route)
    assert nothing.status_code == 401 and nothing.headers["www-authenticate"].startswith("Bearer")
    assert nothing.json()["error"] == "unauthorized"
    wrong = api.get(route, headers=bearer("not-a-token"))
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"].startswith("Bearer")
    refused = api.get(route, headers=bearer(tokens[lacking]))
    assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
    ok = api.get(route, headers=bearer(tokens[right]))
    assert ok.status_code == 200 and HOUSEHOLD in ok.text
    legacy = api.get(route, headers=bearer("legacy-token-1"))
    assert legacy.status_code == (200 if v1 else 403)  # v1 tokens: bonus:read only

    raw = read_audit(base, 3)
    got = records(raw)
    assert [(r["client"], r["action"], r["outcome"]) for r in got] == [
        (lacking, action, "denied"),
        (right, action, "ok"),
        ("token-1", action, "ok" if v1 else "denied"),
    ]
    for r in got:
        assert r["schema"] == "audit/1" and r["audit_id"] and r["at"].endswith("Z")
    # the reads name the household by its keyed hash, whichever id the route was given
    wanted = subject_key(AUDIT_KEY.encode(), HOUSEHOLD)
    assert got[1]["subject_key"] == wanted
    if v1:
        assert got[2]["subject_key"] == wanted
    everything = b"".join(raw)
    assert HOUSEHOLD.encode() not in everything and CARD.encode() not in everything


def test_unknown_and_erased_subjects_answer_the_same_404(
    base: Settings, tokens: dict[str, str], api: TestClient, redis_server: RedisServer
) -> None:
    auth = bearer(tokens["checkout-app"])
    assert api.get(ROUTES[0], headers=auth).status_code == 200
    # erase the household as section 9 does: its snapshot, card and accumulators go
    r = redis.Redis.from_url(redis_server.url)
    for key in r.scan_iter(match=f"{base.redis_prefix}*"):
        if HOUSEHOLD.encode() in key or CARD.encode() in key:
            r.delete(key)
    r.close()
    erased_hh = api.get(ROUTES[0], headers=auth)
    never_hh = api.get(f"/v1/households/HX-never-seen/bonus?month={MONTH}", headers=auth)
    assert erased_hh.status_code == never_hh.status_code == 404
    assert erased_hh.json()["error"] == never_hh.json()["error"] == "household_not_found"
    assert set(erased_hh.headers) == set(never_hh.headers)
    erased_card = api.get(ROUTES[1], headers=auth)
    never_card = api.get(f"/v1/cards/6390009999999999/bonus?month={MONTH}", headers=auth)
    assert erased_card.status_code == never_card.status_code == 404
    assert (
        erased_card.json()
        == never_card.json()
        == {
            "error": "card_not_found",
            "detail": "no such card",
        }
    )
    outcomes = [(r["outcome"]) for r in records(read_audit(base, 5))]
    assert outcomes == ["ok", "not_found", "not_found", "not_found", "not_found"]


def test_erased_and_never_seen_take_the_same_time(
    base: Settings, tokens: dict[str, str], api: TestClient, redis_server: RedisServer
) -> None:
    """Same path, same time class: an erased household cannot be told from an unknown one by
    how long the 404 takes (medians of many requests, interleaved, within a small factor)."""
    auth = bearer(tokens["checkout-app"])
    r = redis.Redis.from_url(redis_server.url)
    for key in r.scan_iter(match=f"{base.redis_prefix}*"):
        if HOUSEHOLD.encode() in key:
            r.delete(key)
    r.close()
    timings: dict[str, list[float]] = {"erased": [], "never": []}
    for n in range(40):
        for kind, household in (("erased", HOUSEHOLD), ("never", f"HX-never-{n}")):
            started = time.perf_counter()
            response = api.get(f"/v1/households/{household}/bonus?month={MONTH}", headers=auth)
            timings[kind].append(time.perf_counter() - started)
            assert response.status_code == 404
    erased, never = (statistics.median(timings[k]) for k in ("erased", "never"))
    assert max(erased, never) / min(erased, never) < 2.0, (erased, never)


def test_rate_limit_per_client(base: Settings, tokens: dict[str, str]) -> None:
    seed(base)
    limited = base.model_copy(update={"api_rate_per_second": 2.0})  # bursts of 4
    with TestClient(create_api(limited, RULES)) as c:
        statuses = [c.get(ROUTES[0], headers=bearer(tokens["checkout-app"])) for _ in range(6)]
        assert [s.status_code for s in statuses[:4]] == [200] * 4
        refused = statuses[4]
        assert refused.status_code == 429 and refused.json()["error"] == "rate_limited"
        assert int(refused.headers["retry-after"]) >= 1
        # another client has its own bucket
        assert c.get(ROUTES[0], headers=bearer(tokens["ops"])).status_code == 200
        time.sleep(1.1)  # two more requests earned back
        assert c.get(ROUTES[0], headers=bearer(tokens["checkout-app"])).status_code == 200


def test_rate_limiter_refills_at_its_rate() -> None:
    now = [0.0]
    limiter = RateLimiter(10.0, clock=lambda: now[0])
    assert [limiter.acquire("a") for _ in range(20)] == [0.0] * 20
    wait = limiter.acquire("a")
    assert wait == pytest.approx(0.1)
    assert RateLimiter.retry_after(wait) == "1"
    now[0] += 0.35
    assert [limiter.acquire("a") == 0.0 for _ in range(4)] == [True, True, True, False]


def test_broker_down_means_503_and_no_data(
    redis_server: RedisServer, unique: str, tmp_path: Path
) -> None:
    with TansuBroker(tmp_path / "broker") as own:
        settings = Settings(
            kafka_url=own.url,
            redis_url=redis_server.url,
            topic_prefix=f"{unique}.",
            redis_prefix=f"{unique}:",
            api_tokens=SecretStr("t0k"),
            audit_timeout_seconds=1.0,
        )
        seed(settings)
        with TestClient(create_api(settings, RULES)) as c:
            assert c.get(ROUTES[0], headers=bearer("t0k")).status_code == 200
            own.stop()
            for route in ROUTES:
                started = time.monotonic()
                response = c.get(route, headers=bearer("t0k"))
                assert response.status_code == 503
                assert response.json()["error"] == "audit_unavailable"
                assert "purchases_cents" not in response.text and HOUSEHOLD not in response.text
                assert time.monotonic() - started < 5


def test_redis_down_means_503_json(kafka: TansuBroker, unique: str, tmp_path: Path) -> None:
    create_topics(kafka.bootstrap, {f"{unique}.audit": 1})
    with RedisServer(tmp_path / "redis") as own:
        settings = Settings(
            kafka_url=kafka.url,
            redis_url=own.url,
            topic_prefix=f"{unique}.",
            redis_prefix=f"{unique}:",
            api_tokens=SecretStr("t0k"),
        )
        seed(settings)
        with TestClient(create_api(settings, RULES), raise_server_exceptions=False) as c:
            assert c.get(ROUTES[0], headers=bearer("t0k")).status_code == 200
            own.stop()
            for route in ROUTES:
                response = c.get(route, headers=bearer("t0k"))
                assert response.status_code == 503
                assert response.headers["content-type"] == "application/json"
                assert response.json() == {
                    "error": "unavailable",
                    "detail": "the data store is unavailable; try again",
                }
            health = c.get("/healthz")
            assert health.status_code == 503 and health.json()["redis"] is False
    # the trail says the reads failed (after the one that worked)
    outcomes = [(r["action"], r["outcome"]) for r in records(read_audit(settings, 3))]
    assert outcomes == [("bonus_read", "ok"), ("bonus_read", "error"), ("bonus_read", "error")]


def test_an_unexpected_error_is_json_too(
    base: Settings, tokens: dict[str, str], redis_server: RedisServer
) -> None:
    # corrupt data in Redis (a person list that is not JSON) makes the read itself fail
    r = redis.Redis.from_url(redis_server.url)
    r.hset(f"{base.redis_prefix}hh:HBAD", mapping={"co_op": "hok-elanto", "person_ids": "{nope"})
    r.close()
    with TestClient(create_api(base, RULES), raise_server_exceptions=False) as c:
        response = c.get("/v1/households/HBAD/bonus", headers=bearer(tokens["checkout-app"]))
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "error": "internal_error",
        "detail": "an unexpected error; it has been logged",
    }
    (record,) = records(read_audit(base, 1))
    assert (record["client"], record["outcome"]) == ("checkout-app", "error")


def test_openapi_declares_bearer_scopes_and_every_error(api: TestClient) -> None:
    doc = api.get("/openapi.json").json()
    assert doc["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": doc["components"]["securitySchemes"]["bearer"]["description"],
    }
    for path in ("/v1/households/{household_id}/bonus", "/v1/cards/{card}/bonus"):
        operation = doc["paths"][path]["get"]
        assert operation["security"] == [{"bearer": ["bonus:read"]}]
        statuses = set(operation["responses"])
        assert statuses == {"200", "400", "401", "403", "404", "429", "503"}
        assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/BonusFigures"
        }
        assert "Retry-After" in operation["responses"]["429"]["headers"]
        assert "WWW-Authenticate" in operation["responses"]["401"]["headers"]
    assert "security" not in doc["paths"]["/healthz"]["get"]
    assert "422" not in str(doc) and "HTTPValidationError" not in str(doc)


def test_api_refuses_to_start_without_credentials(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env
    for name in ("LOYALTY_API_TOKENS", "LOYALTY_API_CLIENTS"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(SystemExit) as refused:
        cli_main(["api", "--port", "1"])
    assert "LOYALTY_API_CLIENTS" in str(refused.value) and "--no-auth" in str(refused.value)
    monkeypatch.setenv("LOYALTY_API_CLIENTS", str(tmp_path / "missing.toml"))
    with pytest.raises(SystemExit) as missing:
        cli_main(["api", "--port", "1"])
    assert "missing.toml: no such file" in str(missing.value)


def test_clients_add_prints_a_token_once_and_stores_its_digest(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "clients.toml"
    monkeypatch.setenv("LOYALTY_API_CLIENTS", str(path))
    assert cli_main(["clients", "add", "crm", "--scope", "bonus:read"]) == 0
    token = capsys.readouterr().out.strip().splitlines()[-1]
    assert len(token) >= 40 and token not in path.read_text()
    monkeypatch.setenv("LOYALTY_AUDIT_KEY", AUDIT_KEY)
    clients = Clients.from_settings(Settings())
    crm = clients.authenticate(token)
    assert crm is not None and crm.name == "crm" and crm.scopes == {"bonus:read"}
    with pytest.raises(SystemExit, match="exists already"):
        cli_main(["clients", "add", "crm", "--scope", "subject:read"])
    assert cli_main(["audit", "subject-key", "--household", HOUSEHOLD]) == 0
    assert capsys.readouterr().out.strip() == subject_key(AUDIT_KEY.encode(), HOUSEHOLD)


def test_settings_read_secrets_from_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    secret = tmp_path / "audit_key"
    secret.write_text("from-a-file\n")
    monkeypatch.setenv("LOYALTY_AUDIT_KEY_FILE", str(secret))
    monkeypatch.delenv("LOYALTY_AUDIT_KEY", raising=False)
    assert Settings().audit_key.get_secret_value() == "from-a-file"
    monkeypatch.setenv("LOYALTY_AUDIT_KEY", "direct")  # the variable itself wins
    assert Settings().audit_key.get_secret_value() == "direct"
    monkeypatch.setenv("LOYALTY_REDIS_URL_FILE", str(tmp_path / "absent"))
    with pytest.raises(ValueError, match="LOYALTY_REDIS_URL_FILE"):
        Settings()
