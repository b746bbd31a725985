"""Rows per second through PurchaseLineSink into each ClickHouse engine.

    python bench/clickhouse_sink.py [--rows 200000] [--batch 5000] [--runs 3]
                                    [--engines chdb,server] [--server-url clickhouse://...]

Without --server-url the Debian clickhouse-server is started on free ports in a temporary
directory (and skipped if it is not installed). Each run inserts into a fresh database; the
median of the runs is printed, for the whole sink path (convert the topic's JSON dicts, then
insert) and for the inserts alone.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stream.analytics.sink import COLUMNS, TABLE, PurchaseLineSink, row_to_tuple
from stream.clickhouse.connect import connect
from stream.clickhouse.engine import ClickHouse
from stream.clickhouse.migrate import migrate
from stream.devstack.clickhouse_server import ClickHouseServerProcess, find_clickhouse_server

GROUPS = ["dairy", "bread", "meat", "produce", "snacks", "drinks", "household", "fuel"]
STORES = [f"S{n:04d}" for n in range(200)]
METHODS = ["s_etukortti_visa", "payment_card", "cash", "mobile"]


def make_rows(count: int, seed: int = 7) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    rows: list[dict[str, Any]] = []
    event = 0
    while len(rows) < count:
        event += 1
        lines = rnd.randint(1, 12)
        day = rnd.randint(1, 30)
        store = rnd.choice(STORES)
        hkey = rnd.getrandbits(64)
        method = rnd.choice(METHODS)
        kind = "return" if rnd.random() < 0.02 else "purchase"
        sign = -1 if kind == "return" else 1
        for line_no in range(min(lines, count - len(rows))):
            group = rnd.choice(GROUPS)
            fuel = group == "fuel"
            rows.append(
                {
                    "event_id": f"POS-{store}-202611{day:02d}-{event:08d}",
                    "line_no": line_no,
                    "occurred_at": f"2026-11-{day:02d}T{rnd.randint(6, 21):02d}:"
                    f"{rnd.randint(0, 59):02d}:{rnd.randint(0, 59):02d}Z",
                    "month": "2026-11-01",
                    "store_id": store,
                    "household_key": hkey,
                    "co_op": "hok-elanto",
                    "sku": f"64084300{rnd.randint(0, 99999):05d}",
                    "product_group": group,
                    "quantity": str(sign * (rnd.randint(1, 4) if not fuel else 1)),
                    "amount_cents": sign * rnd.randint(50, 8000),
                    "fuel_ml": sign * rnd.randint(5000, 60000) if fuel else 0,
                    "payment_method": method,
                    "bonus_eligible": 1,
                    "kind": kind,
                    "campaign_id": "double-week-47" if rnd.random() < 0.1 else "",
                }
            )
    return rows


def timed(fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run_engine(
    url_for: Callable[[str], str], rows: list[dict[str, Any]], batch: int, runs: int
) -> tuple[float, float]:
    converted = [row_to_tuple(r) for r in rows]
    sink_rates, insert_rates = [], []
    for _ in range(runs):
        for mode in ("sink", "insert"):
            database = f"bench_{uuid.uuid4().hex[:8]}"
            client: ClickHouse = connect(url_for(database))
            try:
                migrate(client)
                if mode == "sink":
                    sink = PurchaseLineSink(client, batch_size=batch, batch_seconds=3600)

                    def via_sink(sink: PurchaseLineSink = sink) -> None:
                        for start in range(0, len(rows), batch):
                            sink.add(rows[start : start + batch])
                            sink.flush()
                        sink.flush(force=True)

                    sink_rates.append(len(rows) / timed(via_sink))
                else:

                    def inserts(client: ClickHouse = client) -> None:
                        for start in range(0, len(converted), batch):
                            client.insert(TABLE, COLUMNS, converted[start : start + batch])

                    insert_rates.append(len(rows) / timed(inserts))
                counted = client.query(f"SELECT count() FROM {TABLE} FINAL")[0][0]
                assert counted == len(rows), (counted, len(rows))
            finally:
                client.execute(f"DROP DATABASE IF EXISTS {database}")
                client.close()
    return statistics.median(sink_rates), statistics.median(insert_rates)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--engines", default="chdb,server")
    parser.add_argument("--server-url", default=None, help="clickhouse://host:port (no database)")
    args = parser.parse_args()

    rows = make_rows(args.rows)
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    print(f"{args.rows} purchase lines in batches of {args.batch}, median of {args.runs} runs")
    with tempfile.TemporaryDirectory(prefix="bench-clickhouse-") as tmp:
        for engine in engines:
            server: ClickHouseServerProcess | None = None
            url_for: Callable[[str], str]
            if engine == "chdb":
                url_for = f"chdb://{Path(tmp) / 'chdb'}?database={{}}".format
            elif engine == "server":
                if args.server_url:
                    url_for = (args.server_url.rstrip("/") + "/{}").format
                elif find_clickhouse_server() is None:
                    print("server: skipped (clickhouse-server is not installed)")
                    continue
                else:
                    server = ClickHouseServerProcess(Path(tmp) / "server").start()
                    url_for = server.url_for
            else:
                parser.error(f"unknown engine {engine!r}")
            try:
                with connect(url_for("default")) as probe:
                    version = probe.query("SELECT version()")[0][0]
                sink_rate, insert_rate = run_engine(url_for, rows, args.batch, args.runs)
            finally:
                if server is not None:
                    server.stop()
            print(
                f"{engine:>6} ({version}): {sink_rate:>9,.0f} rows/s through the sink "
                f"(convert + insert), {insert_rate:>9,.0f} rows/s inserts alone"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
