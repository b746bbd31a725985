"""What a batch of register events does: parse, validate, apply as snapshots and ledger entries."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from models.errors import InvalidEvent
from models.months import Month
from models.register import (
    CapitalPayment,
    CardSnapshot,
    ErasureRequest,
    HouseholdSnapshot,
    PersonSnapshot,
    RegisterEvent,
    parse_register,
)
from stream import metrics
from stream.analytics.pseudonym import household_key
from stream.audit import AuditLog
from stream.bonus.swipes import SwipeProcessor, _micros, log
from stream.kafka.deadletters import dead_letter
from stream.kafka.publisher import Publisher
from stream.kafka.topics import Record, Topics
from stream.retry import retry_forever
from stream.settings import PLACEHOLDER_PSEUDONYM_KEY, Settings
from stream.store.keys import Keys
from stream.store.store import Store


class RegisterProcessor:
    """Materialises register events in Redis; credits swipes held for a newly known card."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        publisher: Publisher,
        swipes: SwipeProcessor,
    ) -> None:
        self.store = store
        self.publisher = publisher
        self.swipes = swipes
        self.topics = Topics(settings)
        self.settings = settings
        self.audit = AuditLog.from_settings(settings, publisher)
        self._pseudonym_key = settings.pseudonym_key.get_secret_value().encode()

    async def process(self, records: list[Record]) -> dict[str, int]:
        started = time.perf_counter()
        events: list[tuple[Record, RegisterEvent]] = []
        for record in records:
            try:
                events.append((record, parse_register(record.value or b"")))
            except InvalidEvent as exc:
                await self._reject(record, exc.reason, exc.detail)
            except Exception as exc:
                log.exception("unexpected error parsing a register event")
                await self._reject(record, "internal_error", type(exc).__name__)
        tz = self.swipes.rules.timezone
        now = datetime.now(UTC)
        months = erasure_months(now, self.settings.retention_months)
        ops = [
            register_op(event, tz, key=self._pseudonym_key, months=months, now=now)
            for _, event in events
        ]
        results = await retry_forever(lambda: self.store.apply_register(ops), dependency="redis")
        counts: dict[str, int] = {}
        for (_, event), result in zip(events, results, strict=True):
            kind = _event_type(event)
            if isinstance(event, ErasureRequest):
                await self.audit.record(
                    action="erasure",
                    subject=event.household_id,
                    client="register",
                    outcome="ok",
                    detail=f"register erasure, {result}",
                )
            metrics.REGISTER_EVENTS.labels(type=kind, outcome=result).inc()
            counts[result] = counts.get(result, 0) + 1
        # Whatever the snapshot's fate, a now known card's held swipes are credited: a replay
        # after a crash between the two steps must still drain them.
        cards = sorted({e.card for _, e in events if isinstance(e, CardSnapshot)})
        await self.swipes.credit_held(
            await retry_forever(lambda: self.store.cards_with_held(cards), dependency="redis")
        )
        await self.publisher.flush()
        metrics.BATCH_SIZE.labels(stage="register").observe(len(records))
        metrics.BATCH_SECONDS.labels(stage="register").observe(time.perf_counter() - started)
        return counts

    async def _reject(self, record: Record, reason: str, detail: str) -> None:
        metrics.DEAD_LETTERS.labels(source="register", reason=reason).inc()
        value = dead_letter(self.topics.register, record.key, record.value, reason, detail)
        await self.publisher.send(self.topics.dead_letters, record.key, value)


def _event_type(event: RegisterEvent) -> str:
    return {
        HouseholdSnapshot: "household",
        CardSnapshot: "card",
        PersonSnapshot: "person",
        CapitalPayment: "capital_payment",
        ErasureRequest: "erasure",
    }[type(event)]


def _flag(value: bool) -> str:
    return "1" if value else "0"


#: how long the id of a processed erasure request is remembered (a replay changes nothing)
ERASURE_REQUEST_TTL_SECONDS = 3 * 366 * 86400
_DEFAULT_KEY = PLACEHOLDER_PSEUDONYM_KEY.encode()


def erasure_months(now: datetime, retention_months: int) -> list[str]:
    """Every bonus month that may still hold per-month state: the retention period, a margin
    for keys not yet swept, and the next month (in any time zone)."""
    current = Month.of(now, ZoneInfo("UTC"))
    first = current.minus(max(retention_months, 24) + 3)
    months = []
    month = first
    while month <= current.next():
        months.append(str(month))
        month = month.next()
    return months


def register_op(
    event: RegisterEvent,
    tz: ZoneInfo | None = None,
    *,
    key: bytes = _DEFAULT_KEY,
    months: Sequence[str] = (),
    now: datetime | None = None,
) -> dict[str, Any]:
    """The Lua op for one register event (see stream/store/lua/apply_register.lua).

    A capital payment also carries the year of its ``paid_at`` in the rules' time zone ``tz``
    (the ledger keeps capital per year for the interest on member capital).
    ``key`` is the pseudonym key (an erasure is remembered under the household's keyed hash,
    never its id); ``months`` are the months an erasure clears (``erasure_months``).
    """
    if isinstance(event, ErasureRequest):
        moment = now or datetime.now(UTC)
        return {
            "k": "erase",
            "id": event.request_id,
            "hid": event.household_id,
            "hk": str(household_key(key, event.household_id)),
            "ts": _micros(event.requested_at),
            "months": list(months) or erasure_months(moment, 24),
            "now": int(moment.timestamp()),
            "ttl": ERASURE_REQUEST_TTL_SECONDS,
        }
    if isinstance(event, CapitalPayment):
        op: dict[str, Any] = {
            "k": "capital",
            "hid": event.household_id,
            "id": event.payment_id,
            "amount": event.amount_cents,
        }
        if tz is not None:
            op["year"] = str(event.paid_at.astimezone(tz).year)
        return op
    fields: dict[str, str]
    index: dict[str, str] = {}
    if isinstance(event, HouseholdSnapshot):
        entity = Keys.unprefixed_household(event.household_id)
        fields = {
            "co_op": event.co_op,
            "head_person_id": event.head_person_id,
            "person_ids": orjson.dumps(list(event.person_ids)).decode(),
            "business": _flag(event.business),
            "status": event.status,
            "ended_at": event.ended_at.isoformat() if event.ended_at else "",
            "capital_required_cents": str(event.capital_required_cents),
            "payout_account": event.payout_account,
            # the pseudonymous key of the household's ClickHouse rows: a reader without the
            # pseudonym key (the API) finds its purchase lines by it (right of access)
            "household_key": str(household_key(key, event.household_id)),
        }
    elif isinstance(event, CardSnapshot):
        entity = Keys.unprefixed_card(event.card)
        fields = {
            "household_id": event.household_id,
            "person_id": event.person_id,
            "status": event.status,
            "valid_until": event.valid_until.isoformat() if event.valid_until else "",
        }
        index = {"idx": "cards", "ent": event.card}
    else:
        entity = Keys.unprefixed_person(event.person_id)
        fields = {
            "household_id": event.household_id,
            "bans": orjson.dumps(sorted(event.bans)).decode(),
            "email_marketing": _flag(event.email_marketing),
            "sms_marketing": _flag(event.sms_marketing),
        }
        index = {"idx": "persons", "ent": event.person_id}
    fields["updated_at"] = event.updated_at.isoformat()
    return {
        "k": "snapshot",
        "key": entity,
        "ts": _micros(event.updated_at),
        "f": fields,
        "hid": event.household_id,
        "hk": str(household_key(key, event.household_id)),
        **index,
    }
