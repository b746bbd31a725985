"""Schemathesis against the live API (a real ``loyalty api`` process on real Kafka and Redis):
for every documented operation, generated requests (valid and invalid ids, months, tokens)
get no 5xx, a documented status, and bodies and headers that match the OpenAPI document."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from models.rules import load_rules
from stream.auth import add_client
from stream.bonus.register import RegisterProcessor
from stream.bonus.swipes import SwipeProcessor
from stream.devstack.broker import TansuBroker
from stream.devstack.redis_server import RedisServer
from stream.devstack.services import ApiProcess
from stream.kafka.publisher import KafkaPublisher
from stream.kafka.topics import Record
from stream.store.store import Store
from tests.support import events
from tests.support.services import free_port, loyalty_env, unique_id
from tests.support.settings import isolated_settings

RULES = load_rules("stream/rules.default.toml")
CHECKS = (
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
    schemathesis.checks.response_headers_conformance,
)


KNOWN: dict[str, list[tuple[dict[str, str], dict[str, str]]]] = {
    "/v1/households/{household_id}/bonus": [
        ({"household_id": "H1"}, {"month": "2026-11"}),
        ({"household_id": "H1"}, {}),
        ({"household_id": "H-never"}, {"month": "2026-11"}),
    ],
    "/v1/households/{household_id}/insights": [
        ({"household_id": "H1"}, {"months": "3"}),
        ({"household_id": "H-never"}, {}),
    ],
    "/v1/households/{household_id}/data": [({"household_id": "H1"}, {})],
    "/v1/persons/{person_id}/data": [({"person_id": "P-H1"}, {}), ({"person_id": "P-no"}, {})],
    "/v1/cards/{card}/bonus": [
        ({"card": events.CARD}, {"month": "2026-11"}),
        ({"card": "6390000000000009"}, {}),
    ],
}


@pytest.fixture(scope="module")
def live_api(
    kafka: TansuBroker, redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("api-schema")
    unique = unique_id()
    env = loyalty_env(kafka=kafka, redis=redis_server, unique=unique, data_dir=tmp)
    clients = tmp / "clients.toml"
    token = add_client(clients, "schemathesis", ["bonus:read", "subject:read"])
    env |= {"LOYALTY_API_CLIENTS": str(clients), "LOYALTY_API_RATE_PER_SECOND": "0"}
    seeded = isolated_settings(
        kafka,
        redis_server,
        unique,
    )

    async def seed() -> None:
        store = Store.from_url(seeded.redis_url, seeded.redis_prefix)
        async with KafkaPublisher(seeded.kafka_url) as pub:
            sp = SwipeProcessor(seeded, RULES, store, pub)
            rp = RegisterProcessor(seeded, store, pub, sp)
            await rp.process(
                [
                    Record(*events.keyed(e))
                    for e in (events.household("H1"), events.card(events.CARD, "H1"))
                ]
            )
            await sp.process([Record(*events.keyed(events.swipe("S-1")))])
        await store.close()

    asyncio.run(seed())
    api = ApiProcess(Path(tmp / "api"), env, free_port())
    api.start()
    try:
        yield {"url": api.base_url, "token": token}
    finally:
        api.stop()


def test_the_live_api_matches_its_openapi_document(live_api: dict[str, Any]) -> None:
    schema = schemathesis.openapi.from_url(f"{live_api['url']}/openapi.json")
    schema.validate()  # the document itself against the OpenAPI specification's schema
    headers = {"Authorization": f"Bearer {live_api['token']}"}
    tested = []
    statuses: list[int] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        tested.append(operation.label)

        @given(case=operation.as_strategy())
        @settings(
            max_examples=40,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def run(case: Any) -> None:
            response = case.call_and_validate(headers=headers, checks=CHECKS)
            statuses.append(response.status_code)

        run()
        # and the cases that find data (random ids rarely do): known ids, months, no token
        for path, query in KNOWN.get(operation.path, []):
            for auth in (headers, {}):
                case = operation.Case(path_parameters=path, query=query)
                statuses.append(case.call_and_validate(headers=auth, checks=CHECKS).status_code)
    assert {200, 400, 401, 404} <= set(statuses), sorted(set(statuses))
    assert {"GET /v1/households/{household_id}/bonus", "GET /v1/cards/{card}/bonus"} <= set(tested)
