"""Segments on a hand-made data set, assortment aggregates, and the consent-aware export."""

from __future__ import annotations

import argparse
import asyncio
import io
from collections import Counter
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
from pydantic import SecretStr

from stream.analytics.export import ExportResult, export_segment
from stream.analytics.pseudonym import household_key
from stream.analytics.segments import (
    CHANNELS,
    SQL,
    SegmentRules,
    assortment,
    build_segments,
    latest_build,
    load_sql,
    segment_sizes,
)
from stream.analytics.sink import PurchaseLineSink
from stream.cli import analytics as analytics_cli
from stream.clickhouse.engine import ClickHouse
from stream.clickhouse.migrate import migrate
from stream.devstack.broker import TansuBroker
from stream.errors import NoSegmentsError
from stream.settings import Settings
from stream.store.store import Store
from tests.support.services import consume

MakeLine = Callable[..., dict[str, Any]]
OCT = date(2026, 10, 1)


def _members(client: ClickHouse, build_month: date = OCT) -> dict[int, set[str]]:
    rows = client.query(
        "SELECT household_key, segment FROM household_segments WHERE build_month = {m:Date}",
        {"m": build_month},
    )
    out: dict[int, set[str]] = {}
    for key, segment in rows:
        out.setdefault(key, set()).add(segment)
    return out


def _by_household(
    client: ClickHouse, pseudonym_key: bytes, build_month: date = OCT
) -> dict[str, set[str]]:
    names = {household_key(pseudonym_key, h): h for h in ("HA", "HB", "HC", "HD", "HE", "HF")}
    return {names[k]: v for k, v in _members(client, build_month).items()}


@pytest.fixture
def dataset(clickhouse: ClickHouse, make_line: MakeLine) -> ClickHouse:
    """Six households; windows ending 2026-10 (Europe/Helsinki days)."""
    migrate(clickhouse)
    rows: list[dict[str, Any]] = []
    # HA: dairy on 8 days in each of Aug, Sep, Oct, 80 € a time: 640 €/month.
    for month in ("08", "09", "10"):
        for day in range(1, 9):
            rows.append(
                make_line(
                    f"A-{month}-{day}",
                    household="HA",
                    occurred_at=f"2026-{month}-{day:02d}T09:00:00Z",
                    amount_cents=8000,
                )
            )
    # HB: fuel, campaign meat and bread on two days in Oct; the second swipe is delivered twice.
    rows.append(
        make_line(
            "B-1",
            household="HB",
            occurred_at="2026-10-20T15:00:00Z",
            product_group="fuel",
            amount_cents=5000,
            fuel_ml=10000,
        )
    )
    for _ in range(2):
        rows.append(
            make_line(
                "B-2",
                household="HB",
                line_no=0,
                occurred_at="2026-10-21T15:00:00Z",
                product_group="meat",
                amount_cents=3000,
                campaign_id="double-week-43",
            )
        )
        rows.append(
            make_line(
                "B-2",
                household="HB",
                line_no=1,
                occurred_at="2026-10-21T15:00:00Z",
                product_group="bread",
                amount_cents=2000,
            )
        )
    # HC: one visit in August only: lapsed by the end of October.
    rows.append(
        make_line("C-1", household="HC", occurred_at="2026-08-05T10:00:00Z", amount_cents=25000)
    )
    rows.append(
        make_line(
            "C-1",
            household="HC",
            line_no=1,
            occurred_at="2026-08-05T10:00:00Z",
            product_group="produce",
            amount_cents=15000,
        )
    )
    # HD: a big September visit, a produce return in October.
    for n, (group, cents) in enumerate((("produce", 50000), ("meat", 35000), ("dairy", 30000))):
        rows.append(
            make_line(
                "D-1",
                household="HD",
                line_no=n,
                occurred_at="2026-09-10T10:00:00Z",
                product_group=group,
                amount_cents=cents,
            )
        )
    rows.append(
        make_line(
            "D-R",
            household="HD",
            kind="return",
            occurred_at="2026-10-12T10:00:00Z",
            product_group="produce",
            amount_cents=-10000,
            quantity="-1",
        )
    )
    # HE: five groups, 20 % each: no affinity.
    for n, group in enumerate(("dairy", "meat", "bread", "produce", "snacks")):
        rows.append(
            make_line(
                "E-1",
                household="HE",
                line_no=n,
                occurred_at="2026-10-15T10:00:00Z",
                product_group=group,
                amount_cents=2000,
            )
        )
    # HF: only outside the window: July, and 22:30 UTC on Oct 31 = Nov 1 in Helsinki.
    rows.append(make_line("F-1", household="HF", occurred_at="2026-07-20T10:00:00Z"))
    rows.append(
        make_line("F-2", household="HF", occurred_at="2026-10-31T22:30:00Z", month="2026-11-01")
    )
    PurchaseLineSink(clickhouse, 1000, 1).write(rows)
    return clickhouse


def test_segments_of_a_known_data_set(dataset: ClickHouse, pseudonym_key: bytes) -> None:
    assert build_segments(dataset, date(2026, 10, 17), 3) == 5
    assert _by_household(dataset, pseudonym_key) == {
        "HA": {"spend:top", "visits:frequent", "affinity:dairy"},
        "HB": {"spend:low", "visits:occasional", "fuel", "affinity:meat", "campaign_responder"},
        "HC": {"spend:medium", "visits:occasional", "lapsed", "affinity:dairy"},
        "HD": {"spend:high", "visits:occasional", "affinity:produce"},
        "HE": {"spend:low", "visits:occasional"},
    }
    features = dataset.query(
        "SELECT DISTINCT household_key, spend_cents, visit_days, recency_days, top_group, "
        "top_group_share_bp, campaign_share_bp, fuel FROM household_segments"
    )
    by_key = {row[0]: row[1:] for row in features}
    assert by_key[household_key(pseudonym_key, "HB")] == (10000, 2, 10, "meat", 6000, 3000, 1)
    assert by_key[household_key(pseudonym_key, "HC")] == (40000, 1, 87, "dairy", 6250, 0, 0)
    assert by_key[household_key(pseudonym_key, "HD")] == (105000, 1, 51, "produce", 3809, 0, 0)
    assert latest_build(dataset) == (OCT, 3)
    assert segment_sizes(dataset, OCT)["visits:occasional"] == 4


def test_a_rebuild_replaces_the_month(dataset: ClickHouse, pseudonym_key: bytes) -> None:
    build_segments(dataset, OCT, 3)
    assert build_segments(dataset, OCT, 1) == 4  # October only: HC is gone
    assert _by_household(dataset, pseudonym_key) == {
        "HA": {"spend:top", "visits:frequent", "affinity:dairy"},
        "HB": {"spend:medium", "visits:regular", "fuel", "affinity:meat", "campaign_responder"},
        # only a return in the window: no purchase day, no positive group
        "HD": {"spend:low", "visits:occasional", "lapsed"},
        "HE": {"spend:medium", "visits:occasional"},
    }
    assert latest_build(dataset) == (OCT, 1)


def test_thresholds_are_parameters(dataset: ClickHouse, pseudonym_key: bytes) -> None:
    build_segments(dataset, OCT, 3, rules=SegmentRules(affinity_share_bp=2000, lapsed_days=30))
    got = _by_household(dataset, pseudonym_key)
    assert "lapsed" in got["HD"]  # 51 days > 30
    assert any(s.startswith("affinity:") for s in got["HE"])  # 20 % >= 20 %


def test_assortment_aggregates(clickhouse: ClickHouse, make_line: MakeLine) -> None:
    migrate(clickhouse)
    at = "2026-10-05T10:00:00Z"
    PurchaseLineSink(clickhouse, 100, 1).write(
        [
            make_line("R1", household="H1", occurred_at=at, amount_cents=1000),
            make_line(
                "R1",
                household="H1",
                occurred_at=at,
                line_no=1,
                product_group="bread",
                amount_cents=500,
            ),
            make_line("R2", household="H2", occurred_at=at, amount_cents=2000),
            make_line("R2", household="H2", occurred_at=at, amount_cents=2000),  # redelivered
            make_line(
                "R3", household="H1", occurred_at=at, product_group="bread", amount_cents=300
            ),
            make_line(
                "R4",
                household="H2",
                occurred_at=at,
                kind="return",
                amount_cents=-500,
                quantity="-1",
            ),
            make_line("R5", household="H3", occurred_at=at, store_id="S2", amount_cents=700),
            make_line(
                "R6", household="H3", occurred_at="2026-09-05T10:00:00Z", amount_cents=9999
            ),  # outside the range
        ]
    )
    rows = assortment(clickhouse, OCT, OCT, min_households=1)
    got = {(r.store_id, r.product_group): r for r in rows}
    assert set(got) == {("S1", "dairy"), ("S1", "bread"), ("S2", "dairy")}
    dairy = got["S1", "dairy"]
    assert (
        dairy.sales_cents,
        dairy.households,
        dairy.receipts,
        dairy.store_receipts,
        dairy.basket_share_bp,
        dairy.month,
    ) == (2500, 2, 2, 3, 6666, OCT)
    bread = got["S1", "bread"]
    assert (bread.sales_cents, bread.households, bread.basket_share_bp) == (800, 1, 6666)
    assert got["S2", "dairy"].basket_share_bp == 10000
    # cells of fewer households than the threshold are left out
    assert {
        (r.store_id, r.product_group) for r in assortment(clickhouse, OCT, OCT, min_households=2)
    } == {("S1", "dairy")}


def test_sql_file_blocks() -> None:
    assert set(SQL) >= {
        "segment_rows",
        "segment_members",
        "segment_sizes",
        "latest_build",
        "assortment",
        "build_households",
    }
    assert all(not body.endswith(";") and "-- " not in body for body in load_sql().values())


# -- export -------------------------------------------------------------------------------


def _settings(
    redis_url: str, prefix: str, pseudonym_key: bytes, clickhouse_url: str = ""
) -> Settings:
    fields: dict[str, Any] = {
        "redis_url": redis_url,
        "redis_prefix": prefix,
        "pseudonym_key": SecretStr(pseudonym_key.decode()),
    }
    if clickhouse_url:
        fields["clickhouse_url"] = clickhouse_url
    return Settings(_env_file=None, **fields)


def _export(client: ClickHouse, settings: Settings, segment: str, channel: str) -> ExportResult:
    async def run() -> ExportResult:
        store = Store.from_url(settings.redis_url, settings.redis_prefix)
        try:
            return await export_segment(client, store, settings, segment, channel)
        finally:
            await store.close()

    return asyncio.run(run())


def _register(r: redis.Redis, prefix: str) -> None:
    def hh(hid: str, persons: list[str], status: str = "active") -> None:
        r.hset(
            f"{prefix}hh:{hid}",
            mapping={
                "co_op": "hok-elanto",
                "business": "0",
                "status": status,
                "person_ids": orjson.dumps(persons).decode(),
                "head_person_id": persons[0],
            },
        )

    def person(pid: str, hid: str, bans: list[str], email: bool, sms: bool) -> None:
        r.hset(
            f"{prefix}person:{pid}",
            mapping={
                "household_id": hid,
                "bans": orjson.dumps(bans).decode(),
                "email_marketing": "1" if email else "0",
                "sms_marketing": "1" if sms else "0",
            },
        )

    hh("HA", ["PA1", "PA2", "PA3"])
    person("PA1", "HA", [], email=True, sms=False)
    person("PA2", "HA", ["email"], email=True, sms=True)
    person("PA3", "HA", ["direct_mail"], email=False, sms=True)
    r.hset(f"{prefix}hh:HA:capital", mapping={"CP-1": "2500"})  # not a household record
    hh("HB", ["PB1", "PB2"])
    person("PB1", "HB", [], email=True, sms=True)
    person("PB2", "HB", ["product_data_marketing"], email=True, sms=True)
    hh("HC", ["PC1"], status="ended")
    person("PC1", "HC", [], email=True, sms=True)
    # HD: not in the register (any more)
    hh("HE", ["PE1"])
    person("PE1", "HE", [], email=False, sms=False)
    hh("HX", ["PX1"])  # in no segment
    person("PX1", "HX", [], email=True, sms=True)


@pytest.fixture
def exported(
    dataset: ClickHouse,
    redis_client: redis.Redis,
    redis_prefix: str,
    pseudonym_key: bytes,
    redis_server: Any,
) -> tuple[ClickHouse, redis.Redis, Settings]:
    # every household of the data set in one segment, whatever its purchases
    dataset.execute(
        "INSERT INTO household_segments (build_month, months, household_key, segment) "
        "SELECT toDate('2026-10-01'), 3, household_key, 'test:all' FROM purchase_lines FINAL "
        "GROUP BY household_key"
    )
    _register(redis_client, redis_prefix)
    return dataset, redis_client, _settings(redis_server.url, redis_prefix, pseudonym_key)


@pytest.mark.parametrize(
    ("channel", "rows", "households_out", "persons_out"),
    [
        (
            "email",
            [("HA", ("PA1",))],
            {"no_reachable_person": 1},
            {"email_ban": 1, "no_email_permission": 2},
        ),
        ("sms", [("HA", ("PA2", "PA3"))], {"no_reachable_person": 1}, {"no_sms_permission": 2}),
        ("mail", [("HA", ("PA1", "PA2")), ("HE", ("PE1",))], {}, {"direct_mail_ban": 1}),
    ],
)
def test_export_applies_bans_and_permissions(
    exported: tuple[ClickHouse, redis.Redis, Settings],
    channel: str,
    rows: list[tuple[str, tuple[str, ...]]],
    households_out: dict[str, int],
    persons_out: dict[str, int],
) -> None:
    client, _, settings = exported
    result = _export(client, settings, "test:all", channel)
    assert result.members == 6
    assert [(row.household_id, row.person_ids) for row in result.rows] == rows
    assert result.households_left_out == Counter(
        {
            "product_data_marketing_ban": 1,
            "household_ended": 1,
            "household_unknown": 2,
            **households_out,
        }
    )  # HD and HF are not in the register
    assert result.persons_left_out == Counter(persons_out)
    assert result.build_month == OCT


def test_a_household_banning_product_data_is_never_exported(
    exported: tuple[ClickHouse, redis.Redis, Settings],
) -> None:
    client, _, settings = exported
    build_segments(client, OCT, 3)
    segments = set(segment_sizes(client, OCT))
    assert {"fuel", "campaign_responder", "affinity:meat"} <= segments  # HB is in these
    for segment in sorted(segments):
        for channel in CHANNELS:
            result = _export(client, settings, segment, channel)
            assert "HB" not in {row.household_id for row in result.rows}
            assert "PB1" not in {p for row in result.rows for p in row.person_ids}
    fuel = _export(client, settings, "fuel", "sms")
    assert (fuel.members, fuel.rows, fuel.households_left_out) == (
        1,
        [],
        Counter({"product_data_marketing_ban": 1}),
    )


def test_export_without_a_build(
    clickhouse: ClickHouse,
    redis_client: redis.Redis,
    redis_prefix: str,
    pseudonym_key: bytes,
    redis_server: Any,
) -> None:
    migrate(clickhouse)
    settings = _settings(redis_server.url, redis_prefix, pseudonym_key)
    with pytest.raises(NoSegmentsError, match="segments build"):
        _export(clickhouse, settings, "fuel", "email")
    with pytest.raises(ValueError, match="channel"):
        _export(clickhouse, settings, "fuel", "fax")


# -- the command line ---------------------------------------------------------------------


def _parse(argv: list[str]) -> tuple[argparse.Namespace, dict[str, Any]]:
    parser = argparse.ArgumentParser(prog="loyalty")
    sub = parser.add_subparsers(dest="command")
    handlers = analytics_cli.add_commands(sub)
    return parser.parse_args(argv), handlers


def test_cli_build_and_export(
    exported: tuple[ClickHouse, redis.Redis, Settings],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    pseudonym_key: bytes,
    kafka: TansuBroker,
    unique: str,
) -> None:
    client, _r, settings = exported
    settings = settings.model_copy(
        update={"clickhouse_url": client.url, "kafka_url": kafka.url, "topic_prefix": f"{unique}."}
    )

    args, handlers = _parse(["segments", "build", "--as-of", "2026-10", "--months", "3"])
    assert handlers[args.command](args, settings) == 0
    out = capsys.readouterr().out
    # HB (a person bans product_data_marketing) is not built at all: it was the only
    # campaign responder and the only fuel buyer.
    assert (
        "built segments for 2026-10 over 3 month(s): 4 households "
        "(1 left out: product_data_marketing ban)" in out
    )
    assert "campaign_responder" not in out and "fuel" not in out

    args, handlers = _parse(["segments", "export", "affinity:dairy", "--channel", "email"])
    assert handlers[args.command](args, settings) == 0
    captured = capsys.readouterr()
    assert captured.out == "household_id,person_id\nHA,PA1\n"
    assert "2 households in the segment, exported 1 households / 1 persons" in captured.err
    assert "household_ended 1" in captured.err and "email_ban 1" in captured.err

    target = tmp_path / "out.csv"
    args, handlers = _parse(["segments", "export", "fuel", "--channel", "sms", "-o", str(target)])
    assert handlers[args.command](args, settings) == 0
    assert target.read_text() == "household_id,person_id\n"
    assert "0 households in the segment" in capsys.readouterr().err
    # contract section 10: each export is in the audit trail, and names no household
    records = consume(kafka.bootstrap, settings.topic("audit"), 2)
    audits = sorted((orjson.loads(r.value) for r in records), key=lambda a: a["detail"])
    assert [(a["action"], a["outcome"], a["subject_key"]) for a in audits] == [
        ("export", "ok", ""),
        ("export", "ok", ""),
    ]
    assert audits[0]["detail"].startswith("segment=affinity:dairy channel=email")
    assert audits[0]["client"].startswith("cli:")
    assert b"HA" not in b"".join(r.value for r in records)


def test_cli_reports_errors_in_one_line(
    clickhouse: ClickHouse,
    capsys: pytest.CaptureFixture[str],
    redis_server: Any,
    redis_prefix: str,
    pseudonym_key: bytes,
) -> None:
    migrate(clickhouse)
    settings = _settings(redis_server.url, redis_prefix, pseudonym_key, clickhouse.url)
    args, handlers = _parse(["segments", "export", "fuel", "--channel", "mail"])
    assert handlers[args.command](args, settings) == 1
    assert capsys.readouterr().err.startswith(
        "loyalty segments: error: no segments have been built yet"
    )


def test_cli_help_mentions_the_worker() -> None:
    parser = argparse.ArgumentParser(prog="loyalty")
    analytics_cli.add_commands(parser.add_subparsers(dest="command"))
    buf = io.StringIO()
    sub_action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    sub_action.choices["segments"].print_help(buf)
    assert "stop `loyalty worker` first" in buf.getvalue()


@pytest.mark.parametrize(
    ("channel", "allowed", "reason"),
    [
        ("phone", ("PA2", "PA3"), "phone_marketing_ban"),
        ("survey", ("PA1", "PA3"), "surveys_ban"),
        ("owner_mail", ("PA1", "PA2"), "owner_mail_ban"),
    ],
)
def test_each_channel_ban_keeps_exactly_its_persons_out(
    exported: tuple[ClickHouse, redis.Redis, Settings],
    redis_prefix: str,
    channel: str,
    allowed: tuple[str, ...],
    reason: str,
) -> None:
    client, r, settings = exported
    for pid, bans in (("PA1", ["phone_marketing"]), ("PA2", ["surveys"]), ("PA3", ["owner_mail"])):
        r.hset(f"{redis_prefix}person:{pid}", "bans", orjson.dumps(bans).decode())
    result = _export(client, settings, "test:all", channel)
    assert [(row.household_id, row.person_ids) for row in result.rows] == [
        ("HA", allowed),
        ("HE", ("PE1",)),
    ]
    assert result.persons_left_out == Counter({reason: 1})
    assert result.households_left_out == Counter(
        {"product_data_marketing_ban": 1, "household_ended": 1, "household_unknown": 2}
    )


def test_a_household_banning_product_data_is_not_built_into_any_segment(
    exported: tuple[ClickHouse, redis.Redis, Settings],
    pseudonym_key: bytes,
) -> None:
    client, _, settings = exported
    store = Store.from_url(settings.redis_url, settings.redis_prefix)

    async def banned() -> set[str]:
        try:
            return await store.product_data_banned_households()
        finally:
            await store.close()

    households = asyncio.run(banned())
    assert households == {"HB"}
    hb = household_key(pseudonym_key, "HB")
    unfiltered = build_segments(client, OCT, 3)
    built = build_segments(client, OCT, 3, excluded={hb})  # replaces the build
    assert built == unfiltered - 1
    keys = {
        int(k)
        for (k,) in client.query(
            "SELECT DISTINCT household_key FROM household_segments WHERE build_month = {m:Date}",
            {"m": OCT},
        )
    }
    assert hb not in keys and len(keys) == built
    for segment in segment_sizes(client, OCT):
        assert hb not in {
            int(k)
            for (k,) in client.query(
                SQL["segment_members"], {"build_month": OCT, "segment": segment}
            )
        }
