"""Runs the Faust worker with our app, plus the worker's own /metrics endpoint."""

from __future__ import annotations

import asyncio
import logging

import faust
from prometheus_client import start_http_server

from models.rules import Rules
from stream.app import create_app
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
)


def ensure_topics(settings: Settings) -> list[str]:
    """Create missing topics with our partition count (existing ones are left alone).

    Faust does not create the topics it consumes, and a broker that auto-creates them picks
    its own partition count.
    """
    wanted = {settings.topic(name): settings.swipe_partitions for name in TOPICS}
    return asyncio.run(create_topics_async(bootstrap_servers(settings.kafka_url), wanted))


def run_worker(settings: Settings, rules: Rules) -> int:
    placeholder = settings.pseudonym_key.get_secret_value() == PLACEHOLDER_PSEUDONYM_KEY
    if placeholder and not settings.embedded_clickhouse:
        # Keys made with a known secret are not pseudonymous: refuse to write any.
        raise SystemExit(
            "LOYALTY_PSEUDONYM_KEY is the placeholder: set a secret before writing to a "
            "ClickHouse server (only the embedded chdb demo may run without one)"
        )
    created = ensure_topics(settings)
    if created:
        log.info("created topics: %s", ", ".join(created))
    app = create_app(settings, rules)
    if settings.worker_metrics_port:
        start_http_server(settings.worker_metrics_port, addr=settings.metrics_host)
    worker = faust.Worker(app, loglevel=settings.log_level, quiet=True)
    worker.execute_from_commandline()  # returns only through SystemExit
    return 0
