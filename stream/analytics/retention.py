"""ClickHouse retention: drop monthly partitions past the retention limit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from models.months import retention_cutoff as retention_cutoff  # noqa: PLC0414 (re-exported)
from stream.analytics.sink import _PARTITION_ID
from stream.clickhouse.engine import ClickHouse
from stream.clickhouse.params import quote_identifier

# -- retention ----------------------------------------------------------------------------

#: tables partitioned by toYYYYMM of a month column, dropped whole by retention
RETENTION_TABLES: tuple[str, ...] = ("purchase_lines", "household_segments")


@dataclass(frozen=True, slots=True)
class Partition:
    table: str
    partition_id: str  # toYYYYMM(month), e.g. "202411"
    month: date
    rows: int
    bytes_on_disk: int


def partitions(client: ClickHouse, tables: Sequence[str] = RETENTION_TABLES) -> list[Partition]:
    """The active monthly partitions of ``tables`` in the client's database."""
    rows = client.query(
        "SELECT table, partition_id, sum(rows), sum(bytes_on_disk) FROM system.parts "
        "WHERE active AND database = currentDatabase() AND has({tables:Array(String)}, table) "
        "GROUP BY table, partition_id ORDER BY table, partition_id",
        {"tables": list(tables)},
    )
    out = []
    for table, partition_id, n, size in rows:
        m = _PARTITION_ID.match(str(partition_id))
        if m is None:  # not a monthly partition: never ours to drop
            continue
        month = date(int(m.group(1)), int(m.group(2)), 1)
        out.append(Partition(str(table), str(partition_id), month, int(n), int(size)))
    return out


def retention_plan(
    client: ClickHouse, today: date, months: int, tables: Sequence[str] = RETENTION_TABLES
) -> list[Partition]:
    """The partitions older than the retention period (what a run would drop)."""
    cutoff = retention_cutoff(today, months)
    return [p for p in partitions(client, tables) if p.month < cutoff]


def drop_old_partitions(
    client: ClickHouse,
    today: date,
    months: int,
    *,
    dry_run: bool = False,
    tables: Sequence[str] = RETENTION_TABLES,
) -> list[Partition]:
    """Drop every partition older than the retention period; return them (dry run: only list)."""
    plan = retention_plan(client, today, months, tables)
    if not dry_run:
        for p in plan:
            # Both values were checked (identifier, six digits) before they got here.
            client.execute(
                f"ALTER TABLE {quote_identifier(p.table)} DROP PARTITION ID '{p.partition_id}'"
            )
    return plan
