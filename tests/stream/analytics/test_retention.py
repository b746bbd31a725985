"""Retention drops whole monthly partitions older than the period, on both engines."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import date
from typing import Any

import orjson
import pytest
import redis

from models.rules import load_rules
from stream.analytics.retention import (
    drop_old_partitions,
    partitions,
    retention_cutoff,
    retention_plan,
)
from stream.analytics.rules_table import read_bonus_rules
from stream.analytics.segments import build_segments
from stream.analytics.sink import PurchaseLineSink
from stream.cli import analytics as analytics_cli
from stream.clickhouse.engine import ClickHouse
from stream.clickhouse.migrate import migrate
from stream.devstack.broker import TansuBroker
from stream.devstack.redis_server import RedisServer
from stream.settings import Settings
from tests.support.services import consume

MakeLine = Callable[..., dict[str, Any]]
TODAY = date(2026, 11, 22)


def _month(index: int) -> date:
    return date(index // 12, index % 12 + 1, 1)


@pytest.mark.parametrize(
    ("today", "months", "cutoff"),
    [
        (date(2026, 11, 22), 24, date(2024, 12, 1)),
        (date(2026, 11, 1), 1, date(2026, 11, 1)),
        (date(2026, 1, 31), 2, date(2025, 12, 1)),
        (date(2026, 12, 31), 12, date(2026, 1, 1)),
    ],
)
def test_retention_cutoff(today: date, months: int, cutoff: date) -> None:
    assert retention_cutoff(today, months) == cutoff


def test_retention_cutoff_needs_a_month() -> None:
    with pytest.raises(ValueError):
        retention_cutoff(TODAY, 0)


@pytest.fixture
def months_of_data(clickhouse: ClickHouse, make_line: MakeLine) -> ClickHouse:
    """One purchase line in each month from 2024-09 to 2026-11, and two segment builds."""
    migrate(clickhouse)
    rows = []
    for index in range(2024 * 12 + 8, 2026 * 12 + 11):
        month = _month(index)
        rows.append(make_line(f"E-{month:%Y%m}", occurred_at=f"{month:%Y-%m}-15T10:00:00Z"))
    PurchaseLineSink(clickhouse, 1000, 1).write(rows)
    build_segments(clickhouse, date(2024, 11, 1), 1)
    build_segments(clickhouse, date(2026, 10, 1), 1)
    return clickhouse


def _months(client: ClickHouse, table: str) -> list[date]:
    return sorted({p.month for p in partitions(client) if p.table == table})


def test_retention_drops_exactly_the_old_months(months_of_data: ClickHouse) -> None:
    client = months_of_data
    assert len(_months(client, "purchase_lines")) == 27
    plan = retention_plan(client, TODAY, 24)
    assert [(p.table, p.partition_id) for p in plan] == [
        ("household_segments", "202411"),
        ("purchase_lines", "202409"),
        ("purchase_lines", "202410"),
        ("purchase_lines", "202411"),
    ]
    assert all(p.rows >= 1 for p in plan)

    assert drop_old_partitions(client, TODAY, 24, dry_run=True) == plan
    assert len(_months(client, "purchase_lines")) == 27  # a dry run drops nothing
    assert client.query("SELECT count() FROM purchase_lines FINAL") == [(27,)]

    assert drop_old_partitions(client, TODAY, 24) == plan
    kept = _months(client, "purchase_lines")
    assert kept == [_month(i) for i in range(2024 * 12 + 11, 2026 * 12 + 11)]
    assert len(kept) == 24
    assert client.query("SELECT min(month), count() FROM purchase_lines FINAL") == [
        (date(2024, 12, 1), 24)
    ]
    assert _months(client, "household_segments") == [date(2026, 10, 1)]
    assert retention_plan(client, TODAY, 24) == []
    assert drop_old_partitions(client, TODAY, 24) == []  # nothing left to do


def test_cli_retention_run(
    months_of_data: ClickHouse,
    capsys: pytest.CaptureFixture[str],
    redis_server: RedisServer,
    redis_client: redis.Redis,
    redis_prefix: str,
    kafka: TansuBroker,
    unique: str,
) -> None:
    settings = Settings(
        _env_file=None,
        clickhouse_url=months_of_data.url,
        redis_url=redis_server.url,
        redis_prefix=redis_prefix,
        kafka_url=kafka.url,
        topic_prefix=f"{unique}.",
    )
    redis_client.hset(f"{redis_prefix}acc:H1:2024-09", "swipes", 1)
    redis_client.hset(f"{redis_prefix}hh:H1", "co_op", "x")
    parser = argparse.ArgumentParser(prog="loyalty")
    handlers = analytics_cli.add_commands(parser.add_subparsers(dest="command"))

    # "today" is the real date here: keep enough months that nothing of the data is due
    args = parser.parse_args(["retention", "run", "--dry-run", "--months", "1200"])
    assert handlers[args.command](args, settings) == 0
    assert "would drop 0 partition(s)" in capsys.readouterr().out

    args = parser.parse_args(["retention", "run", "--dry-run", "--months", "1"])
    assert handlers[args.command](args, settings) == 0
    out = capsys.readouterr().out
    assert "would drop" in out and "purchase_lines 2024-09 (1 rows)" in out
    assert len(_months(months_of_data, "purchase_lines")) == 27

    assert "would drop keys of months before" in out and "1 acc" in out
    assert redis_client.exists(f"{redis_prefix}acc:H1:2024-09") == 1

    # keeping data longer than the register promises is refused unless allowed
    args = parser.parse_args(["retention", "run", "--months", "25"])
    assert handlers[args.command](args, settings) == 1
    assert "LOYALTY_RETENTION_ALLOW_LONGER" in capsys.readouterr().err
    assert len(_months(months_of_data, "purchase_lines")) == 27

    args = parser.parse_args(["retention", "run", "--months", "1"])
    assert handlers[args.command](args, settings) == 0
    assert "dropped purchase_lines 2024-09" in capsys.readouterr().out
    assert len(_months(months_of_data, "purchase_lines")) <= 1
    assert redis_client.exists(f"{redis_prefix}acc:H1:2024-09") == 0
    assert redis_client.exists(f"{redis_prefix}hh:H1") == 1
    # the real run (not the dry runs) is in the audit trail
    (record,) = consume(kafka.bootstrap, settings.topic("audit"), 1)
    audit = orjson.loads(record.value)
    assert (audit["action"], audit["outcome"]) == ("retention", "ok")
    assert audit["detail"] == "manual run, keeping 1 months"


def test_cli_migrate(clickhouse: ClickHouse, capsys: pytest.CaptureFixture[str]) -> None:
    settings = Settings(_env_file=None, clickhouse_url=clickhouse.url)
    parser = argparse.ArgumentParser(prog="loyalty")
    handlers = analytics_cli.add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["migrate"])
    assert handlers["migrate"](args, settings) == 0
    first = capsys.readouterr().out
    assert "applied 001_purchase_lines" in first
    assert f"bonus rules written ({settings.rules})" in first
    assert handlers["migrate"](args, settings) == 0
    assert capsys.readouterr().out == (
        f"schema is up to date\nbonus rules unchanged ({settings.rules})\n"
    )
    assert read_bonus_rules(clickhouse)["tier_bp"] == [
        t.bp for t in load_rules(settings.rules).bonus_tables["default"]
    ]
