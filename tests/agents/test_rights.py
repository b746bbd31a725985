"""The worker keeps the register's promises by itself (contract section 9): an ended customer
past the retention period is erased and per-month state past retention is deleted, with no
command run, by the rights timer of a real worker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

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
