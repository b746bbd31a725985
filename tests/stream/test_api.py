"""The HTTP API against a real Redis (contents written through the real Lua path)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from models.rules import load_rules
from stream.api import create_api
from stream.auth import Clients
from stream.bonus.register import RegisterProcessor
from stream.bonus.swipes import SwipeProcessor
from stream.devstack.broker import TansuBroker
from stream.devstack.redis_server import RedisServer
from stream.kafka.publisher import KafkaPublisher
from stream.kafka.topics import Record
from stream.settings import Settings
from stream.store.store import Store
from tests.support import events
from tests.support.settings import isolated_settings

RULES = load_rules("stream/rules.default.toml")
CARD = "6390001234567890"


@pytest.fixture
def settings(kafka: TansuBroker, redis_server: RedisServer, unique: str) -> Settings:
    return isolated_settings(
        kafka,
        redis_server,
        unique,
    )


def seed(settings: Settings, *swipes: dict[str, object]) -> None:
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
            await sp.process([Record(*events.keyed(s)) for s in swipes])
        await store.close()

    asyncio.run(run())


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_api(settings, RULES, clients=Clients.disabled())) as c:
        yield c


def test_bonus_of_a_household_and_of_its_card(settings: Settings, client: TestClient) -> None:
    # 60 000 c of dairy at S0001 (no campaign), paid by payment card: tier 350 bp,
    # base round(350 x 60000 / 10000) = 2100, no fuel, no payment benefit.
    seed(
        settings,
        events.swipe(
            "A-1",
            CARD,
            lines=[{"sku": "m", "product_group": "dairy", "quantity": 1, "amount_cents": 60000}],
        ),
    )
    body = client.get("/v1/households/H1/bonus", params={"month": "2026-11"}).json()
    assert (
        body["purchases_cents"],
        body["tier_bp"],
        body["base_bonus_cents"],
        body["total_cents"],
    ) == (60000, 350, 2100, 2100)
    assert body["final"] is False and body["paid_cents"] == 0
    assert client.get(f"/v1/cards/{CARD}/bonus?month=2026-11").json() == body
    empty = client.get("/v1/households/H1/bonus", params={"month": "2026-01"}).json()
    assert empty["total_cents"] == 0 and empty["purchases_cents"] == 0


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/v1/households/H1/bonus?month=2026-13", 400, "invalid_month"),
        ("/v1/households/H1/bonus?month=nov", 400, "invalid_month"),
        ("/v1/households/H%201/bonus", 400, "invalid_household_id"),
        ("/v1/households/NOPE/bonus", 404, "household_not_found"),
        ("/v1/cards/12ab/bonus", 400, "invalid_card"),
        ("/v1/cards/6390000000000000/bonus", 404, "card_not_found"),
        ("/v1/nothing", 404, "not_found"),
    ],
)
def test_errors_are_json_with_a_code(
    settings: Settings, client: TestClient, path: str, status: int, code: str
) -> None:
    seed(settings)
    response = client.get(path)
    assert response.status_code == status
    body = response.json()
    assert body["error"] == code and body["detail"]
    assert "6390000000000000" not in body["detail"]  # card numbers are never echoed


def test_bearer_tokens_when_configured(settings: Settings) -> None:
    seed(settings)
    secured = settings.model_copy(
        update={"api_tokens": __import__("pydantic").SecretStr("s3cret,other")}
    )
    with TestClient(create_api(secured, RULES)) as c:
        assert c.get("/v1/households/H1/bonus").status_code == 401
        # contract section 10: an unknown token is 401 too (403 is a known client's missing scope)
        assert (
            c.get("/v1/households/H1/bonus", headers={"Authorization": "Bearer wrong"}).status_code
            == 401
        )
        ok = c.get("/v1/households/H1/bonus", headers={"Authorization": "Bearer other"})
        assert ok.status_code == 200
        assert c.get("/healthz").status_code == 200  # no auth on health and metrics
        metrics = c.get("/metrics")
        assert metrics.status_code == 200
        assert (
            'loyalty_api_request_seconds_count{route="/v1/households/{household_id}/bonus",status="401"}'
            in metrics.text
        )


def test_openapi_documents_the_routes(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/households/{household_id}/bonus", "/v1/cards/{card}/bonus", "/healthz"} <= set(
        paths
    )
