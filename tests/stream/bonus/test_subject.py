"""The right of access (subject-access/1) and member insights (contract sections 9 and 13) on
real Redis, both ClickHouse engines and the API."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from jsonschema import Draft202012Validator
from pydantic import SecretStr

from models.months import Month
from models.register import parse_register
from models.rules import load_rules
from stream.analytics.pseudonym import household_key
from stream.analytics.segments import build_segments
from stream.analytics.stage import LinesProcessor
from stream.api import create_api
from stream.auth import Clients
from stream.bonus.close import close_month
from stream.bonus.register import RegisterProcessor, register_op
from stream.bonus.subject import SubjectNotFound, clickhouse_part, subject_access
from stream.bonus.swipes import SwipeProcessor
from stream.cli.main import build_parser
from stream.clickhouse.engine import ClickHouse
from stream.clickhouse.migrate import migrate
from stream.devstack.broker import TansuBroker
from stream.devstack.redis_server import RedisServer
from stream.kafka.publisher import KafkaPublisher
from stream.kafka.topics import Record
from stream.settings import PLACEHOLDER_PSEUDONYM_KEY, Settings
from stream.store.store import Store
from tests.support import events
from tests.support.events import person
from tests.support.schemas import errors as schema_errors
from tests.support.services import TeePublisher
from tests.support.settings import isolated_settings

RULES = load_rules("stream/rules.default.toml")
CARD_1, CARD_2, HELD_CARD, OTHER_CARD = (
    "6390000000000401",
    "6390000000000402",
    "6390000000000403",
    "6390000000000404",
)


def records(*items: dict[str, Any]) -> list[Record]:
    return [Record(*events.keyed(e)) for e in items]


def card(number: str, hid: str, pid: str) -> dict[str, Any]:
    return {**events.card(number, hid), "person_id": pid}


def purchase(event_id: str, number: str, when: str, **extra: Any) -> dict[str, Any]:
    lines = [
        {"sku": "A", "product_group": "dairy", "quantity": 1, "amount_cents": 30_000},
        {"sku": "B", "product_group": "meat", "quantity": 1, "amount_cents": 15_000},
    ]
    return events.swipe(event_id, number, occurred_at=when, lines=lines, **extra)


def settings_for(kafka: TansuBroker, redis_server: RedisServer, unique: str) -> Settings:
    return isolated_settings(
        kafka,
        redis_server,
        unique,
        pseudonym_key="subject-test-key",
    )


def test_a_subject_access_document_is_complete_and_holds_nobody_else(
    kafka: TansuBroker,
    redis_server: RedisServer,
    unique: str,
    clickhouse: ClickHouse,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = settings_for(kafka, redis_server, unique)
    key = settings.pseudonym_key.get_secret_value().encode()
    migrate(clickhouse)

    async def scenario() -> dict[str, Any]:
        store = Store.from_url(settings.redis_url, settings.redis_prefix)
        out: dict[str, Any] = {}
        async with TeePublisher(settings.kafka_url, settings.topic("purchase-lines")) as pub:
            lines = LinesProcessor(settings, pub, store, client=clickhouse)
            sp = SwipeProcessor(settings, RULES, store, pub)
            rp = RegisterProcessor(settings, store, pub, sp)
            await rp.process(
                records(
                    events.household("HS", person_ids=["PS1", "PS2"], capital_required_cents=50),
                    events.household("HO", person_ids=["PO1"]),
                    person("PS1", "HS", ["email"]),
                    person("PS2", "HS", ["product_data_services"]),
                    person("PO1", "HO"),
                    card(CARD_1, "HS", "PS1"),
                    card(CARD_2, "HS", "PS2"),
                    card(OTHER_CARD, "HO", "PO1"),
                    events.capital_payment("CP-S", "HS", 20),
                )
            )
            await sp.process(
                records(
                    purchase("S-1", CARD_1, "2026-10-03T10:00:00+03:00"),
                    purchase("S-2", CARD_2, "2026-11-04T10:00:00+02:00"),
                    purchase("S-3", CARD_1, "2026-11-05T10:00:00+02:00", kind="return"),
                    purchase("O-1", OTHER_CARD, "2026-10-04T10:00:00+03:00"),
                    purchase("S-4", HELD_CARD, "2026-11-06T10:00:00+02:00"),
                )
            )
            held = card(HELD_CARD, "HS", "PS1")
            await store.apply_register([register_op(parse_register(events.encode(held)), key=key)])
            await close_month(
                settings, RULES, store, pub, Month(2026, 10), now=datetime(2026, 11, 10, tzinfo=UTC)
            )
            await lines.process(pub.lines)
            await asyncio.to_thread(build_segments, clickhouse, date(2026, 11, 1), 3)

            async def analytics(hid: str, stored_key: str | None) -> Any:
                assert stored_key == str(household_key(key, hid))  # kept by the register path
                return await asyncio.to_thread(clickhouse_part, clickhouse, household_key(key, hid))

            out["household"] = await subject_access(
                store, RULES, household_id="HS", analytics=analytics
            )
            out["person"] = await subject_access(store, RULES, person_id="PS2", analytics=analytics)
            try:
                await subject_access(store, RULES, household_id="NOPE", analytics=analytics)
            except SubjectNotFound:
                out["unknown"] = "not found"
            await lines.close()
        with TestClient(create_api(settings, RULES, clients=Clients.disabled())) as api:
            out["bonus"] = {
                m: api.get(f"/v1/households/HS/bonus?month={m}").json()
                for m in ("2026-10", "2026-11")
            }
            out["api_data"] = api.get("/v1/households/HS/data")
            out["api_person"] = api.get("/v1/persons/PS1/data")
            out["api_missing"] = api.get("/v1/persons/NOBODY/data")
        # An API as production deploys it: no pseudonym key, a ClickHouse URL (read-only is
        # enough); it finds the lines by the key the register path stored in Redis.
        keyless = settings.model_copy(
            update={
                "pseudonym_key": SecretStr(PLACEHOLDER_PSEUDONYM_KEY),
                "clickhouse_url": clickhouse.url,
            }
        )
        with TestClient(create_api(keyless, RULES, clients=Clients.disabled())) as api:
            out["api_keyless"] = api.get("/v1/households/HS/data")
        await store.close()
        return out

    r = asyncio.run(scenario())
    doc = r["household"]
    text = orjson.dumps(doc).decode()
    schema = orjson.loads(Path("schemas/subject-access-1.schema.json").read_bytes())
    for document in (doc, r["person"]):
        Draft202012Validator(schema).validate(document)
    assert doc["schema"] == "subject-access/1" and doc["subject"] == {"household_id": "HS"}
    assert "omitted" not in doc
    assert doc["household"]["person_ids"] == ["PS1", "PS2"]
    assert [p["person_id"] for p in doc["persons"]] == ["PS1", "PS2"]
    assert doc["persons"][0]["bans"] == ["email"] and doc["persons"][0]["email_marketing"]
    assert [c["card"] for c in doc["cards"]] == [CARD_1, CARD_2, HELD_CARD]
    assert doc["capital"]["payments"] == [{"payment_id": "CP-S", "amount_cents": 20}]
    assert doc["capital"]["ledger"]["capital_paid_cents"] == 20
    assert [m["month"] for m in doc["months"]] == ["2026-10", "2026-11"]
    for month in doc["months"]:  # the figures of the bonus endpoint, month by month
        api = r["bonus"][month["month"]]
        assert {k: month[k] for k in api if k in month} == {k: api[k] for k in api if k in month}
    assert doc["months"][0]["final"] and doc["months"][0]["paid_cents"] > 0
    assert [p["payout_id"] for p in doc["payouts"]] == ["HS:2026-10:1"]
    assert [s["event_id"] for s in doc["held_swipes"]] == ["S-4"]
    assert sorted({(x["event_id"], x["line_no"]) for x in doc["purchase_lines"]}) == [
        (e, n) for e in ("S-1", "S-2", "S-3") for n in (0, 1)
    ]
    assert all("household_key" not in x for x in doc["purchase_lines"])
    assert doc["segments"] and all(s["build_month"] == "2026-11-01" for s in doc["segments"])
    for other in ("HO", "PO1", OTHER_CARD, "O-1", str(household_key(b"subject-test-key", "HO"))):
        assert other not in text
    person_doc = r["person"]
    assert person_doc["subject"] == {"person_id": "PS2", "household_id": "HS"}
    assert [p["person_id"] for p in person_doc["persons"]] == ["PS2"]
    assert [c["card"] for c in person_doc["cards"]] == [CARD_2]
    assert person_doc["held_swipes"] == [] and person_doc["months"] == doc["months"]
    assert person_doc["purchase_lines"] == doc["purchase_lines"]
    assert "PS1" not in orjson.dumps(person_doc["persons"]).decode()
    assert r["unknown"] == "not found"
    # Over HTTP (this API process has ClickHouse only if it is a server, with the key).
    data = r["api_data"].json()
    assert r["api_data"].status_code == 200 and data["months"] == doc["months"]
    if settings.embedded_clickhouse:
        assert set(data["omitted"]) == {"purchase_lines", "segments"}
    assert r["api_person"].status_code == 200
    assert r["api_person"].json()["subject"] == {"person_id": "PS1", "household_id": "HS"}
    assert r["api_missing"].status_code == 404
    # every document validates against schemas/subject-access-1.schema.json
    for document in (doc, person_doc, data, r["api_person"].json()):
        assert schema_errors("subject-access-1", document) == []
    keyless = r["api_keyless"].json()
    if clickhouse.engine == "chdb":
        assert set(keyless["omitted"]) == {"purchase_lines", "segments"}  # open in this process
    else:
        assert "omitted" not in keyless
        assert keyless["purchase_lines"] == doc["purchase_lines"]
        assert keyless["segments"] == doc["segments"]
    if clickhouse.engine == "chdb":
        return  # the command opens ClickHouse itself: with chdb, only in a process of its own
    cli_settings = settings.model_copy(update={"clickhouse_url": clickhouse.url})
    parser, handlers = build_parser()
    out = tmp_path / "hs.json"
    args = parser.parse_args(["subject-access", "--household", "HS", "--out", str(out)])
    assert handlers["subject-access"](args, cli_settings) == 0
    written = orjson.loads(out.read_bytes())
    assert {k: v for k, v in written.items() if k != "generated_at"} == {
        k: v for k, v in doc.items() if k != "generated_at"
    }
    args = parser.parse_args(["subject-access", "--person", "NOBODY"])
    assert handlers["subject-access"](args, cli_settings) == 1
    assert "nothing is held" in capsys.readouterr().err


def test_member_insights(kafka: TansuBroker, redis_server: RedisServer, unique: str) -> None:
    settings = settings_for(kafka, redis_server, unique)
    now = datetime.now(UTC)
    running = Month.of(now, RULES.timezone)
    earlier = now - timedelta(minutes=5)
    when = earlier.astimezone(RULES.timezone).isoformat()

    def swipe(event_id: str, number: str, amounts: dict[str, int], **extra: Any) -> dict[str, Any]:
        lines = [
            {"sku": g, "product_group": g, "quantity": 1, "amount_cents": a}
            for g, a in amounts.items()
        ]
        return events.swipe(event_id, number, occurred_at=when, lines=lines, **extra)

    async def scenario() -> list[Any]:
        store = Store.from_url(settings.redis_url, settings.redis_prefix)
        out: list[Any] = []
        async with KafkaPublisher(settings.kafka_url) as pub:
            sp = SwipeProcessor(settings, RULES, store, pub)
            rp = RegisterProcessor(settings, store, pub, sp)
            await rp.process(
                records(
                    events.household("HI", person_ids=["PI"]),
                    person("PI", "HI"),
                    card(CARD_1, "HI", "PI"),
                )
            )
            with TestClient(create_api(settings, RULES, clients=Clients.disabled())) as api:

                def look() -> tuple[Any, Any]:
                    insights = api.get("/v1/households/HI/insights?months=2").json()
                    bonus = api.get("/v1/households/HI/bonus").json()
                    return insights, bonus

                # 4,000 eligible cents (gift_card is excluded, so it is no group's purchase)
                await sp.process(
                    records(swipe("I-1", CARD_1, {"dairy": 3000, "meat": 1000, "gift_card": 700}))
                )
                out.append(look())
                await sp.process(records(swipe("I-2", CARD_1, {"dairy": 1000})))  # 5,000
                out.append(look())
                await sp.process(records(swipe("I-3", CARD_1, {"meat": 1}, kind="return")))
                out.append(look())
                await rp.process(
                    records({**person("PI", "HI", ["product_data_services"]), "updated_at": when})
                )
                out.append(look())
                out.append(api.get("/v1/households/NOPE/insights").status_code)
                out.append(api.get("/v1/households/HI/insights?months=25").status_code)
        await store.close()
        return out

    first, second, third, banned, missing, too_many = asyncio.run(scenario())
    for insights, bonus in (first, second, third):
        now_month = insights["months"][-1]
        assert now_month["month"] == str(running) == bonus["month"]
        assert (now_month["purchases_cents"], now_month["total_cents"], now_month["tier_bp"]) == (
            bonus["purchases_cents"],
            bonus["total_cents"],
            bonus["tier_bp"],
        )
        assert [m["month"] for m in insights["months"]] == [str(running.previous()), str(running)]
        assert "product_data" not in insights
    assert first[0]["months"][-1]["to_next_tier_cents"] == 1000
    assert first[0]["months"][-1]["by_group"] == {"dairy": 3000, "meat": 1000}
    assert second[0]["months"][-1]["to_next_tier_cents"] == 15000  # at 5,000: the next tier
    assert third[0]["months"][-1]["to_next_tier_cents"] == 1  # 4,999 after a return
    assert third[0]["months"][-1]["by_group"] == {"dairy": 4000, "meat": 999}
    assert "to_next_tier_cents" not in third[0]["months"][0]  # only for the running month
    assert banned[0]["product_data"] == "banned"
    assert all("by_group" not in m for m in banned[0]["months"])
    assert banned[0]["months"][-1]["purchases_cents"] == 4999
    assert (missing, too_many) == (404, 400)
