"""Erasure in ClickHouse (contract section 9): a household's rows, found by ``household_key``.

The two engines delete differently: the 18.16 server has ``ALTER TABLE ... DELETE`` mutations,
which run in the background (we wait until ``system.mutations`` says they are done); chdb
(26.9) has lightweight ``DELETE FROM``, which masks the rows at once.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from stream.clickhouse.engine import ClickHouse, ClickHouseError
from stream.clickhouse.params import quote_identifier

#: every table with a ``household_key`` column
ERASE_TABLES: tuple[str, ...] = ("purchase_lines", "household_segments")
MUTATION_WAIT_SECONDS = 600.0


def delete_households(
    client: ClickHouse,
    keys: Sequence[int],
    *,
    tables: Sequence[str] = ERASE_TABLES,
    wait_seconds: float = MUTATION_WAIT_SECONDS,
) -> None:
    """Delete every row of ``keys`` from ``tables``; returns when the rows are gone."""
    if not keys:
        return
    params = {"keys": sorted(set(keys))}
    where = "WHERE has({keys:Array(UInt64)}, household_key)"
    for table in tables:
        name = quote_identifier(table)
        if client.engine == "chdb":
            client.execute(f"DELETE FROM {name} {where}", params)  # noqa: S608
        else:
            client.execute(f"ALTER TABLE {name} DELETE {where}", params)
    if client.engine != "chdb":
        wait_for_mutations(client, tables, wait_seconds)


def wait_for_mutations(client: ClickHouse, tables: Sequence[str], wait_seconds: float) -> None:
    """Wait until no mutation of ``tables`` is still running (18.16 has no mutations_sync)."""
    deadline = time.monotonic() + wait_seconds
    delay = 0.05
    while True:
        rows = client.query(
            "SELECT count() FROM system.mutations WHERE database = currentDatabase() "
            "AND has({tables:Array(String)}, table) AND is_done = 0",
            {"tables": list(tables)},
        )
        if not rows or int(rows[0][0]) == 0:
            return
        if time.monotonic() > deadline:
            raise ClickHouseError(
                f"ClickHouse mutations of {', '.join(tables)} not done after {wait_seconds:.0f} s"
            )
        time.sleep(delay)
        delay = min(delay * 2, 1.0)


def rows_of(client: ClickHouse, keys: Sequence[int], tables: Sequence[str] = ERASE_TABLES) -> int:
    """How many rows of ``tables`` still carry one of ``keys`` (0 after an erasure)."""
    total = 0
    for table in tables:
        name = quote_identifier(table)
        rows = client.query(
            f"SELECT count() FROM {name} WHERE has({{keys:Array(UInt64)}}, household_key)",  # noqa: S608
            {"keys": sorted(set(keys))},
        )
        total += int(rows[0][0]) if rows else 0
    return total
