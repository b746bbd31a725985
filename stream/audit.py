"""The audit trail (contract section 10): one ``audit/1`` record per access to personal data.

Every read of a subject's personal data, every subject-access export, erasure, retention run
and marketing export appends a record to ``loyalty.audit`` *before* the data is returned or
the deed is done; when the record cannot be written, ``record`` raises ``AuditUnavailable``
and the caller returns nothing (the API answers 503)::

    audit = AuditLog.from_settings(settings)               # the API: its own producer
    audit = AuditLog.from_settings(settings, publisher)    # a worker or CLI: its publisher
    await audit.record(action="erasure", subject=household_id, client="register",
                       outcome="ok", detail="request ER-77")

``subject_key``: HMAC-SHA256 of the household id under ``LOYALTY_AUDIT_KEY`` (hex, 128
bits), never the id or a card number. Its own key, not the pseudonym key, so the API (which
must write audit records) never holds the key that links ClickHouse rows to households.
``loyalty audit subject-key --household H`` prints the key to look a household up in
``audit_log``. When no household is known (an unknown card or person), the subject is the
reference the caller was given, typed: ``card:NUMBER`` or ``person:ID``, hashed the same way.

``detail`` is free text for the kind of access (``month=2026-11``, ``route=...``): never an
id, a card number or a name.

A record handed to the broker whose acknowledgement timed out may still arrive: the trail can
show a read that ended in 503, never miss one that returned data.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import uuid
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
from aiokafka import AIOKafkaProducer

from stream import metrics
from stream.errors import LoyaltyError
from stream.kafka.publisher import Publisher
from stream.kafka.topics import bootstrap_servers
from stream.settings import Settings

log = logging.getLogger(__name__)

SCHEMA = "audit/1"
TOPIC = "audit"  # loyalty.audit with the default prefix
ACTIONS = frozenset(
    {"bonus_read", "subject_access", "insights_read", "erasure", "retention", "export"}
)
OUTCOMES = frozenset({"ok", "not_found", "denied", "error"})


class AuditUnavailable(LoyaltyError, RuntimeError):
    """The audit record could not be written: the personal data must not be returned."""


def subject_key(key: bytes, subject: str) -> str:
    """The keyed hash standing for ``subject`` (a household id) in audit records."""
    return hmac.new(key, subject.encode("utf-8"), hashlib.sha256).hexdigest()[:32]


class AuditWriter(Protocol):
    """Writes one record durably, or raises ``AuditUnavailable``."""

    async def write(self, topic: str, key: bytes, value: bytes) -> None: ...

    async def close(self) -> None: ...


class KafkaAuditWriter:
    """Its own producer (``acks=all``), each record waited for, at most ``timeout`` seconds.

    Started on first use, so the API starts (and answers health checks) without a broker.
    """

    def __init__(self, kafka_url: str, timeout: float) -> None:
        self.kafka_url = kafka_url
        self.timeout = timeout
        self._producer: AIOKafkaProducer | None = None
        self._starting = asyncio.Lock()

    async def _ready(self) -> AIOKafkaProducer:
        if self._producer is not None:
            return self._producer
        async with self._starting:
            if self._producer is None:
                producer = AIOKafkaProducer(
                    bootstrap_servers=bootstrap_servers(self.kafka_url),
                    acks="all",
                    linger_ms=0,
                    request_timeout_ms=max(1000, int(self.timeout * 1000)),
                )
                try:
                    await producer.start()
                except BaseException:
                    with contextlib.suppress(Exception):
                        await producer.stop()
                    raise
                self._producer = producer
            return self._producer

    async def _send(self, topic: str, key: bytes, value: bytes) -> None:
        producer = await self._ready()
        await producer.send_and_wait(topic, value=value, key=key)

    async def write(self, topic: str, key: bytes, value: bytes) -> None:
        try:
            await asyncio.wait_for(self._send(topic, key, value), self.timeout)
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            raise AuditUnavailable(
                f"the broker did not take the audit record within {self.timeout:g} s "
                "(LOYALTY_KAFKA_URL, LOYALTY_AUDIT_TIMEOUT_SECONDS)"
            ) from None
        except Exception as exc:
            raise AuditUnavailable(f"the audit record could not be written: {exc}") from exc

    async def close(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.stop(), self.timeout)


class PublisherAuditWriter:
    """Through a confirming ``Publisher`` (worker, CLI): waits until the broker confirmed,
    retrying as the publisher does, so an erasure or export never runs unrecorded."""

    def __init__(self, publisher: Publisher) -> None:
        self.publisher = publisher

    async def write(self, topic: str, key: bytes, value: bytes) -> None:
        await self.publisher.send(topic, key, value)
        await self.publisher.flush()

    async def close(self) -> None:
        return None


class AuditLog:
    """``await audit.record(...)`` appends one ``audit/1`` record and returns it."""

    def __init__(self, writer: AuditWriter, key: bytes, topic: str) -> None:
        self.writer = writer
        self.key = key
        self.topic = topic

    @classmethod
    def from_settings(cls, settings: Settings, publisher: Publisher | None = None) -> AuditLog:
        writer: AuditWriter = (
            PublisherAuditWriter(publisher)
            if publisher is not None
            else KafkaAuditWriter(settings.kafka_url, settings.audit_timeout_seconds)
        )
        return cls(
            writer, settings.audit_key.get_secret_value().encode("utf-8"), settings.topic(TOPIC)
        )

    def subject_key(self, subject: str) -> str:
        return subject_key(self.key, subject)

    async def record(
        self,
        *,
        action: str,
        subject: str | None,
        client: str,
        outcome: str,
        detail: str = "",
    ) -> dict[str, Any]:
        """Write one record (raises ``AuditUnavailable`` if it cannot be written).

        ``subject``: the household id (or ``card:N`` / ``person:P`` when no household is
        known; None for a run without one subject, such as retention); only its keyed hash
        is written.
        """
        if action not in ACTIONS:
            raise ValueError(f"audit action must be one of {sorted(ACTIONS)}, got {action!r}")
        if outcome not in OUTCOMES:
            raise ValueError(f"audit outcome must be one of {sorted(OUTCOMES)}, got {outcome!r}")
        key = self.subject_key(subject) if subject is not None else ""
        entry = {
            "schema": SCHEMA,
            "audit_id": uuid.uuid4().hex,
            "at": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "client": client,
            "action": action,
            "subject_key": key,
            "outcome": outcome,
            "detail": detail,
        }
        try:
            await self.writer.write(self.topic, key.encode() or b"-", orjson.dumps(entry))
        except AuditUnavailable:
            metrics.AUDIT_FAILURES.inc()
            log.error("audit record not written (%s, %s): refusing the access", action, outcome)
            raise
        metrics.AUDIT_RECORDS.labels(action=action, outcome=outcome).inc()
        return entry

    async def close(self) -> None:
        await self.writer.close()
