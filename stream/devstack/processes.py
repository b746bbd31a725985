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

import atexit
import contextlib
import ctypes
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO, ClassVar, Self

from stream.errors import EmbeddedStackError as EmbeddedStackError  # noqa: PLC0414 (re-exported: its old home)
from stream.errors import ProcessStartError as ProcessStartError  # noqa: PLC0414 (re-exported: its old home)

LOCALHOST = "127.0.0.1"
_PR_SET_PDEATHSIG = 1
_ANSI = re.compile(rb"\x1b\[[0-9;]*[A-Za-z]")
_PORT_IN_USE = re.compile(rb"address (already )?in use|addrinuse", re.IGNORECASE)


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
