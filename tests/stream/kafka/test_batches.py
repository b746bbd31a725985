"""The Faust internals the batch-delivery consumer (``stream.kafka.batches``) relies on.

It replaces Faust's drain loop and calls private methods, so an upgrade of faust-streaming or
aiokafka must fail here, loudly, before it can change what is acked or committed: the versions
are pinned, the source of every Faust function the consumer replaces or calls is fingerprinted,
and the offset bookkeeping it depends on (gaps, commits past acked offsets) is exercised on
Faust's own code. The end-to-end guarantee across a rebalance is
``tests/agents/test_rebalance.py``.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import re
import tomllib
from collections import defaultdict
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from faust.app import base as app_base
from faust.sensors.monitor import Monitor
from faust.transport import conductor, consumer
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from intervaltree import IntervalTree

from stream.kafka.batches import (
    FETCH_MAX_WAIT_MS,
    BatchConsumer,
    BatchConsumerThread,
    BatchTransport,
    gap_bounds,
)

ROOT = Path(__file__).resolve().parents[3]
PINNED = {"faust-streaming": "0.15.3", "aiokafka": "0.14.0"}

# sha256 (first 16 hex digits) of the source of each Faust function the batch consumer
# replaces (``_drain_messages``, ``getmany``: it mirrors their offset and flow handling) or
# calls. If one changed: re-read stream/kafka/batches.py against the new code, then update.
FINGERPRINTS: dict[str, tuple[Callable[..., Any], str]] = {
    "Consumer._drain_messages": (consumer.Consumer._drain_messages, "44a2500309e83c63"),
    "Consumer.getmany": (consumer.Consumer.getmany, "4b168d84882a70d6"),
    "Consumer._wait_next_records": (consumer.Consumer._wait_next_records, "6218e1969a636b3f"),
    "Consumer.track_message": (consumer.Consumer.track_message, "217d7f1399a4cd8e"),
    "Consumer.ack": (consumer.Consumer.ack, "5fcf41cf45153475"),
    "Consumer._add_gap": (consumer.Consumer._add_gap, "4df2573ded7c1c2c"),
    "Consumer._new_offset": (consumer.Consumer._new_offset, "1d2c7ea89a7ad4f1"),
    "Consumer.on_buffer_full": (consumer.Consumer.on_buffer_full, "c8961679e0bcdce5"),
    "Consumer.on_buffer_drop": (consumer.Consumer.on_buffer_drop, "4b57e8a418d5ad9c"),
    "Consumer.perform_seek": (consumer.Consumer.perform_seek, "0e8c130ff4b0afd8"),
    "Consumer.on_partitions_revoked": (
        consumer.Consumer.on_partitions_revoked,
        "d04b7ae72c6fc206",
    ),
    "aiokafka.Consumer._to_message": (faust_aiokafka.Consumer._to_message, "7c24f6511b2fcef7"),
    "aiokafka.ConsumerRebalanceListener.on_partitions_assigned": (
        faust_aiokafka.ConsumerRebalanceListener.on_partitions_assigned,
        "1c1f8406ad3698a6",
    ),
    "App._new_transport": (app_base.App._new_transport, "42db531312dd776f"),
    "App._on_partitions_revoked": (app_base.App._on_partitions_revoked, "d5c895bbe57dc73a"),
    "Conductor.acks_enabled_for": (conductor.Conductor.acks_enabled_for, "77ff8a731d3085ed"),
    "Conductor._update_indices": (conductor.Conductor._update_indices, "619b3247b96ac7d5"),
    "aiokafka.AIOKafkaConsumerThread._create_worker_consumer": (
        faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer,
        "c2701bfc3e6f6cad",
    ),
    "aiokafka.Consumer._new_consumer_thread": (
        faust_aiokafka.Consumer._new_consumer_thread,
        "0870ec53dea75083",
    ),
    "Monitor.on_stream_event_in": (Monitor.on_stream_event_in, "df6d2e5f6397ce44"),
    "aiokafka.AIOKafkaConsumerThread.verify_event_path": (
        faust_aiokafka.AIOKafkaConsumerThread.verify_event_path,
        "b983e7735f647cb3",
    ),
}


@pytest.mark.parametrize("package", sorted(PINNED))
def test_the_installed_versions_are_the_pinned_ones(package: str) -> None:
    assert version(package) == PINNED[package], (
        f"{package} {version(package)} is installed; stream/kafka/batches.py was checked "
        f"against {PINNED[package]}: re-check it, then update PINNED here and pyproject.toml"
    )
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = [d for d in deps if re.match(rf"{re.escape(package)}\b", d)]
    assert pins == [f"{package}=={PINNED[package]}"], f"pyproject.toml must pin {package} exactly"


@pytest.mark.parametrize("name", sorted(FINGERPRINTS))
def test_the_faust_code_the_batch_consumer_relies_on_is_unchanged(name: str) -> None:
    function, expected = FINGERPRINTS[name]
    found = hashlib.sha256(inspect.getsource(function).encode()).hexdigest()[:16]
    assert found == expected, (
        f"Faust's {name} changed (fingerprint {found}): re-read stream/kafka/batches.py "
        "against it, then update FINGERPRINTS"
    )


def test_the_worker_uses_the_batch_consumer() -> None:
    assert BatchTransport.Consumer is BatchConsumer
    assert issubclass(BatchConsumer, faust_aiokafka.Consumer)
    # What the drain loop calls on Faust's consumer, by name and parameters.
    params = {
        "_wait_next_records": ["self", "timeout"],
        "_to_message": ["self", "tp", "record"],
        "track_message": ["self", "message"],
        "ack": ["self", "message"],
        "_add_gap": ["self", "tp", "offset_from", "offset_to"],
        "on_buffer_full": ["self", "tp"],
        "on_buffer_drop": ["self", "tp"],
        "perform_seek": ["self"],
        "commit": ["self", "topics", "start_new_transaction"],
    }
    for name, expected in params.items():
        assert list(inspect.signature(getattr(BatchConsumer, name)).parameters) == expected, name


def test_the_fetch_wait_reaches_the_aiokafka_consumer() -> None:
    # BatchConsumerThread sets the attribute AIOKafkaConsumer.start() builds its fetcher from.
    async def run() -> int:
        consumer = AIOKafkaConsumer(bootstrap_servers="127.0.0.1:9", fetch_max_wait_ms=7)
        try:
            return int(consumer._fetch_max_wait_ms)
        finally:
            await consumer.stop()

    assert asyncio.run(run()) == 7
    source = inspect.getsource(AIOKafkaConsumer.start)
    assert "fetch_max_wait_ms=self._fetch_max_wait_ms" in source
    assert BatchConsumer._new_consumer_thread is not faust_aiokafka.Consumer._new_consumer_thread
    assert issubclass(BatchConsumerThread, faust_aiokafka.AIOKafkaConsumerThread)
    assert FETCH_MAX_WAIT_MS < 1500


def bare_consumer() -> Any:
    """Faust's offset bookkeeping without a broker: the attributes ``__init__`` would set."""
    c: Any = object.__new__(faust_aiokafka.Consumer)
    c._gap = defaultdict(IntervalTree)
    c._acked = defaultdict(list)
    c._acked_index = defaultdict(set)
    c._committed_offset = defaultdict(lambda: None)
    return c


def ack(c: Any, tp: TP, *offsets: int) -> None:
    for offset in offsets:
        c._acked[tp].append(offset)
        c._acked_index[tp].add(offset)


TP0 = TP("t", 0)


def test_gap_bounds_leave_the_message_being_handled_out_of_the_gap() -> None:
    # Read 5, then 9: offsets 6-8 will never come; 9 is being handled.
    assert gap_bounds(5, 9) == (6, 8)
    c = bare_consumer()
    asyncio.run(c._add_gap(TP0, *gap_bounds(5, 9)))
    ack(c, TP0, *range(6))
    ack(c, TP0, 10)  # a later message handled first cannot carry the commit past 9
    assert c._new_offset(TP0) == 9  # the next to read: 9 itself is not committed
    ack(c, TP0, 9)
    assert c._new_offset(TP0) == 11


def test_faust_own_gap_bounds_would_commit_past_the_message_being_handled() -> None:
    # Why gap_bounds exists: the drain loop of Faust 0.15.3 registers (last + 1, offset), and
    # _add_gap takes its end inclusively, so offset 9 (not handled) counts as done.
    c = bare_consumer()
    asyncio.run(c._add_gap(TP0, 6, 9))
    ack(c, TP0, *range(6))
    ack(c, TP0, 10)
    assert c._new_offset(TP0) == 11  # past 9, which nobody handled


def test_commits_stop_at_the_first_offset_not_acked() -> None:
    c = bare_consumer()
    ack(c, TP0, 0, 1, 2, 4, 5)
    assert c._new_offset(TP0) == 3
    ack(c, TP0, 3)
    assert c._new_offset(TP0) == 6
