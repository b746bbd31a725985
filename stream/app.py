"""The Faust app factory. ``create_app(settings)`` builds the app; agents attach to it."""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Callable
from typing import Any

import faust

from models.rules import Rules, load_rules
from stream import metrics
from stream.analytics.stage import LinesProcessor
from stream.bonus.register import RegisterProcessor
from stream.bonus.swipes import SwipeProcessor
from stream.kafka.batches import BatchHandler, BatchTransport, LaneSpec
from stream.kafka.publisher import ConfirmingPublisher
from stream.kafka.topics import Topics
from stream.settings import Settings
from stream.store.store import Store

log = logging.getLogger(__name__)
FAUST_WEB_HOST = "127.0.0.1"  # Faust's own web server listens only locally


class FaustPublisher(ConfirmingPublisher):
    """Records through Faust's producer, confirmed on ``flush``."""

    def __init__(self, app: faust.App) -> None:
        super().__init__()
        self.app = app
        self._topics: dict[str, Any] = {}

    def _topic(self, name: str) -> Any:
        topic = self._topics.get(name)
        if topic is None:
            topic = self._topics[name] = self.app.topic(
                name, key_serializer="raw", value_serializer="raw"
            )
        return topic

    async def _produce(self, topic: str, key: bytes | None, value: bytes) -> asyncio.Future[Any]:
        sent: asyncio.Future[Any] = await self._topic(topic).send(key=key, value=value)
        return sent


class LoyaltyApp(faust.App):
    """A Faust app that carries the settings, the rules and the lazily made services."""

    settings: Settings
    rules: Rules
    topic_names: Topics
    batch_lanes: dict[str, LaneSpec]
    _store: Store | None
    _lines: LinesProcessor | None

    def _new_transport(self) -> Any:
        # Faust's aiokafka transport with the batch-delivery consumer (stream.kafka.batches).
        return BatchTransport(self.conf.broker_consumer, self)

    def batch_handler(
        self,
        topic_name: str,
        name: str,
        make: Callable[[], BatchHandler],
        *,
        max_records: int,
        in_flight: int = 1,
        linger: float = 0.0,
        buffer: int = 0,
    ) -> None:
        """Deliver ``topic_name`` in whole fetched batches to ``make()`` (made once, in the
        worker's loop); at most ``max_records`` per call, waiting up to ``linger`` seconds to
        fill one. See ``stream.kafka.batches``."""
        if topic_name in self.batch_lanes:
            raise ValueError(f"two batch handlers for topic {topic_name!r}")
        topic = self.topic(
            topic_name,
            key_serializer="raw",
            value_serializer="raw",
            partitions=self.settings.swipe_partitions,
            internal=True,  # declared (created if missing) before the subscription, as agents do
        )
        self.topics.add(topic)
        self.batch_lanes[topic_name] = LaneSpec(
            topic_name,
            name,
            make,
            max(1, max_records),
            max(1, in_flight),
            max(0.0, linger),
            max(0, buffer),
        )

    @property
    def store(self) -> Store:
        if self._store is None:  # made on first use, inside the worker's event loop
            self._store = Store.from_url(self.settings.redis_url, self.settings.redis_prefix)
        return self._store

    # Each processor gets its own publisher, so one agent's flush never covers another's sends.
    def swipe_processor(self) -> SwipeProcessor:
        return SwipeProcessor(self.settings, self.rules, self.store, FaustPublisher(self))

    def lines_processor(self) -> LinesProcessor:
        """The one analytics stage of this worker: its ClickHouse thread writes lines and
        runs erasures, in order (see ``LinesProcessor``)."""
        if self._lines is None:
            self._lines = LinesProcessor(
                self.settings, FaustPublisher(self), self.store, rules=self.rules
            )
        return self._lines

    def register_processor(self) -> RegisterProcessor:
        publisher = FaustPublisher(self)
        swipes = SwipeProcessor(self.settings, self.rules, self.store, publisher)
        return RegisterProcessor(self.settings, self.store, publisher, swipes)


def create_app(
    settings: Settings, rules: Rules | None = None, *, autodiscover: str = "agents"
) -> LoyaltyApp:
    """Build the worker's app; agents are discovered in the ``autodiscover`` package.

    Named, not imported: like Faust's own autodiscovery, so ``stream`` never imports
    ``agents`` (dependencies point from agents to stream only).
    """

    app = LoyaltyApp(
        settings.group_id,
        broker=settings.kafka_url,
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=settings.swipe_partitions,
        topic_allow_declare=True,
        consumer_auto_offset_reset="earliest",  # "latest" is unreliable on Tansu
        broker_session_timeout=settings.broker_session_timeout,
        broker_rebalance_timeout=settings.broker_rebalance_timeout,
        broker_heartbeat_interval=min(3.0, settings.broker_session_timeout / 3),
        web_enabled=settings.worker_web_port > 0,
        web_port=settings.worker_web_port or 6066,
        web_bind=FAUST_WEB_HOST,
        store="memory://",
        producer_acks=-1,
        stream_wait_empty=False,
        autodiscover=False,
    )
    app.settings = settings
    app.rules = rules if rules is not None else load_rules(settings.rules)
    app.topic_names = Topics(settings)
    app.batch_lanes = {}
    app._store = None
    app._lines = None
    importlib.import_module(autodiscover).discover(app)

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def _assigned(_: Any, assigned: Any, **__: Any) -> None:
        metrics.PARTITIONS_ASSIGNED.set(len(assigned))

    @app.on_rebalance_complete.connect  # type: ignore[arg-type]
    async def _ready(_: Any, **__: Any) -> None:
        metrics.WORKER_READY.set(1)

    return app
