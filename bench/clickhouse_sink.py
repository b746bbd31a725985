"""Purchase lines per second into ClickHouse: version 2 messages (rows made in Python) next to
version 3 (rows ClickHouse makes itself, through ``purchase_swipes`` and its view).

    python bench/clickhouse_sink.py [--lines 200000] [--batch 5000] [--runs 3]
                                    [--engines chdb,server] [--server-url clickhouse://...]

The analytics stage's work, as ``LinesProcessor.process`` does it: on the main thread each
message (about 1000 lines, as the swipe stage sends them) is read (version 2:
``message_tuples``; version 3: its header only) into a ``PurchaseLineSink``; the sink's flush
(the INSERTs) runs on a second thread, as the stage's ClickHouse thread. Printed per path:
lines/s end to end; main-thread CPU per line (``time.thread_time`` around the main thread's
part); the ClickHouse thread's CPU per line; and how fast a pure-Python loop on the main thread
runs while the inserts run, against the same loop alone (the GIL the insert thread holds).

Without --server-url the Debian clickhouse-server is started on free ports in a temporary
directory (and skipped if it is not installed). Each run uses a fresh database; medians.
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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stream.analytics.lines import (
    encode,
    encode_v2,
    is_v3,
    message_tuples,
    swipe_item,
    swipes_header,
)
from stream.analytics.sink import TABLE, PurchaseLineSink, SwipesMessage
from stream.clickhouse.connect import connect
from stream.clickhouse.migrate import migrate
from stream.devstack.clickhouse_server import ClickHouseServerProcess, find_clickhouse_server

GROUPS = ["dairy", "bread", "meat", "produce", "snacks", "drinks", "household", "fuel"]
STORES = [f"S{n:04d}" for n in range(200)]
METHODS = ["s_etukortti_visa", "payment_card", "cash", "mobile"]
LINES_PER_MESSAGE = 1000  # as stream.bonus.swipes sends them


@dataclass(frozen=True)
class Line:
    sku: str
    product_group: str
    quantity: int | float
    amount_cents: int
    fuel_ml: int | None


def make_items(lines: int, seed: int = 7) -> list[list[Any]]:
    """Swipe items (``swipe_item``) of 1 to 15 lines (8 on average) until ``lines`` lines."""
    rnd = random.Random(seed)
    items: list[list[Any]] = []
    total = 0
    while total < lines:
        count = min(rnd.randint(1, 15), lines - total)
        day = rnd.randint(1, 30)
        store = rnd.choice(STORES)
        swipe_lines = []
        for _ in range(count):
            group = rnd.choice(GROUPS)
            fuel = group == "fuel"
            swipe_lines.append(
                Line(
                    f"64084300{rnd.randint(0, 99999):05d}",
                    group,
                    rnd.randint(1, 4) if not fuel else rnd.randint(5000, 60000) / 1000,
                    rnd.randint(50, 8000),
                    rnd.randint(5000, 60000) if fuel else None,
                )
            )
        items.append(
            swipe_item(
                event_id=f"POS-{store}-202611{day:02d}-{len(items):08d}",
                occurred_at=f"2026-11-{day:02d}T{rnd.randint(6, 21):02d}:"
                f"{rnd.randint(0, 59):02d}:{rnd.randint(0, 59):02d}Z",
                month="2026-11-01",
                store_id=store,
                household_key=rnd.getrandbits(64),
                co_op="hok-elanto",
                payment_method=rnd.choice(METHODS),
                kind="return" if rnd.random() < 0.02 else "purchase",
                campaign_id="double-week-47",
                business=rnd.random() < 0.05,
                lines=swipe_lines,
                codes=tuple(rnd.choice((0, 1, 1, 2)) for _ in swipe_lines),
            )
        )
        total += count
    return items


def messages_of(items: list[list[Any]], encoder: Callable[[list[list[Any]]], bytes]) -> list[bytes]:
    out, chunk, count = [], [], 0
    for item in items:
        chunk.append(item)
        count += len(item[10])
        if count >= LINES_PER_MESSAGE:
            out.append(encoder(chunk))
            chunk, count = [], 0
    if chunk:
        out.append(encoder(chunk))
    return out


def read_into(sink: PurchaseLineSink, value: bytes) -> None:
    """What ``LinesProcessor.process`` does with one record on the main thread."""
    if is_v3(value):
        head = swipes_header(value)
        sink.add_swipes(SwipesMessage(b"k", value, head.rows, head.lines, head.households))
    else:
        sink.add_tuples(message_tuples(value))


def spin(until: Callable[[], bool]) -> tuple[int, float]:
    """Count a pure-Python loop until ``until()``: (iterations, seconds)."""
    n, start = 0, time.perf_counter()
    while not until():
        for _ in range(200):
            n += 1
    return n, time.perf_counter() - start


@dataclass
class Run:
    lines_per_s: float
    main_us: float  # main-thread CPU per line
    ch_us: float  # ClickHouse thread CPU per line
    spin_share: float  # the main thread's loop speed during the inserts, of its speed alone


def run_path(
    url_for: Callable[[str], str],
    messages: list[bytes],
    lines: int,
    batch: int,
    spin_alone: float | None = None,
) -> Run:
    """One pass of ``messages``; with ``spin_alone`` (the loop's speed alone) the main thread
    spins while the inserts run, for ``spin_share`` only (the spin slows the inserts)."""
    database = f"bench_{uuid.uuid4().hex[:8]}"
    client = connect(url_for(database))
    pool = ThreadPoolExecutor(1, thread_name_prefix="clickhouse")
    try:
        migrate(client)
        sink = PurchaseLineSink(client, batch_size=batch, batch_seconds=3600)
        per_batch = max(1, batch // LINES_PER_MESSAGE) * 4  # the agent's batches: several inserts
        main_cpu = ch_cpu = 0.0
        spun, spun_seconds = 0, 0.0

        def flush() -> tuple[int, float]:
            started = time.thread_time()
            written = sink.flush(force=True)
            return written, time.thread_time() - started

        started = time.perf_counter()
        written = 0
        for at in range(0, len(messages), per_batch):
            cpu = time.thread_time()
            for value in messages[at : at + per_batch]:
                read_into(sink, value)
            main_cpu += time.thread_time() - cpu
            future = pool.submit(flush)
            if spin_alone is not None:
                n, seconds = spin(future.done)
                spun, spun_seconds = spun + n, spun_seconds + seconds
            done, cpu_ch = future.result()
            written, ch_cpu = written + done, ch_cpu + cpu_ch
        elapsed = time.perf_counter() - started
        assert written == lines, (written, lines)
        counted = client.query(f"SELECT count() FROM {TABLE} FINAL")[0][0]
        assert counted == lines, (counted, lines)
        return Run(
            lines_per_s=lines / elapsed,
            main_us=main_cpu / lines * 1e6,
            ch_us=ch_cpu / lines * 1e6,
            spin_share=(spun / spun_seconds) / spin_alone if spin_alone and spun_seconds else 0,
        )
    finally:
        pool.shutdown()
        client.execute(f"DROP DATABASE IF EXISTS {database}")
        client.close()


def spin_alone() -> float:
    deadline = time.perf_counter() + 0.5
    n, seconds = spin(lambda: time.perf_counter() >= deadline)
    return n / seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=50_000, help="LOYALTY_ANALYTICS_BATCH_SIZE")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--engines", default="chdb,server")
    parser.add_argument("--server-url", default=None, help="clickhouse://host:port (no database)")
    args = parser.parse_args()

    items = make_items(args.lines)
    paths = {"v2": messages_of(items, encode_v2), "v3": messages_of(items, encode)}
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    print(
        f"{args.lines} purchase lines ({len(items)} swipes, {len(paths['v3'])} messages), "
        f"inserts of {args.batch} lines, median of {args.runs} runs"
    )
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
                alone = spin_alone()
                runs: dict[str, list[Run]] = {name: [] for name in paths}
                spins: dict[str, list[Run]] = {name: [] for name in paths}
                for _ in range(args.runs):
                    for name, messages in paths.items():  # interleaved: same conditions
                        runs[name].append(run_path(url_for, messages, args.lines, args.batch))
                        spins[name].append(
                            run_path(url_for, messages, args.lines, args.batch, alone)
                        )
            finally:
                if server is not None:
                    server.stop()
            print(f"{engine} ({version}):")
            print(
                f"  {'path':<4} {'lines/s':>10} {'main us/line':>13} {'CH-thread us/line':>18} "
                f"{'main-thread speed during inserts':>33}"
            )
            for name, results in runs.items():
                print(
                    f"  {name:<4} {statistics.median(r.lines_per_s for r in results):>10,.0f} "
                    f"{statistics.median(r.main_us for r in results):>13.2f} "
                    f"{statistics.median(r.ch_us for r in results):>18.2f} "
                    f"{statistics.median(r.spin_share for r in spins[name]):>32.0%}"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
