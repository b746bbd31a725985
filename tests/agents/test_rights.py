"""The worker keeps the register's promises by itself (contract section 9): an ended customer
past the retention period is erased and per-month state past retention is deleted, with no
command run, by the rights timer of a real worker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from stream.analytics.erasure import rows_of
from stream.analytics.pseudonym import household_key
from stream.clickhouse.connect import connect
from stream.clickhouse.migrate import migrate
from stream.devstack.clickhouse_server import ClickHouseServerProcess
from tests.agents.conftest import Deployment
from tests.support import events
from tests.support.services import wait_until

ENDED_CARD, ACTIVE_CARD = "6390000000000501", "6390000000000502"


def test_the_worker_erases_ended_customers_and_keeps_retention_on_its_own(
    deployment: Deployment,
) -> None:
    now = datetime.now(UTC)
    recent = (now - timedelta(minutes=10)).isoformat()
    # ended 25 months ago (more than LOYALTY_ENDED_RETENTION_MONTHS = 24): due now
    ended_at = (now - timedelta(days=25 * 31)).isoformat()
    deployment.send(
        "register",
        [
            events.household("HGONE", status="ended", ended_at=ended_at),
            events.household("HSTAY"),
            events.card(ENDED_CARD, "HGONE"),
            events.card(ACTIVE_CARD, "HSTAY"),
        ],
    )
    deployment.send(
        "swipes",
        [
            events.swipe("R-1", ENDED_CARD, occurred_at=recent),
            events.swipe("R-2", ACTIVE_CARD, occurred_at=recent),
        ],
    )
    month = recent[:7]
    old = deployment.key("acc", "HSTAY", "2023-01")  # from before retention, never expired
    deployment.redis.hset(old, "swipes", 1)

    def both_applied() -> bool:
        return all(deployment.accumulator(h, month).get("swipes") == 1 for h in ("HGONE", "HSTAY"))

    worker = deployment.start_worker(LOYALTY_RIGHTS_CHECK_SECONDS="1")
    wait_until(both_applied, timeout=60, what="both swipes applied")

    def done() -> bool:
        gone = not deployment.redis.exists(deployment.key("hh", "HGONE"))
        return gone and not deployment.redis.exists(old)

    wait_until(done, timeout=90, what="the ended household erased and the old month removed")
    assert deployment.accumulator("HGONE", month) == {}
    assert not deployment.redis.exists(deployment.key("card", ENDED_CARD))
    assert deployment.accumulator("HSTAY", month)["swipes"] == 1  # the rest stays
    assert deployment.redis.exists(deployment.key("hh", "HSTAY"))
    households = deployment.key("month", month, "households")
    assert deployment.redis.smembers(households) == {b"HSTAY"}
    assert deployment.redis.ttl(households) > 0  # month:* keys expire too
    assert worker.running


def test_an_erasure_on_the_register_topic_reaches_clickhouse_through_the_worker(
    deployment: Deployment, clickhouse_server: ClickHouseServerProcess, unique: str
) -> None:
    url = clickhouse_server.url_for(f"t_{unique}")
    key = "worker-erasure-test-key"
    recent = (datetime.now(UTC) - timedelta(minutes=10)).isoformat()
    deployment.send(
        "register",
        [
            events.household("HX"),
            events.household("HY"),
            events.card(ENDED_CARD, "HX"),
            events.card(ACTIVE_CARD, "HY"),
        ],
    )
    deployment.send(
        "swipes",
        [
            events.swipe("X-1", ENDED_CARD, occurred_at=recent),
            events.swipe("Y-1", ACTIVE_CARD, occurred_at=recent),
        ],
    )
    worker = deployment.start_worker(LOYALTY_CLICKHOUSE_URL=url, LOYALTY_PSEUDONYM_KEY=key)
    hx, hy = household_key(key.encode(), "HX"), household_key(key.encode(), "HY")
    with connect(url) as client:
        migrate(client)  # the worker migrates too; both are idempotent
        wait_until(
            lambda: rows_of(client, [hx]) and rows_of(client, [hy]),
            timeout=90,
            what="purchase lines of both households in ClickHouse",
        )
        deployment.send(
            "register",
            [
                {
                    "schema": "register/1",
                    "type": "erasure",
                    "request_id": "ER-W",
                    "household_id": "HX",
                    "requested_at": recent,
                }
            ],
        )
        wait_until(lambda: rows_of(client, [hx]) == 0, timeout=90, what="HX's rows deleted")
        assert rows_of(client, [hy]) == 1
    assert not deployment.redis.exists(deployment.key("hh", "HX"))
    assert not deployment.redis.exists(deployment.key("card", ENDED_CARD))
    assert deployment.redis.exists(deployment.key("hh", "HY"))
    worker.stop()
    with connect(url) as client:
        client.execute(f"DROP DATABASE IF EXISTS t_{unique}")
