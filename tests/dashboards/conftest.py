"""Fixtures of the dashboard tests: demo data, loaded into both ClickHouse engines.

``dashboard_clickhouse`` is a client on a database of its own holding the demo purchase lines
(plus a tenth of them delivered twice, as Kafka may) and segment builds for October and
November 2026, on each engine: chdb (in process, current ClickHouse) and the Debian
``clickhouse-server`` 18.16 (skipped when it is not installed). It is module-scoped: loading
takes a few seconds and every query test only reads.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from models.rules import load_rules
from stream.analytics.audit_log import write_audit
from stream.analytics.money import PartnerBonusRow, write_member_payment_totals, write_partner_bonus
from stream.analytics.rules_table import write_bonus_rules
from stream.analytics.segments import build_segments
from stream.analytics.sink import PurchaseLineSink
from stream.clickhouse.connect import connect
from stream.clickhouse.engine import ClickHouse
from stream.clickhouse.migrate import migrate
from stream.devstack.clickhouse_server import ClickHouseServerProcess
from stream.devstack.redis_server import RedisServer
from stream.settings import DEFAULT_RULES
from tests.dashboards.demo_data import AUDIT_RECORDS, DemoData, generate
from tests.support.services import unique_id


@pytest.fixture(scope="session")
def demo(redis_server: RedisServer) -> DemoData:
    return generate(redis_server.url, f"{unique_id('dash')}:")


def load_demo(client: ClickHouse, demo: DemoData) -> None:
    migrate(client)
    write_bonus_rules(client, load_rules(DEFAULT_RULES))  # as the worker does at start
    sink = PurchaseLineSink(client, batch_size=10_000, batch_seconds=1.0)
    sink.write(demo.rows)
    sink.write(demo.redelivered)  # a second insert, another part: only FINAL merges them
    for month in (date(2026, 10, 1), date(2026, 11, 1)):
        build_segments(client, month, 3)
    write_audit(client, AUDIT_RECORDS)
    write_audit(client, AUDIT_RECORDS[:2])  # redelivered: FINAL counts them once
    # Member payment totals and a partner settlement, as the commands write them.
    write_member_payment_totals(
        client,
        2025,
        {
            ("hok-elanto", "capital_interest"): (120, 36_000),
            ("hok-elanto", "surplus_refund"): (140, 51_234),
            ("pirkanmaan-osuuskauppa", "capital_interest"): (30, 9000),
        },
    )
    write_partner_bonus(
        client, date(2026, 10, 1), [PartnerBonusRow("P-ABC", "ABC Oy", 12, 123_456, 1852)]
    )


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("chdb", id="chdb"),
        pytest.param(
            "server", id="server", marks=[pytest.mark.integration, pytest.mark.clickhouse_server]
        ),
    ],
)
def dashboard_clickhouse(
    request: pytest.FixtureRequest, demo: DemoData, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ClickHouse]:
    database = f"dash_{uuid.uuid4().hex[:10]}"
    if request.param == "server":
        server: ClickHouseServerProcess = request.getfixturevalue("clickhouse_server")
        url = server.url_for(database)
    else:
        path: Path = tmp_path_factory.mktemp("dashboards-chdb") / "data"
        url = f"chdb://{path}?database={database}"
    client = connect(url)
    try:
        load_demo(client, demo)
        yield client
    finally:
        try:
            client.execute(f"DROP DATABASE IF EXISTS {database}")
        finally:
            client.close()
