"""Our own processes (worker, API) as managed children, for the demo, benchmarks and tests."""

from __future__ import annotations

import os
import signal
import sys
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from stream.devstack.processes import ManagedProcess

_ROOT = str(Path(__file__).resolve().parents[2])


class LoyaltyProcess(ManagedProcess):
    """``python -m stream.cli ARGS`` with a given ``LOYALTY_*`` environment."""

    # If we die uncleanly the broker dies with us, and a graceful stop would wait on it: kill.
    # Safe: delivery is at least once and every effect is idempotent.
    death_signal: ClassVar[signal.Signals] = signal.SIGKILL
    args: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        env: Mapping[str, str],
        port: int | None = None,
        *,
        startup_timeout: float = 60.0,
        stop_timeout: float = 20.0,
    ) -> None:
        super().__init__(data_dir, port, startup_timeout=startup_timeout, stop_timeout=stop_timeout)
        self.env = dict(env)

    def environment(self) -> dict[str, str]:
        # The child runs in its data dir: make sure it imports this very checkout.
        path = os.pathsep.join(p for p in (_ROOT, os.environ.get("PYTHONPATH", "")) if p)
        return {**os.environ, **self.env, "PYTHONUNBUFFERED": "1", "PYTHONPATH": path}

    def command(self) -> list[str]:
        return [sys.executable, "-m", "stream.cli", *self.args]


class WorkerProcess(LoyaltyProcess):
    """The stream worker; ``port`` is its metrics port. Ready once it has its partitions."""

    name = "worker"
    args = ("worker",)

    def environment(self) -> dict[str, str]:
        return {**super().environment(), "LOYALTY_WORKER_METRICS_PORT": str(self.port)}

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/metrics"

    def is_ready(self, timeout: float) -> bool:
        with urllib.request.urlopen(self.metrics_url, timeout=timeout) as response:  # noqa: S310
            return b"\nloyalty_worker_ready 1.0" in response.read()


class ApiProcess(LoyaltyProcess):
    """The HTTP API on ``port``. Ready when ``/healthz`` answers 200.

    ``no_auth``: pass ``--no-auth``; by default only when the environment configures neither
    ``LOYALTY_API_CLIENTS`` nor ``LOYALTY_API_TOKENS`` (a local stack of tests or the demo).
    """

    name = "api"
    no_auth: bool | None = None

    def command(self) -> list[str]:
        command = [*super().command(), "api", "--host", "127.0.0.1", "--port", str(self.port)]
        no_auth = self.no_auth
        if no_auth is None:
            configured = ("LOYALTY_API_CLIENTS", "LOYALTY_API_TOKENS")
            no_auth = not any(self.env.get(name) for name in configured)
        return [*command, "--no-auth"] if no_auth else command

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def is_ready(self, timeout: float) -> bool:
        with urllib.request.urlopen(f"{self.base_url}/healthz", timeout=timeout) as response:  # noqa: S310
            return bool(response.status == 200)
