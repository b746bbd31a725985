"""Runs the Faust worker with our app, plus the worker's own /metrics endpoint."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import gc
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import faust
from prometheus_client import start_http_server

from models.rules import Rules
from stream.app import FAUST_WEB_HOST, create_app
from stream.errors import PortInUse, check_port_free
from stream.kafka.topics import bootstrap_servers, create_topics_async
from stream.settings import PLACEHOLDER_PSEUDONYM_KEY, Settings

log = logging.getLogger(__name__)


TOPICS = (
    "swipes",
    "register",
    "bonus-payouts",
    "dead-letters",
    "purchase-lines",
    "member-payments",
    "audit",
)


def ensure_topics(settings: Settings) -> list[str]:
    """Create missing topics with our partition count (existing ones are left alone).

    Faust does not create the topics it consumes, and a broker that auto-creates them picks
    its own partition count.
    """
    wanted = {settings.topic(name): settings.swipe_partitions for name in TOPICS}
    return asyncio.run(create_topics_async(bootstrap_servers(settings.kafka_url), wanted))


@contextlib.contextmanager
def _quiet(logger: str, *, unless: bool) -> Iterator[None]:
    """Silence ``logger`` below CRITICAL inside the block (not when ``unless``)."""
    log_ = logging.getLogger(logger)
    before = log_.level
    if not unless:
        log_.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        log_.setLevel(before)


def start_metrics_server(settings: Settings) -> None:
    """The worker's /metrics on ``LOYALTY_METRICS_HOST:LOYALTY_WORKER_METRICS_PORT``."""
    try:
        start_http_server(settings.worker_metrics_port, addr=settings.metrics_host)
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        raise PortInUse(
            settings.metrics_host, settings.worker_metrics_port, "LOYALTY_WORKER_METRICS_PORT"
        ) from exc


def run_worker(settings: Settings, rules: Rules) -> int:
    placeholder = settings.pseudonym_key.get_secret_value() == PLACEHOLDER_PSEUDONYM_KEY
    if placeholder and not settings.embedded_clickhouse:
        # Keys made with a known secret are not pseudonymous: refuse to write any.
        raise SystemExit(
            "LOYALTY_PSEUDONYM_KEY is the placeholder: set a secret before writing to a "
            "ClickHouse server (only the embedded chdb demo may run without one)"
        )
    if settings.log_level != "debug":
        # It logs every failed connect with a traceback; the retry names the failure in a line.
        logging.getLogger("clickhouse_driver").setLevel(logging.ERROR)
    # Ports first: a second worker on this host should fail at once, naming the setting.
    if settings.worker_web_port:
        check_port_free(FAUST_WEB_HOST, settings.worker_web_port, "LOYALTY_WORKER_WEB_PORT")
    if settings.worker_metrics_port:
        start_metrics_server(settings)
    with _quiet("aiokafka", unless=settings.log_level == "debug"):
        created = ensure_topics(settings)  # a broker it cannot reach: one line from the CLI
    if created:
        log.info("created topics: %s", ", ".join(created))
    app = create_app(settings, rules)
    tune_gc()
    # A number: Faust's own names would go through logging.getLevelName, which knows no "crit".
    worker = faust.Worker(app, loglevel=settings.log_level_number, quiet=True)
    worker.execute_from_commandline()  # returns only through SystemExit
    return 0


# The swipe path allocates dozens of small objects per swipe. At Python's default gen-0
# threshold (700) the cyclic collector ran about a thousand times during a 50,000-swipe drain,
# about 12 % of it, stopping every thread each time (bench/throughput.py: 7,800 -> 9,600
# swipes/s, 50 -> 42 us main-thread CPU per swipe). What exists at start (modules, the app)
# is frozen out of the scans; cycles are still collected, every 50,000 allocations.
GC_THRESHOLDS = (50_000, 20, 100)


def tune_gc() -> None:
    """Freeze what is alive now out of the collector's scans and collect less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def run_workers(settings: Settings, processes: int) -> int:
    """``loyalty worker --processes N``: N worker processes in one consumer group on this host.

    Process ``i`` (from 0) gets ``LOYALTY_WORKER_METRICS_PORT`` + i and, if Faust's web server
    is on, ``LOYALTY_WORKER_WEB_PORT`` + i. SIGTERM and SIGINT are passed on; when one child
    exits with an error the others are stopped and its exit code is returned.
    """
    children: list[subprocess.Popen[bytes]] = []
    for index in range(processes):
        env = {**os.environ, "LOYALTY_LOG_LEVEL": settings.log_level}
        if settings.worker_metrics_port:
            env["LOYALTY_WORKER_METRICS_PORT"] = str(settings.worker_metrics_port + index)
        if settings.worker_web_port:
            env["LOYALTY_WORKER_WEB_PORT"] = str(settings.worker_web_port + index)
        children.append(
            subprocess.Popen(
                [sys.executable, "-m", "stream.cli", "worker"],
                env=env,
                preexec_fn=_die_with_parent(),  # noqa: PLW1509 - prctl only, nothing else
            )
        )

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    failed = 0
    while any(child.poll() is None for child in children):
        for child in children:
            code = child.poll()
            if code not in (None, 0) and not failed:
                failed = code
                log.error("a worker process exited with %s; stopping the others", code)
                forward(signal.SIGTERM, None)
        time.sleep(0.2)
    return failed or max(abs(child.returncode or 0) for child in children)


def _die_with_parent() -> Any:
    """A ``preexec_fn``: the kernel sends the child SIGTERM when this process dies, even by
    SIGKILL (Linux; elsewhere None). Resolved here, so the child only calls ``prctl``."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:
            os._exit(1)

    return preexec
