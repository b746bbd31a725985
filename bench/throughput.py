"""The worker against a hand-written loop, on the same backlog, in the same run.

On one embedded stack (Tansu, Redis, chdb): the register is loaded and applied once, and one
backlog of swipes is generated. Each round drains that same backlog with

- one ``loyalty worker`` process (ClickHouse lines included),
- ``bench/handloop.py``: plain aiokafka + orjson + redis-py, the same Redis accumulation (the
  worker's Lua script, the same fields: the bench checks that the loop's accumulators equal
  the worker's), no ClickHouse,
- two ``loyalty worker`` processes in one group,

each with its own topics, consumer group and copy of the register in Redis. The group settles
on the empty topics; then the clock starts and the backlog is loaded (the consumers start on
it while it loads, so every swipe counts from there). It prints swipes/s, the worker/loop
ratio, the worker's main-thread CPU microseconds per swipe (from ``/proc``: the main thread's
utime + stime), where the rest of the CPU went (the worker's other threads, Redis, the
broker) and how long the main thread was ready to run but waited for a core
(``/proc/.../schedstat``: on a machine whose cores are all busy, that is throughput lost to
the machine, not to the worker). Then the p99
from a swipe's send to its effect being visible in Redis at a steady offered load (default
2,000 swipes/s), and the worker's RSS at start and end. Metrics are polled at most twice a second.

Usage: python bench/throughput.py [--swipes 50000] [--rounds 3] [--long]
(``--long``: one worker over 1,000,000 swipes, RSS at start and end.)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import orjson
import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.months import Month
from models.rules import load_rules
from stream.devstack.processes import free_port
from stream.devstack.services import WorkerProcess
from stream.devstack.simulator import Simulator
from stream.devstack.stack import EmbeddedStack
from stream.kafka.publisher import KafkaPublisher
from stream.kafka.topics import bootstrap_servers, create_topics_async

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "stream" / "rules.default.toml"
POLL = 0.5  # seconds between metric polls: at most twice a second
# Swipes counted when applied: a rebalance between two workers replays some as duplicates.
APPLIED = 'outcome="applied"'
STALL_SECONDS = 60.0  # a drain with no progress for this long is reported and ended
TICK = os.sysconf("SC_CLK_TCK")


def counter(url: str, name: str, having: str = "") -> int:
    """Sum of the series of a counter on a worker's /metrics (those whose labels include
    ``having``, if given)."""
    with urllib.request.urlopen(url, timeout=5) as r:
        text = r.read().decode()
    return int(
        sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(name + "{") and having in line
        )
    )


def stat_cpu(stat: Path) -> tuple[str, float]:
    """(name, seconds of CPU: utime + stime) of a process's or a thread's ``stat`` file."""
    head, _, rest = stat.read_text().rpartition(")")
    fields = rest.split()
    return head.split("(", 1)[1], (int(fields[11]) + int(fields[12])) / TICK


def main_thread_cpu(pid: int) -> float:
    """Seconds of CPU of the process's main thread (utime + stime)."""
    return stat_cpu(Path(f"/proc/{pid}/task/{pid}/stat"))[1]


def main_thread_waits(pid: int) -> float:
    """Seconds the process's main thread was runnable but waiting for a core (schedstat)."""
    return int(Path(f"/proc/{pid}/task/{pid}/schedstat").read_text().split()[1]) / 1e9


def threads_cpu(pid: int) -> dict[str, float]:
    """Seconds of CPU by thread name (threads of one name summed), main thread excluded."""
    by_name: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        if task.name == str(pid):
            continue
        try:
            name, seconds = stat_cpu(task / "stat")
        except OSError:
            continue  # the thread ended
        by_name[name] = by_name.get(name, 0.0) + seconds
    return by_name


def process_cpu(pid: int | None) -> float:
    """Seconds of CPU of a whole process (all its threads), 0 if it is gone."""
    if pid is None:
        return 0.0
    try:
        return stat_cpu(Path(f"/proc/{pid}/stat"))[1]
    except OSError:
        return 0.0


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Bench:
    stack: EmbeddedStack
    args: argparse.Namespace
    data: Path
    prefix: str = "bench."
    register_prefix: str = "benchreg:"
    runs: int = 0
    sim: Simulator | None = None
    backlog: list[tuple[bytes, bytes]] = field(default_factory=list)
    loop_cpu: str = ""
    worker_prefix: str = ""  # the last one-worker run's: the loop's accumulators must match

    def env(self, group: str, redis_prefix: str, topics: str = "") -> dict[str, str]:
        return {
            **self.stack.environment(),
            "LOYALTY_TOPIC_PREFIX": topics or self.prefix,
            "LOYALTY_GROUP_ID": group,
            "LOYALTY_REDIS_PREFIX": redis_prefix,
            "LOYALTY_WORKER_WEB_PORT": "0",
            "LOYALTY_BATCH_SIZE": str(self.args.batch_size),
            "LOYALTY_LOG_LEVEL": "warn",
            "LOYALTY_CLICKHOUSE_URL": f"chdb://{self.data}/chdb-{group}",
        }

    def services_cpu(self) -> tuple[float, float]:
        """CPU seconds so far of the Redis server and the broker."""
        return process_cpu(self.stack.redis.pid), process_cpu(self.stack.kafka.pid)

    def fresh(self, what: str) -> tuple[str, str, str]:
        """A new group id, a Redis prefix holding a copy of the applied register, and a topic
        prefix of its own (empty topics): nothing a run writes (purchase lines, dead letters)
        is read by the next one."""
        self.runs += 1
        group = f"{what}{self.runs}"
        prefix = f"{group}:"
        topics = f"bench.{group}."
        asyncio.run(
            create_topics_async(
                self.stack.kafka.bootstrap,
                {f"{topics}{t}": self.args.partitions for t in ("swipes", "register")},
            )
        )
        r = redis.Redis.from_url(self.stack.redis_url)
        keys = list(r.scan_iter(self.register_prefix + "*", count=1000))
        dumps = r.pipeline(transaction=False)
        for key in keys:
            dumps.dump(key)
        pipe = r.pipeline(transaction=False)
        for key, value in zip(keys, dumps.execute(), strict=True):
            if value is not None:
                pipe.restore(prefix + key.decode()[len(self.register_prefix) :], 0, value)
        pipe.execute()
        r.close()
        return group, prefix, topics

    def workers(
        self, count: int, group: str, redis_prefix: str, topics: str = ""
    ) -> list[WorkerProcess]:
        env = self.env(group, redis_prefix, topics)
        # chdb is one process's: each worker writes its lines to its own (a server is shared)
        procs = [
            WorkerProcess(
                self.data / f"{group}-w{n}",
                {**env, "LOYALTY_CLICKHOUSE_URL": f"chdb://{self.data}/chdb-{group}-w{n}"},
                free_port(),
            )
            for n in range(count)
        ]
        for proc in procs:
            proc.start()
        return procs

    def drain_with_workers(
        self, count: int, swipes: int, lines: int
    ) -> tuple[float, float, float, float, str]:
        """(swipes/s, main-thread CPU us per swipe, RSS MB at ready, RSS MB at the end, where
        the CPU went). Swipes/s: until every swipe is counted (balances up to date) while the
        worker also writes the purchase lines to ClickHouse; then it waits for all ``lines``
        (the backlog's) to be written and says how much later that was."""
        group, redis_prefix, topics = self.fresh(f"w{count}x")
        procs = self.workers(count, group, redis_prefix, topics)
        try:
            pids = [p.pid for p in procs if p.pid is not None]
            spy = None
            py_spy = Path(sys.executable).with_name("py-spy")
            if self.args.profile and count == 1 and not py_spy.exists():
                print(f"--profile needs py-spy: {py_spy.parent}/pip install py-spy")
            elif self.args.profile and count == 1:
                # py-spy (pip install py-spy), main thread and the others, idle frames left out
                spy = subprocess.Popen(
                    [
                        str(py_spy),
                        *(
                            "record",
                            "--pid",
                            str(pids[0]),
                            "--format",
                            "raw",
                            "--rate",
                            "200",
                            "--threads",
                        ),
                        *("--output", self.args.profile, "--nonblocking"),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            # The group settles on the empty topics first (a rebalance in the middle of the
            # drain would replay batches and pause every worker); then the backlog goes on the
            # topic and the clock starts (loading 50,000 swipes takes under a second).
            settle(procs)
            cpu0 = sum(main_thread_cpu(pid) for pid in pids)
            threads0 = threads_cpu(pids[0])
            waits0 = sum(main_thread_waits(pid) for pid in pids)
            all0 = sum(process_cpu(pid) for pid in pids)
            redis0, broker0 = self.services_cpu()
            if self.args.verbose:
                redis.Redis.from_url(self.stack.redis_url).config_resetstat()
            rss0 = max(rss_mb(pid) for pid in pids)
            # Counted from before the load: the workers start on the backlog while it is loaded.
            done0 = done = sum(
                counter(p.metrics_url, "loyalty_swipes_total", APPLIED) for p in procs
            )
            started = time.perf_counter()
            asyncio.run(load(self.stack, f"{topics}swipes", self.backlog))
            written = sum(counter(p.metrics_url, "loyalty_clickhouse_lines_total") for p in procs)
            deadline = started + 3600
            elapsed = 0.0
            moved = started
            while (done < swipes or written < lines) and time.perf_counter() < deadline:
                time.sleep(POLL)
                before = (done, written)
                done = sum(counter(p.metrics_url, "loyalty_swipes_total", APPLIED) for p in procs)
                written = sum(
                    counter(p.metrics_url, "loyalty_clickhouse_lines_total") for p in procs
                )
                if self.args.long and done // 100_000 > before[0] // 100_000:
                    rss = max(rss_mb(pid) for pid in pids)
                    print(f"  {done:,} swipes applied: RSS {rss:.0f} MB", flush=True)
                if (done, written) != before:
                    moved = time.perf_counter()
                elif time.perf_counter() - moved > STALL_SECONDS:
                    print(f"  stalled: {done:,} swipes, {written:,} lines, nothing for a minute")
                    break
                if done >= swipes and not elapsed:
                    elapsed = time.perf_counter() - started  # every balance is up to date
            if not elapsed:
                elapsed = time.perf_counter() - started
            # The analytics stage lingers up to LOYALTY_ANALYTICS_BATCH_SECONDS to fill an
            # insert, so the last lines land that much after the last swipe.
            lines_after = time.perf_counter() - started - elapsed
            if self.args.verbose:
                batches(procs[0].metrics_url)
                threads1 = threads_cpu(pids[0])
                spent = {k: v - threads0.get(k, 0.0) for k, v in threads1.items()}
                shown = ", ".join(
                    f"{k} {v / max(done - done0, 1) * 1e6 * len(pids):.1f}"
                    for k, v in sorted(spent.items(), key=lambda kv: -kv[1])
                    if v > 0
                )
                print(f"  worker 1's other threads, CPU us per swipe: {shown}")
                commands(self.stack.redis_url, max(done - done0, 1))
            cpu = sum(main_thread_cpu(pid) for pid in pids) - cpu0
            other = sum(process_cpu(pid) for pid in pids) - all0 - cpu
            redis1, broker1 = self.services_cpu()
            waits = sum(main_thread_waits(pid) for pid in pids) - waits0
            rss1 = max(rss_mb(pid) for pid in pids)
            n = max(done - done0, 1)
            where = (
                f"CPU us per swipe: worker main thread {cpu / n * 1e6:.0f}, its other threads "
                f"{other / n * 1e6:.0f}, Redis {(redis1 - redis0) / n * 1e6:.0f}, broker "
                f"{(broker1 - broker0) / n * 1e6:.0f}; all {written:,} lines in ClickHouse "
                f"{lines_after:.1f} s after the last swipe; the main thread"
                f"{'s' if count > 1 else ''} ready to run but waiting for a core "
                f"{waits / count:.1f} s of the {elapsed:.1f} s"
            )
            if count == 1:
                self.worker_prefix = redis_prefix
        finally:
            if spy is not None:
                spy.send_signal(2)
                spy.wait(60)
                top(self.args.profile)
            for proc in procs:
                proc.stop()
        return (done - done0) / elapsed, cpu / n * 1e6, rss0, rss1, where

    def drain_with_loop(self, swipes: int) -> float:
        group, redis_prefix, topics = self.fresh("loop")
        proc = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "bench" / "handloop.py"),
                bootstrap_servers(self.stack.kafka_url),
                f"{topics}swipes",
                group,
                self.stack.redis_url,
                redis_prefix,
                str(RULES),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        r = redis.Redis.from_url(self.stack.redis_url)
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"
            cpu0 = process_cpu(proc.pid)
            redis0, broker0 = self.services_cpu()
            done0 = done = int(r.get(f"{redis_prefix}bench:swipes") or 0)  # before the load
            started = time.perf_counter()
            asyncio.run(load(self.stack, f"{topics}swipes", self.backlog))
            while done < swipes and time.perf_counter() < started + 3600:
                time.sleep(POLL)
                done = int(r.get(f"{redis_prefix}bench:swipes") or 0)
            elapsed = time.perf_counter() - started
            cpu = process_cpu(proc.pid) - cpu0
            redis1, broker1 = self.services_cpu()
            n = max(done - done0, 1)
            self.loop_cpu = (
                f"hand loop CPU us per swipe: loop {cpu / n * 1e6:.0f}, Redis "
                f"{(redis1 - redis0) / n * 1e6:.0f}, broker {(broker1 - broker0) / n * 1e6:.0f}"
            )
            if self.worker_prefix:
                compared = same_accumulators(r, self.worker_prefix, redis_prefix)
                self.loop_cpu += f"; its {compared:,} accumulators equal the worker's"
        finally:
            proc.terminate()
            proc.wait(30)
            r.close()
        return (done - done0) / elapsed

    def latency(self, rate: int, seconds: float) -> tuple[float, float, int]:
        """(p50, p99 in ms, samples) from send to visible in Redis at ``rate`` swipes/s."""
        self.backlog, backlog = [], self.backlog  # no backlog in front of the measured swipes
        try:
            group, redis_prefix, topics = self.fresh("lat")
        finally:
            self.backlog = backlog
        (proc,) = self.workers(1, group, redis_prefix, topics)
        sim = self.sim
        assert sim is not None
        tz = load_rules(RULES).timezone
        household_of = {c: h.household_id for h in sim.households for c in h.cards}
        r = redis.Redis.from_url(self.stack.redis_url)
        sent: dict[tuple[str, str], float] = {}
        seen: list[float] = []

        async def produce() -> None:
            async with KafkaPublisher(self.stack.kafka_url) as pub:
                start = time.perf_counter()
                n = 0
                while (now := time.perf_counter()) - start < seconds:
                    due = int((now - start) * rate)
                    while n < due:
                        key, value = sim.swipe(datetime.now(UTC))
                        n += 1
                        await pub.send(f"{topics}swipes", key, value)
                        if n % 10 == 0:
                            body = orjson.loads(value)
                            month = Month.of(datetime.fromisoformat(body["occurred_at"]), tz)
                            seen_key = f"{redis_prefix}seen:{household_of[body['card']]}:{month}"
                            sent[(seen_key, body["event_id"])] = time.perf_counter()
                    await pub.flush()
                    await asyncio.sleep(0.005)

        stop_at = 0.0  # when the producer stopped (the watcher gives up 30 s later)

        async def watch(stop: asyncio.Event) -> None:
            while not stop.is_set() or sent:
                pending = list(sent)
                if pending:
                    pipe = r.pipeline(transaction=False)
                    for key, event_id in pending:
                        pipe.sismember(key, event_id)
                    found = await asyncio.to_thread(pipe.execute)
                    now = time.perf_counter()
                    for item, hit in zip(pending, found, strict=True):
                        if hit:
                            seen.append(now - sent.pop(item))
                await asyncio.sleep(0.02)
                if stop.is_set() and time.perf_counter() > stop_at + 30:
                    break

        async def run() -> None:
            nonlocal stop_at
            stop = asyncio.Event()
            watcher = asyncio.create_task(watch(stop))
            await produce()
            stop_at = time.perf_counter()
            stop.set()
            await watcher

        try:
            asyncio.run(run())
        finally:
            proc.stop()
            r.close()
        seen.sort()
        if not seen:
            return float("nan"), float("nan"), 0
        p50 = seen[len(seen) // 2] * 1000
        p99 = seen[min(len(seen) - 1, int(len(seen) * 0.99))] * 1000
        return p50, p99, len(seen)


def settle(procs: list[WorkerProcess], seconds: float = 3.0) -> None:
    """Until every worker has partitions and the assignment has not changed for ``seconds``."""
    name = "loyalty_worker_partitions_assigned"
    last: list[int] = []
    since = time.perf_counter()
    deadline = since + 120
    while time.perf_counter() < deadline:
        now = [gauge(p.metrics_url, name) for p in procs]
        if now != last:
            last, since = now, time.perf_counter()
        elif all(now) and time.perf_counter() - since >= seconds:
            return
        time.sleep(POLL)
    raise SystemExit(f"the workers' partitions did not settle in 120 s: {last}")


def gauge(url: str, name: str) -> int:
    """A gauge without labels on a worker's /metrics."""
    with urllib.request.urlopen(url, timeout=5) as r:
        text = r.read().decode()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return int(float(line.rsplit(" ", 1)[1]))
    return 0


def batches(url: str) -> None:
    """Mean batch size and seconds per stage, from a worker's histograms."""
    with urllib.request.urlopen(url, timeout=5) as r:
        text = r.read().decode()
    values: dict[str, float] = {}
    for line in text.splitlines():
        if (
            line.startswith(("loyalty_batch_size_", "loyalty_batch_seconds_"))
            and "_bucket" not in line
        ):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    for stage in ("swipes", "register", "analytics"):
        n = values.get(f'loyalty_batch_seconds_count{{stage="{stage}"}}', 0)
        if n:
            size = values.get(f'loyalty_batch_size_sum{{stage="{stage}"}}', 0) / n
            seconds = values.get(f'loyalty_batch_seconds_sum{{stage="{stage}"}}', 0) / n
            print(f"  {stage}: {n:.0f} batches, mean {size:.0f} records, {seconds * 1000:.0f} ms")


def same_accumulators(r: redis.Redis, worker: str, loop: str) -> int:
    """How many household-month accumulators the two runs wrote; exits if they differ (the
    loop must do the worker's Redis accumulation, or the comparison is of unlike work)."""
    found: dict[str, dict[bytes, bytes]] = {}
    for prefix in (worker, loop):
        keys = sorted(r.scan_iter(f"{prefix}acc:*", count=1000))
        pipe = r.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(key)
        for key, fields in zip(keys, pipe.execute(), strict=True):
            found.setdefault(key.decode()[len(prefix) :], {})[prefix.encode()] = fields
    differ = [k for k, v in found.items() if v.get(worker.encode()) != v.get(loop.encode())]
    if differ:
        raise SystemExit(
            f"the hand loop's accumulators differ from the worker's in {len(differ):,} of "
            f"{len(found):,} household-months (first: {sorted(differ)[0]})"
        )
    return len(found)


def commands(redis_url: str, swipes: int) -> None:
    """Redis time per swipe by command (since the run's CONFIG RESETSTAT)."""
    r = redis.Redis.from_url(redis_url)
    try:
        stats = r.info("commandstats")
    finally:
        r.close()
    shown = ", ".join(
        f"{name.removeprefix('cmdstat_')} {v['usec'] / swipes:.1f} ({v['calls'] / swipes:.1f})"
        for name, v in sorted(stats.items(), key=lambda kv: -kv[1]["usec"])
        if v["usec"] / swipes >= 0.05
    )
    print(
        f"  Redis us per swipe by command (calls per swipe); a script's includes its calls: {shown}"
    )


def top(raw_path: str, count: int = 25) -> None:
    """The profile's top entries: share of samples by function (self) and by function (total)."""
    own: dict[str, int] = {}
    total: dict[str, int] = {}
    samples = 0
    for line in Path(raw_path).read_text().splitlines():
        stack, _, n_text = line.rpartition(" ")
        if not stack:
            continue
        n = int(n_text)
        frames = [
            f.split(" (", 1)[0] + " " + f.rsplit("/", 1)[-1].rstrip(")") for f in stack.split(";")
        ]
        samples += n
        own[frames[-1]] = own.get(frames[-1], 0) + n
        for frame in set(frames):
            total[frame] = total.get(frame, 0) + n
    print(f"profile ({samples} samples, {raw_path}): top by own time")
    for frame, n in sorted(own.items(), key=lambda kv: -kv[1])[:count]:
        print(f"  {100 * n / samples:5.1f}%  {frame}")
    print("top by total time")
    for frame, n in sorted(total.items(), key=lambda kv: -kv[1])[:count]:
        print(f"  {100 * n / samples:5.1f}%  {frame}")


async def load(stack: EmbeddedStack, topic: str, events: list[tuple[bytes, bytes]]) -> None:
    async with KafkaPublisher(stack.kafka_url, max_batch_size=1 << 20) as pub:
        for n, (key, value) in enumerate(events):
            await pub.send(topic, key, value)
            if n % 20_000 == 0:
                await pub.flush()


def setup(bench: Bench, swipes: int) -> int:
    """Topics, the register applied under ``register_prefix``, ``swipes`` on the topic."""
    stack, args = bench.stack, bench.args
    asyncio.run(
        create_topics_async(
            stack.kafka.bootstrap,
            {f"{bench.prefix}{t}": args.partitions for t in ("swipes", "register")},
        )
    )
    sim = bench.sim = Simulator(households=args.households, seed=1)
    register = sim.register_events(datetime.now(UTC))
    asyncio.run(load(stack, f"{bench.prefix}register", register))
    env = bench.env("register", bench.register_prefix)
    worker = WorkerProcess(bench.data / "register", env, free_port()).start()
    try:
        while counter(worker.metrics_url, "loyalty_register_events_total") < len(register):
            time.sleep(POLL)
    finally:
        worker.stop()
    now = datetime.now(UTC)
    bench.backlog = [sim.swipe(now) for _ in range(swipes)]  # loaded for each run (fresh)
    return sum(len(orjson.loads(v)["lines"]) for _, v in bench.backlog)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--swipes", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--households", type=int, default=2_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--rate", type=int, default=2_000, help="offered swipes/s (latency)")
    parser.add_argument("--latency-seconds", type=float, default=20.0)
    parser.add_argument("--long", action="store_true", help="1,000,000 swipes, RSS check")
    parser.add_argument("--skip", default="", help="comma list of: loop,two,latency")
    parser.add_argument("--keep", default="", help="keep the stack and logs under this dir")
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="batch sizes and times, worker 1's threads, Redis by command",
    )
    parser.add_argument("--profile", default="", help="py-spy raw output file (one worker)")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    print(f"machine: {os.cpu_count()} cores, {cpu}; Python {platform.python_version()}")
    if args.long:
        args.swipes, args.rounds, skip = 1_000_000, 1, {"loop", "two", "latency"}
    with (
        contextlib.nullcontext(tempfile.mkdtemp(dir=args.keep))
        if args.keep
        else tempfile.TemporaryDirectory() as tmp,
        EmbeddedStack(Path(tmp) / "stack") as stack,
    ):
        bench = Bench(stack, args, Path(tmp))
        lines = setup(bench, args.swipes)
        print(f"backlog: {args.swipes:,} swipes ({lines:,} lines), {args.partitions} partitions")
        one: list[float] = []
        cpu_us: list[float] = []
        loop: list[float] = []
        two: list[float] = []
        two_cpu: list[float] = []
        for n in range(1, args.rounds + 1):
            rate, us, rss0, rss1, where = bench.drain_with_workers(1, args.swipes, lines)
            one.append(rate)
            cpu_us.append(us)
            text = f"round {n}: worker {rate:,.0f}/s ({us:.0f} us main-thread CPU per swipe"
            text += f", RSS {rss0:.0f} -> {rss1:.0f} MB)"
            if "loop" not in skip:
                loop.append(bench.drain_with_loop(args.swipes))
                text += f"; hand loop {loop[-1]:,.0f}/s; ratio {rate / loop[-1]:.2f}"
            if "two" not in skip:
                rate2, us2, _, _, _ = bench.drain_with_workers(2, args.swipes, lines)
                two.append(rate2)
                two_cpu.append(us2)
                text += f"; 2 workers {rate2:,.0f}/s ({rate2 / rate:.2f}x, {us2:.0f} us/swipe)"
            print(text, flush=True)
            print(f"  {where}", flush=True)
            if bench.loop_cpu:
                print(f"  {bench.loop_cpu}", flush=True)
        median = statistics.median
        print(
            f"median of {args.rounds}: 1 worker {median(one):,.0f} swipes/s, "
            f"{median(cpu_us):.0f} us main-thread CPU per swipe"
        )
        if loop:
            print(
                f"median: hand loop {median(loop):,.0f} swipes/s; worker/loop "
                f"{median([a / b for a, b in zip(one, loop, strict=True)]):.2f}"
            )
        if two:
            print(
                f"median: 2 workers {median(two):,.0f} swipes/s "
                f"({median([a / b for a, b in zip(two, one, strict=True)]):.2f}x one), "
                f"{median(two_cpu):.0f} us main-thread CPU per swipe"
            )
        if "latency" not in skip:
            p50, p99, samples = bench.latency(args.rate, args.latency_seconds)
            print(
                f"latency at {args.rate:,} swipes/s offered, {args.latency_seconds:g} s: send to "
                f"visible in Redis p50 {p50:.0f} ms, p99 {p99:.0f} ms ({samples} samples)"
            )


if __name__ == "__main__":
    main()
