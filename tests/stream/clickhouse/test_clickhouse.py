"""The ClickHouse client on both engines: parameters, migrations, the purchase_lines sink."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from stream import metrics
from stream.analytics.sink import COLUMNS, PurchaseLineSink, row_to_tuple
from stream.clickhouse.connect import connect
from stream.clickhouse.engine import ClickHouse
from stream.clickhouse.migrate import MIGRATIONS_DIR, load_migrations, migrate, split_statements
from stream.clickhouse.params import render
from stream.errors import ChdbBusyError, MigrationError

MakeLine = Callable[..., dict[str, Any]]
REPO_ROOT = Path(__file__).resolve().parents[3]

# -- render (client-side parameters, the same for both engines) ---------------------------


def test_render_typed_literals() -> None:
    sql = render(
        "SELECT {s:String}, {n:UInt64}, {i:Int32}, {d:Date}, {t:DateTime}, {a:Array(String)}",
        {
            "s": "it's",
            "n": 2**64 - 1,
            "i": -5,
            "d": date(2026, 11, 1),
            "t": datetime(2026, 11, 21, 12, 3, 12, tzinfo=UTC),
            "a": ["x", "y"],
        },
    )
    assert sql == (
        "SELECT 'it\\'s', toUInt64(18446744073709551615), toInt32(-5), toDate('2026-11-01'), "
        "toDateTime('2026-11-21 12:03:12', 'UTC'), ['x', 'y']"
    )


def test_render_leaves_sql_alone_without_params() -> None:
    assert render("SELECT '{x:String}'", None) == "SELECT '{x:String}'"


@pytest.mark.parametrize(
    ("ch_type", "value", "error"),
    [
        ("UInt8", 256, ValueError),
        ("UInt64", -1, ValueError),
        ("Int64", True, TypeError),
        ("Int64", "5", TypeError),
        ("String", 5, TypeError),
        ("Date", datetime(2026, 1, 1, tzinfo=UTC), TypeError),
        ("DateTime", datetime(2026, 1, 1), TypeError),  # naive: which zone?
        ("Float64", float("nan"), ValueError),
        ("Map(String, String)", {}, ValueError),
    ],
)
def test_render_refuses_values_that_do_not_fit(ch_type: str, value: Any, error: type) -> None:
    with pytest.raises(error):
        render(f"SELECT {{v:{ch_type}}}", {"v": value})


def test_render_missing_parameter() -> None:
    with pytest.raises(KeyError, match="month"):
        render("SELECT {month:Date}", {})


def test_parameters_round_trip_on_both_engines(clickhouse: ClickHouse) -> None:
    nasty = "it's a \\ back'slash\\' {x:String} -- not a comment\n; DROP TABLE x"
    rows, names = clickhouse.query_with_columns(
        "SELECT {s:String} AS s, {n:UInt64} AS n, {d:Date} AS d, {neg:Int64} AS neg, "
        "{t:DateTime('UTC')} AS t, toDecimal64('-1.532', 3) AS q, {a:Array(String)} AS a",
        {
            "s": nasty,
            "n": 2**64 - 1,
            "d": date(2026, 2, 28),
            "neg": -(2**63),
            "t": datetime(2026, 11, 21, 12, 3, 12, tzinfo=UTC),
            "a": ["a'b", ""],
        },
    )
    assert names == ["s", "n", "d", "neg", "t", "q", "a"]
    assert rows == [
        (
            nasty,
            2**64 - 1,
            date(2026, 2, 28),
            -(2**63),
            datetime(2026, 11, 21, 12, 3, 12, tzinfo=UTC),
            Decimal("-1.532"),
            ["a'b", ""],
        )
    ]


def test_connect_refuses_other_urls() -> None:
    with pytest.raises(ValueError, match="clickhouse://"):
        connect("postgres://localhost/db")
    with pytest.raises(ValueError, match="identifier"):
        connect("chdb:///tmp/x?database=a;DROP")


# -- migrations ---------------------------------------------------------------------------


def test_split_statements() -> None:
    sql = "-- comment\nCREATE TABLE a (x UInt8) ENGINE = Memory;\n\n-- only a comment;\nSELECT 1;"
    assert split_statements(sql) == ["CREATE TABLE a (x UInt8) ENGINE = Memory", "SELECT 1"]


def test_migrations_apply_once_and_again_idempotently(clickhouse: ClickHouse) -> None:
    names = [m.name for m in load_migrations()]
    assert names[:2] == ["001_purchase_lines", "002_household_segments"]
    assert migrate(clickhouse) == names
    assert migrate(clickhouse) == []
    # a second, independent client sees the same state
    with connect(clickhouse.url) as again:
        assert migrate(again) == []
    recorded = clickhouse.query("SELECT version FROM schema_migrations ORDER BY version")
    assert [r[0] for r in recorded] == [m.version for m in load_migrations()]
    tables = {
        r[0]
        for r in clickhouse.query(
            "SELECT name FROM system.tables WHERE database = currentDatabase()"
        )
    }
    assert {"purchase_lines", "household_segments", "schema_migrations"} <= tables


def test_a_failed_migration_runs_again_and_a_changed_one_is_refused(
    clickhouse: ClickHouse, tmp_path: Path
) -> None:
    directory = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, directory)
    broken = directory / "900_extra.sql"
    broken.write_text(
        "CREATE TABLE IF NOT EXISTS extra (x UInt8) ENGINE = MergeTree ORDER BY x;\n"
        "SELECT no_such_function();\n"
    )
    with pytest.raises(Exception, match="no_such_function"):
        migrate(clickhouse, directory)
    assert "900" not in {r[0] for r in clickhouse.query("SELECT version FROM schema_migrations")}
    broken.write_text("CREATE TABLE IF NOT EXISTS extra (x UInt8) ENGINE = MergeTree ORDER BY x;\n")
    assert migrate(clickhouse, directory) == ["900_extra"]
    broken.write_text("-- edited\n" + broken.read_text())
    with pytest.raises(MigrationError, match="900_extra"):
        migrate(clickhouse, directory)


def test_purchase_lines_has_the_contract_columns_and_no_identifiers(clickhouse: ClickHouse) -> None:
    migrate(clickhouse)
    types = dict(
        clickhouse.query(
            "SELECT name, type FROM system.columns "
            "WHERE database = currentDatabase() AND table = 'purchase_lines'"
        )
    )
    assert types == {
        "event_id": "String",
        "line_no": "UInt16",
        "occurred_at": "DateTime('UTC')",
        "month": "Date",
        "store_id": "String",
        "household_key": "UInt64",
        "co_op": "String",
        "sku": "String",
        "product_group": "String",
        "quantity": "Decimal(18, 3)",
        "amount_cents": "Int64",
        "fuel_ml": "Int64",
        "payment_method": "String",
        "bonus_eligible": "UInt8",
        "kind": "String",
        "campaign_id": "String",
        "inserted_at": "DateTime('UTC')",
    }
    assert set(COLUMNS) == set(types) - {"inserted_at"}


# -- the sink -----------------------------------------------------------------------------


def _totals(client: ClickHouse) -> tuple[int, int, Decimal, int]:
    rows = client.query(
        "SELECT count(), sum(amount_cents), sum(quantity), sum(fuel_ml) FROM purchase_lines FINAL"
    )
    count, amount, quantity, fuel = rows[0]
    return int(count), int(amount), Decimal(quantity), int(fuel)


def test_a_redelivered_swipe_counts_once(clickhouse: ClickHouse, make_line: MakeLine) -> None:
    migrate(clickhouse)
    swipe = [
        make_line("POS-1", line_no=0, amount_cents=398, quantity="2"),
        make_line(
            "POS-1", line_no=1, amount_cents=1949, quantity="1", fuel_ml=10250, product_group="fuel"
        ),
    ]
    sink = PurchaseLineSink(clickhouse, batch_size=100, batch_seconds=60)
    assert sink.write(swipe) == 2
    assert sink.write(swipe) == 2  # redelivered after a rebalance
    sink.add(swipe)  # and once more through the buffer
    assert sink.flush(force=True) == 2
    assert _totals(clickhouse) == (2, 2347, Decimal("3.000"), 10250)
    clickhouse.execute("OPTIMIZE TABLE purchase_lines FINAL")
    assert clickhouse.query("SELECT count() FROM purchase_lines") == [(2,)]


def test_returns_are_stored_negative(clickhouse: ClickHouse, make_line: MakeLine) -> None:
    migrate(clickhouse)
    PurchaseLineSink(clickhouse, 10, 1).write(
        [
            make_line("P-1", amount_cents=1000, quantity="0.532", fuel_ml=5000),
            make_line("R-1", kind="return", amount_cents=-400, quantity="-0.2", fuel_ml=-2000),
        ]
    )
    rows = clickhouse.query(
        "SELECT kind, amount_cents, quantity, fuel_ml FROM purchase_lines FINAL ORDER BY event_id"
    )
    assert rows == [
        ("purchase", 1000, Decimal("0.532"), 5000),
        ("return", -400, Decimal("-0.200"), -2000),
    ]
    assert _totals(clickhouse) == (2, 600, Decimal("0.332"), 3000)


def test_the_row_round_trips_exactly(clickhouse: ClickHouse, make_line: MakeLine) -> None:
    migrate(clickhouse)
    row = make_line(
        "E'1\\x",
        household="H100234",
        occurred_at="2026-11-21T12:03:12Z",
        campaign_id="double-week-47",
        quantity="1.5",
    )
    PurchaseLineSink(clickhouse, 10, 1).write([row])
    stored = clickhouse.query(f"SELECT {', '.join(COLUMNS)} FROM purchase_lines FINAL")
    assert stored == [row_to_tuple(row)]
    assert stored[0][5] == row["household_key"] >= 0


def test_sink_flushes_by_size_and_by_age(clickhouse: ClickHouse, make_line: MakeLine) -> None:
    migrate(clickhouse)
    now = [100.0]
    sink = PurchaseLineSink(clickhouse, batch_size=3, batch_seconds=2.0, clock=lambda: now[0])
    counter = metrics.LINES_WRITTEN.labels(engine=clickhouse.engine)
    before = counter._value.get()
    assert sink.flush() == 0
    sink.add([make_line("A", line_no=0), make_line("A", line_no=1)])
    assert (sink.pending, sink.due(), sink.flush()) == (2, False, 0)
    now[0] += 1.0
    assert sink.seconds_until_due() == pytest.approx(1.0)
    assert sink.flush() == 0
    now[0] += 1.0
    assert sink.flush() == 2  # the oldest row waited batch_seconds
    sink.add([make_line("B", line_no=i) for i in range(7)])
    assert sink.due()
    assert sink.flush() == 7  # in chunks of batch_size
    assert sink.pending == 0
    assert counter._value.get() - before == 9
    assert _totals(clickhouse)[0] == 9


class _FlakyClient:
    engine = "chdb"

    def __init__(self) -> None:
        self.fail = 1
        self.inserted: list[list[tuple[Any, ...]]] = []

    def insert(self, table: str, columns: Any, rows: list[tuple[Any, ...]]) -> None:
        if self.fail:
            self.fail -= 1
            raise RuntimeError("ClickHouse is down")
        self.inserted.append(list(rows))


def test_a_failed_flush_keeps_the_rows(make_line: MakeLine) -> None:
    client = _FlakyClient()
    sink = PurchaseLineSink(client, batch_size=10, batch_seconds=1)  # type: ignore[arg-type]
    sink.add([make_line("A"), make_line("B")])
    with pytest.raises(RuntimeError):
        sink.flush(force=True)
    assert sink.pending == 2
    assert sink.flush(force=True) == 2
    assert [r[0] for r in client.inserted[0]] == ["A", "B"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("event_id", ""),
        ("occurred_at", "2026-11-21 12:03:12"),  # no offset
        ("month", "2026-11-02"),
        ("household_key", -1),
        ("household_key", 2**64),
        ("quantity", "abc"),
        ("quantity", 1.5),  # a float would not be exact
        ("amount_cents", "100"),
        ("bonus_eligible", 2),
        ("kind", "refund"),
        ("line_no", 70000),
    ],
)
def test_row_to_tuple_refuses_bad_rows(make_line: MakeLine, field: str, value: Any) -> None:
    row = make_line("E1")
    row[field] = value
    with pytest.raises(ValueError, match="purchase line"):
        row_to_tuple(row)
    sink = PurchaseLineSink(_FlakyClient(), 10, 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        sink.add([make_line("OK"), row])
    assert sink.pending == 0  # all or nothing


def test_row_to_tuple_normalises(make_line: MakeLine) -> None:
    row = make_line("E1", occurred_at="2026-11-21T14:03:12.250+02:00", quantity="2")
    del row["fuel_ml"], row["campaign_id"]
    converted = dict(zip(COLUMNS, row_to_tuple(row), strict=True))
    assert converted["occurred_at"] == datetime(2026, 11, 21, 12, 3, 12, tzinfo=UTC)
    assert converted["quantity"] == Decimal("2.000")
    assert (converted["fuel_ml"], converted["campaign_id"]) == (0, "")


# -- chdb: one process at a time ----------------------------------------------------------

_HOLDER = """
import sys
from stream.clickhouse.connect import connect
client = connect(sys.argv[1])
print("ready", flush=True)
sys.stdin.read()
"""


def test_chdb_directory_is_refused_while_another_process_has_it(tmp_path: Path) -> None:
    url = f"chdb://{tmp_path / 'chdb'}"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=REPO_ROOT,
        env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"},
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == b"ready\n"
        with pytest.raises(ChdbBusyError, match=r"in use by another process.*worker"):
            connect(url)
        with pytest.raises(ChdbBusyError):
            connect(url + "?database=other")
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(30)
        if holder.stdout is not None:
            holder.stdout.close()
    with connect(url) as client:  # free again once the other process is gone
        assert client.query("SELECT 1") == [(1,)]
