"""The embedded stack: a real Tansu broker and Redis/Valkey server, started and stopped by us."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis

from stream.devstack.broker import TansuBroker, describe_cluster
from stream.devstack.processes import free_port
from stream.devstack.redis_server import RedisServer
from stream.devstack.stack import EmbeddedStack
from stream.errors import ProcessStartError
from stream.kafka.topics import create_topics
from tests.support.processes import REPO_ROOT, RunCli
from tests.support.services import consume, partitions_of, pid_alive, produce, wait_until


def _port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


def test_broker_round_trip_with_aiokafka(kafka: TansuBroker, unique: str) -> None:
    topic = f"{unique}.events"
    assert create_topics(kafka.bootstrap, {topic: 4}) == [topic]
    messages = [(f"card-{i % 3}".encode(), f"value-{i}".encode()) for i in range(12)]

    produce(kafka.bootstrap, topic, messages)
    records = consume(kafka.bootstrap, topic, len(messages), group_id=unique)

    assert sorted((r.key, r.value) for r in records) == sorted(messages)
    # one key, one partition, in order
    by_key: dict[bytes | None, set[int]] = {}
    for r in records:
        by_key.setdefault(r.key, set()).add(r.partition)
    assert all(len(partitions) == 1 for partitions in by_key.values())
    assert [r.value for r in records if r.key == b"card-0"] == [
        f"value-{i}".encode() for i in range(0, 12, 3)
    ]


def test_create_topics_is_idempotent_and_partitioned(kafka: TansuBroker, unique: str) -> None:
    swipes, register = f"{unique}.swipes", f"{unique}.register"

    assert create_topics(kafka.url, {swipes: 4}) == [swipes]
    assert create_topics(kafka.url, {swipes: 4, register: 1}) == [register]  # swipes existed

    assert partitions_of(kafka.bootstrap, swipes) == {0, 1, 2, 3}
    assert partitions_of(kafka.bootstrap, register) == {0}
    for p in range(4):  # every partition takes writes
        produce(kafka.bootstrap, swipes, [(None, f"p{p}".encode())], partition=p)
    records = consume(kafka.bootstrap, swipes, 4)
    assert {(r.partition, r.value) for r in records} == {(p, f"p{p}".encode()) for p in range(4)}


def test_redis_server_is_durable_and_answers(
    redis_server: RedisServer, redis_client: redis.Redis, redis_prefix: str
) -> None:
    assert redis_client.ping() is True
    assert redis_client.config_get("appendonly") == {"appendonly": "yes"}
    assert redis_client.config_get("appendfsync") == {"appendfsync": "always"}
    assert redis_client.config_get("save") == {"save": ""}
    redis_client.set(f"{redis_prefix}k", b"v")
    assert redis_client.get(f"{redis_prefix}k") == b"v"
    assert redis_server.url == f"redis://127.0.0.1:{redis_server.port}/0"


def test_readiness_is_that_of_our_own_child_not_of_whoever_holds_the_port(
    kafka: TansuBroker, redis_server: RedisServer, tmp_path: Path
) -> None:
    """A probe on a port another server answers (it lost the race for the port) says no."""
    assert kafka.is_ready(5.0)
    assert cluster_of(kafka)["cluster_id"] == kafka.cluster_id
    stranger = TansuBroker(tmp_path / "k", port=kafka.port)  # another cluster id, same port
    assert not stranger.is_ready(5.0)
    assert redis_server.is_ready(5.0)
    other = RedisServer(tmp_path / "r", port=redis_server.port)  # never started: no pid
    assert not other.is_ready(5.0)
    closed = TansuBroker(tmp_path / "c", port=free_port())
    with pytest.raises(OSError):  # nothing listens: not ready (the start loop retries)
        closed.is_ready(1.0)
    assert not RedisServer(tmp_path / "c", port=closed.port).is_ready(1.0)


def cluster_of(broker: TansuBroker) -> dict[str, Any]:
    async def describe() -> dict[str, Any]:
        return await describe_cluster(broker.bootstrap, 5000)

    return asyncio.run(describe())


@pytest.mark.integration
def test_stack_stop_leaves_no_process(tmp_path: Path) -> None:
    with EmbeddedStack(tmp_path) as stack:
        pids = [stack.kafka.pid, stack.redis.pid]
        ports = [stack.kafka.port, stack.redis.port]
        assert all(pid is not None and pid_alive(pid) for pid in pids)
        assert stack.kafka_url == f"kafka://127.0.0.1:{stack.kafka.port}"
        assert stack.redis_url == f"redis://127.0.0.1:{stack.redis.port}/0"
        assert stack.clickhouse_url == f"chdb://{tmp_path.absolute()}/chdb"
        assert redis.Redis.from_url(stack.redis_url).ping() is True
    assert not any(pid_alive(pid) for pid in pids if pid is not None)
    assert not any(_port_open(port) for port in ports)
    assert (stack.kafka.returncode, stack.redis.returncode) == (0, 0)  # SIGTERM was enough
    assert (tmp_path / "kafka" / "tansu.log").exists()
    assert (tmp_path / "redis" / "appendonlydir").is_dir()
    stack.stop()  # idempotent


@pytest.mark.integration
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux only")
def test_killed_parent_leaves_no_server(tmp_path: Path) -> None:
    script = (
        "import os, signal, sys\n"
        "from stream.devstack.stack import EmbeddedStack\n"
        "stack = EmbeddedStack(sys.argv[1]).start()\n"
        "print(stack.kafka.pid, stack.redis.pid, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == -signal.SIGKILL, result.stderr
    pids = [int(p) for p in result.stdout.split()]
    assert len(pids) == 2
    wait_until(lambda: not any(pid_alive(p) for p in pids), timeout=10, what="orphans to die")


@pytest.mark.integration
def test_start_failure_reports_the_log(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        with pytest.raises(ProcessStartError, match=r"(?is)exited with code.*in use"):
            RedisServer(tmp_path / "redis", taken).start()
        with pytest.raises(ProcessStartError, match=r"(?is)exited with code.*in use"):
            TansuBroker(tmp_path / "kafka", taken).start()


def test_redis_server_rejects_unknown_fsync(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="fsync"):
        RedisServer(tmp_path, fsync="sometimes")


def test_run_cli_helper(run_cli: RunCli, tmp_path: Path) -> None:
    port = free_port()
    proc = run_cli(
        ["--bind", "127.0.0.1", "--directory", str(tmp_path), str(port)],
        {"LOYALTY_GROUP_ID": "x"},
        module="http.server",
    )
    end = proc.wait_for_log("Serving HTTP", timeout=20)
    assert _port_open(port)
    with pytest.raises(AssertionError, match="not in the log"):
        proc.wait_for_log("Serving HTTP", timeout=0.3, start=end)
    assert proc.terminate_and_wait() == -signal.SIGTERM
    assert not pid_alive(proc.pid)
