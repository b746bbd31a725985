"""The right of access (contract section 9): one ``subject-access/1`` document with everything
the service holds on a household, or on a person (that person's own records plus their
household's, never another person's or household's).

Redis gives the register snapshots, capital, months, payouts and held swipes; ClickHouse gives
the purchase lines and segment memberships, found by the household's pseudonymous key. Where
ClickHouse cannot be read (the embedded engine is open in the worker), the document says so in
``omitted`` rather than pretending to be complete.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import orjson

from models.bonus import BonusFigures, bonus_for
from models.rules import Rules
from stream.analytics.pseudonym import household_key
from stream.analytics.segments import SEGMENT_COLUMNS as SEGMENT_TABLE_COLUMNS
from stream.analytics.segments import SEGMENTS_TABLE
from stream.analytics.sink import COLUMNS as LINE_TABLE_COLUMNS
from stream.analytics.sink import TABLE as LINES_TABLE
from stream.clickhouse.connect import connect
from stream.clickhouse.engine import ClickHouse
from stream.settings import PLACEHOLDER_PSEUDONYM_KEY, Settings
from stream.store.store import MonthState, Store, household_from_hash

SCHEMA = "subject-access/1"
#: what a subject sees of its rows: every column but the pseudonym (section 9)
LINE_COLUMNS = tuple(c for c in LINE_TABLE_COLUMNS if c != "household_key")
SEGMENT_COLUMNS = tuple(c for c in SEGMENT_TABLE_COLUMNS if c != "household_key")
#: the snapshot fields that are bookkeeping, not data on the subject
_INTERNAL = frozenset({"updated_us", "household_key"})


class SubjectNotFound(LookupError):
    """Nothing is held on the subject (never seen, or erased)."""


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    return value


def month_figures(
    month: str, co_op: str, state: MonthState, figures: BonusFigures
) -> dict[str, Any]:
    """A household-month's figures as they stand now (contract section 6, without the id)."""
    return {
        "month": month,
        "co_op": co_op,
        "purchases_cents": figures.purchases_cents,
        "tier_bp": figures.tier_bp,
        "base_bonus_cents": figures.base_bonus_cents,
        "fuel_bonus_cents": figures.fuel_bonus_cents,
        "payment_benefit_cents": figures.payment_benefit_cents,
        "total_cents": figures.total_cents,
        "final": state.closed,
        "paid_cents": state.paid.total_cents,
        "swipes": state.accumulator.swipes,
    }


def _snapshot(record: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in sorted(record.items()):
        if name in _INTERNAL:
            continue
        if name in {"person_ids", "bans"}:
            out[name] = orjson.loads(value or "[]")
        elif name in {"business", "email_marketing", "sms_marketing"}:
            out[name] = value == "1"
        elif name == "capital_required_cents":
            out[name] = int(value or 0)
        else:
            out[name] = value
    return out


def clickhouse_part(client: ClickHouse, household_key: int) -> dict[str, list[dict[str, Any]]]:
    """The household's purchase lines (every column but ``household_key``) and segments."""
    lines = client.query(
        f"SELECT {', '.join(LINE_COLUMNS)} FROM {LINES_TABLE} FINAL "  # noqa: S608
        "WHERE household_key = {k:UInt64} ORDER BY occurred_at, event_id, line_no",
        {"k": household_key},
    )
    segments = client.query(
        f"SELECT {', '.join(SEGMENT_COLUMNS)} FROM {SEGMENTS_TABLE} "  # noqa: S608
        "WHERE household_key = {k:UInt64} ORDER BY build_month, segment",
        {"k": household_key},
    )
    return {
        "purchase_lines": [
            {c: _json_value(v) for c, v in zip(LINE_COLUMNS, row, strict=True)} for row in lines
        ],
        "segments": [
            {c: _json_value(v) for c, v in zip(SEGMENT_COLUMNS, row, strict=True)}
            for row in segments
        ],
    }


async def subject_access(
    store: Store,
    rules: Rules,
    *,
    household_id: str | None = None,
    person_id: str | None = None,
    analytics: Callable[[str, str | None], Awaitable[Any]] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The document for ``household_id`` or ``person_id`` (exactly one).

    ``analytics(household_id, stored_key)`` is awaited for the ClickHouse part
    (``clickhouse_part``'s shape); ``stored_key`` is the household's pseudonymous key as the
    register path stored it in Redis (None for a household stored before it did). It may
    raise ``LookupError`` with the reason that part is omitted. Raises ``SubjectNotFound`` when
    nothing is held on the subject.
    """
    if (household_id is None) == (person_id is None):
        raise ValueError("give exactly one of household_id and person_id")
    subject: dict[str, str] = {}
    person: dict[str, str] | None = None
    if person_id is not None:
        person = await store.person_record(person_id)
        if not person:
            raise SubjectNotFound("no such person")
        household_id = person.get("household_id") or ""
        subject = {"person_id": person_id, "household_id": household_id}
    else:
        assert household_id is not None
        subject = {"household_id": household_id}
    records = await store.subject_records(household_id) if household_id else None
    if records is None or (
        not records["household"] and not records["months"] and not records["cards"]
    ):
        if person is None:
            raise SubjectNotFound("no such household")
        records = None
    document: dict[str, Any] = {
        "schema": SCHEMA,
        "generated_at": _json_value(now or datetime.now(UTC)),
        "subject": subject,
    }
    omitted: dict[str, str] = {}
    if records is None:  # a person whose household is not (or no longer) held
        assert person is not None
        document["persons"] = [{"person_id": person_id, **_snapshot(person)}]
        document.update(household=None, cards=[], months=[], payouts=[], held_swipes=[])
        document.update(purchase_lines=[], segments=[], capital=None)
        return document
    assert household_id is not None
    persons = records["persons"]
    cards = records["cards"]
    if person_id is not None:
        assert person is not None
        persons = {person_id: person}
        cards = {c: r for c, r in cards.items() if r.get("person_id") == person_id}
    hh_record = records["household"]
    household = household_from_hash(household_id, hh_record)
    co_op = household.co_op if household else ""
    business = bool(household and household.business)
    months = []
    for month in records["months"]:
        state = await store.month_state(household_id, month)
        figures = bonus_for(state.accumulator, rules, co_op, business=business)
        months.append(month_figures(month, co_op, state, figures))
    document.update(
        household={"household_id": household_id, **_snapshot(hh_record)} if hh_record else None,
        persons=[{"person_id": p, **_snapshot(r)} for p, r in sorted(persons.items())],
        cards=[{"card": c, **_snapshot(r)} for c, r in sorted(cards.items())],
        capital={
            "payments": [
                {"payment_id": k, "amount_cents": v}
                for k, v in sorted(records["capital_payments"].items())
            ],
            "ledger": records["ledger"],
        },
        months=months,
        payouts=records["payouts"],
        held_swipes=[
            swipe
            for card, swipes in sorted(records["held"].items())
            if card in cards
            for swipe in swipes
        ],
    )
    part: dict[str, Any] = {"purchase_lines": [], "segments": []}
    if analytics is not None:
        try:
            part = await analytics(household_id, (hh_record or {}).get("household_key"))
        except LookupError as exc:
            omitted["purchase_lines"] = omitted["segments"] = str(exc)
    else:
        omitted["purchase_lines"] = omitted["segments"] = "ClickHouse was not read"
    document.update(part)
    if omitted:
        document["omitted"] = omitted
    return document


def analytics_reader(settings: Settings) -> Callable[[str, str | None], Awaitable[Any]]:
    """How the API reads a household's ClickHouse part: from a ClickHouse server (a read-only
    user is enough), by the household's pseudonymous key as stored in Redis, so the API needs
    no pseudonym key; with the key configured, households stored before the key was kept in
    Redis are found too. Otherwise a reader that says why that part is omitted."""
    configured = settings.pseudonym_key.get_secret_value()
    key = None if configured == PLACEHOLDER_PSEUDONYM_KEY else configured.encode()

    async def read(household_id: str, stored_key: str | None) -> Any:
        if settings.embedded_clickhouse:
            raise LookupError(
                "the embedded ClickHouse (chdb) is open in the worker: use `loyalty "
                "subject-access` with the worker stopped, or give this process a ClickHouse "
                "server URL (LOYALTY_CLICKHOUSE_URL; a read-only user is enough)"
            )
        if stored_key:
            pseudonym = int(stored_key)
        elif key is not None:
            pseudonym = household_key(key, household_id)
        else:
            raise LookupError(
                "the household's pseudonymous key is not in Redis (stored before it was kept "
                "there) and this process has no pseudonym key (LOYALTY_PSEUDONYM_KEY)"
            )

        def run() -> Any:
            with connect(settings.clickhouse_url) as client:
                return clickhouse_part(client, pseudonym)

        return await asyncio.to_thread(run)

    return read
