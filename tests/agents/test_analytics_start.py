"""The worker's analytics stage connects at start: the schema and the Bonus rules the dashboards
read are in ClickHouse before any purchase line arrives."""

from __future__ import annotations

from models.rules import load_rules
from stream.settings import DEFAULT_RULES
from tests.agents.conftest import Deployment
from tests.support.services import wait_until


def test_the_worker_writes_the_rules_for_the_dashboards_when_it_starts(
    deployment: Deployment,
) -> None:
    from stream.clickhouse.connect import connect  # noqa: PLC0415 (chdb opens only when asked)

    worker = deployment.start_worker()
    wait_until(
        lambda: "Bonus rules written to ClickHouse" in worker.log_tail(50_000),
        timeout=25,  # at start: not when a timer or the first batch happens to open it
        what="the rules written at start",
    )
    worker.stop()  # chdb opens in one process at a time
    with connect(deployment.env["LOYALTY_CLICKHOUSE_URL"]) as ch:
        lines = ch.query("SELECT count() FROM purchase_lines")
        rules = ch.query("SELECT count(), argMax(tier_bp, version) FROM bonus_rules")
    assert lines == [(0,)], "no purchase line was needed"
    tiers = load_rules(DEFAULT_RULES).bonus_tables["default"]
    assert rules == [(1, [t.bp for t in tiers])]
