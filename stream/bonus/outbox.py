"""The outbox: record in Redis first, then send, then take off the outbox. Never a second event.

Every outgoing money event (``payout/1`` of the month close, ``member-payment/1`` of the
member payments) is first recorded in Redis by a Lua script that also puts its id on an
outbox (a sorted set), once per id; only then is it sent. A crash between record and send
leaves it on the outbox and the next run sends the very same bytes (the receiving side
deduplicates by id); no second event for the same id is ever created.

Whoever sends an outbox entry first claims it (``<claim>:<id>``, for ``CLAIM_SECONDS``), so
two runs at once do not send the same entries twice. A claim left by a crash expires, and the
entry is sent by a later run. :class:`OutboxKind` names the keys and the topic of one kind;
the Redis calls are the Store's (``stream/store/outbox.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from stream.kafka.publisher import Publisher
from stream.retry import retry_forever
from stream.store.keys import Keys, OutboxKeys
from stream.store.store import Store

log = logging.getLogger(__name__)
CLAIM_SECONDS = 600
CHUNK = 500


def _nothing(event: dict[str, Any]) -> None:
    return None


@dataclass(frozen=True, slots=True)
class OutboxKind:
    """Where one kind of outgoing event is recorded and where it goes.

    ``keys``: its outbox's keys among a deployment's (``Keys.payout_outbox``,
    ``Keys.member_payment_outbox``); ``topic``: where it is sent, keyed by the event's
    ``key_field``; ``on_sent``: called with each event once the broker confirmed it (metrics).
    """

    keys: Callable[[Keys], OutboxKeys]
    topic: str
    key_field: str = "household_id"
    on_sent: Callable[[dict[str, Any]], None] = field(default=_nothing)


class Outbox:
    """Send one kind's recorded events, each id at most once at a time, until confirmed."""

    def __init__(self, store: Store, publisher: Publisher, kind: OutboxKind) -> None:
        self.store = store
        self.publisher = publisher
        self.kind = kind

    @property
    def box(self) -> OutboxKeys:
        return self.kind.keys(self.store.keys)

    async def pending(self) -> list[str]:
        """Ids recorded but not yet confirmed sent, oldest first."""
        return await self.store.outbox_ids(self.box)

    async def pending_among(self, ids: list[str]) -> set[str]:
        """The ids of ``ids`` still on the outbox (one round trip)."""
        return await self.store.outbox_pending_among(self.box, ids)

    async def send_pending(self) -> int:
        """Send everything still on the outbox (left by a crash or a broker outage)."""
        return await self.send(await self.pending())

    async def send(self, ids: list[str]) -> int:
        """Send the recorded events ``ids`` that nobody else is sending; returns how many."""
        box = self.box
        sent = 0
        for start in range(0, len(ids), CHUNK):
            mine = await self.store.claim_outbox(
                box, ids[start : start + CHUNK], seconds=CLAIM_SECONDS
            )
            if not mine:
                continue
            try:
                sent += await self._send_chunk(box, mine)
            except BaseException:
                # Not confirmed (a fatal error, or the process is being stopped): let the next
                # run send these again now, as it would after a crash once the claims expired.
                await self.store.release_outbox_claims(box, mine)
                raise
            await self.store.outbox_sent(box, mine)
        return sent

    async def _send_chunk(self, box: OutboxKeys, ids: list[str]) -> int:
        """Send the recorded events ``ids`` until the broker confirmed them; returns how many."""
        bodies = await self.store.outbox_records(box, ids)
        chunk = [(i, b, orjson.loads(b)) for i, b in zip(ids, bodies, strict=True) if b is not None]
        topic, key_field = self.kind.topic, self.kind.key_field

        async def deliver() -> None:
            # The whole chunk again on every attempt: a failed flush has already consumed the
            # publisher's pending sends, so flushing once more would confirm nothing.
            for _event_id, body, event in chunk:
                await self.publisher.send(topic, str(event[key_field]).encode(), body)
            await self.publisher.flush()

        await retry_forever(deliver, dependency="kafka", transient=(Exception,))
        for event_id, _body, event in chunk:
            self.kind.on_sent(event)
            log.debug("%s %s sent", box.name, event_id)
        return len(chunk)
