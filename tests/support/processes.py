"""Run the service's command line (``python -m stream.cli ...``) as a subprocess in a test.

The child gets a clean ``LOYALTY_*`` environment (only what the test passes; nothing inherited
from the shell), runs in the log's directory (so a developer's ``.env`` is not read), finds this
checkout through ``PYTHONPATH`` (installed or not) and writes stdout+stderr, unbuffered, to one
log file that :meth:`CliProcess.wait_for_log` polls.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Protocol, Self

from stream.devstack.processes import parent_death_preexec

__all__ = ["REPO_ROOT", "CliProcess", "RunCli", "run_cli"]

REPO_ROOT = Path(__file__).resolve().parents[2]


class CliProcess:
    """A running ``python -m <module> ...`` with its log file."""

    def __init__(
        self, argv: list[str], proc: subprocess.Popen[bytes], log_path: Path, log: IO[bytes]
    ) -> None:
        self.argv = argv
        self.log_path = log_path
        self._proc = proc
        self._log = log
        self._log_start = log.tell()  # the file may hold earlier runs: this run's log only

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def returncode(self) -> int | None:
        return self._proc.poll()

    @property
    def running(self) -> bool:
        return self._proc.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` (SIGKILL by default: a crash) without waiting; see :meth:`wait`."""
        if self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.send_signal(sig)

    def wait(self, timeout: float = 30.0) -> int:
        """Wait for the exit and return the code (negative: killed by that signal)."""
        try:
            return self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"{self} still running after {timeout:g} s; log tail:\n{self.log_tail()}"
            ) from None

    def terminate_and_wait(self, timeout: float = 20.0) -> int:
        """SIGTERM, wait up to ``timeout`` seconds, then SIGKILL; returns the exit code."""
        if self._proc.poll() is None:
            self.kill(signal.SIGTERM)
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._log.close()
        return self._proc.returncode

    def log_text(self) -> str:
        """What this run logged so far."""
        with open(self.log_path, "rb") as f:
            f.seek(self._log_start)
            return f.read().decode("utf-8", "replace")

    def log_tail(self, max_chars: int = 4000) -> str:
        return self.log_text()[-max_chars:]

    def wait_for_log(self, substring: str, timeout: float = 30.0, *, start: int = 0) -> int:
        """Wait until ``substring`` appears in the log at or after character ``start``.

        Returns the position just after the match: pass it as ``start`` to wait for the next
        occurrence. Fails early, with the log tail, if the process exits first.
        """
        deadline = time.monotonic() + timeout
        while True:
            exited = self._proc.poll() is not None  # read the log after this: nothing is lost
            text = self.log_text()
            found = text.find(substring, start)
            if found >= 0:
                return found + len(substring)
            if exited:
                raise AssertionError(
                    f"{self} exited with {self._proc.returncode} before logging {substring!r};"
                    f" log tail:\n{text[-4000:]}"
                )
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"{substring!r} not in the log of {self} after {timeout:g} s; log tail:\n"
                    f"{text[-4000:]}"
                )
            time.sleep(0.05)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.terminate_and_wait()

    def __repr__(self) -> str:
        return f"<CliProcess pid={self.pid} {' '.join(self.argv[2:])!r}>"


class RunCli(Protocol):
    """The ``run_cli`` fixture: ``run_cli(args, env=None, *, name=None, module='stream.cli')``."""

    def __call__(
        self,
        args: Sequence[str],
        env: Mapping[str, object] | None = None,
        *,
        name: str | None = None,
        module: str = "stream.cli",
    ) -> CliProcess: ...


def child_environment(env: Mapping[str, object] | None = None) -> dict[str, str]:
    """``os.environ`` without any ``LOYALTY_*``, plus ``env``, plus this checkout on the path."""
    result = {k: v for k, v in os.environ.items() if not k.startswith("LOYALTY_")}
    pythonpath = [str(REPO_ROOT)]
    if result.get("PYTHONPATH"):
        pythonpath.append(result["PYTHONPATH"])
    result["PYTHONPATH"] = os.pathsep.join(pythonpath)
    result["PYTHONUNBUFFERED"] = "1"
    result.update({k: str(v) for k, v in (env or {}).items()})
    return result


def run_cli(
    args: Sequence[str],
    env: Mapping[str, object] | None = None,
    *,
    log_path: Path,
    module: str = "stream.cli",
    cwd: Path | None = None,
) -> CliProcess:
    """Start ``[sys.executable, '-m', module, *args]`` with ``env`` (``LOYALTY_*`` values).

    The caller stops it (:meth:`CliProcess.terminate_and_wait`, or a ``with`` block); the
    ``run_cli`` fixture does that at teardown. On Linux the child is SIGKILLed if we die.
    """
    argv = [sys.executable, "-m", module, *args]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "ab")  # noqa: SIM115 (closed by terminate_and_wait)
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd or log_path.parent,
            env=child_environment(env),
            preexec_fn=parent_death_preexec(signal.SIGKILL),  # noqa: PLW1509 (see stream.devstack.processes)
        )
    except BaseException:
        log.close()
        raise
    return CliProcess(argv, proc, log_path, log)
