"""The marketing export: segment members who may be reached on a channel, counts by reason."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

import orjson

from models.consent import CHANNELS, household_bans_product_data, person_excluded_reason
from models.months import month_start
from stream.analytics.pseudonym import household_key
from stream.analytics.segments import SQL, _text, latest_build
from stream.clickhouse.engine import ClickHouse
from stream.errors import NoSegmentsError
from stream.settings import Settings


class RedisLike(Protocol):
    """The synchronous redis-py calls the export uses (``redis.Redis``)."""

    def scan_iter(self, match: str | None = ..., count: int | None = ...) -> Iterable[Any]: ...

    def pipeline(self, transaction: bool = ...) -> Any: ...


@dataclass(frozen=True, slots=True)
class ExportRow:
    household_id: str
    person_ids: tuple[str, ...]  # the persons who may be contacted on the channel


@dataclass(slots=True)
class ExportResult:
    segment: str
    channel: str
    build_month: date
    members: int  # households in the segment (pseudonymous keys)
    rows: list[ExportRow] = field(default_factory=list)
    households_left_out: Counter[str] = field(default_factory=Counter)
    persons_left_out: Counter[str] = field(default_factory=Counter)

    @property
    def persons(self) -> int:
        return sum(len(row.person_ids) for row in self.rows)


def _hash(data: dict[Any, Any]) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in data.items()}


def _json_list(text: str | None) -> list[str]:
    if not text:
        return []
    value = orjson.loads(text)
    return [str(v) for v in value] if isinstance(value, list) else []


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


def _household_ids(
    redis_client: RedisLike, prefix: str, wanted: set[int], key: bytes
) -> dict[int, str]:
    """household_key -> household_id for the wanted keys, by scanning every ``hh:*`` record.

    (There is no reverse index: the pseudonym is one-way by design, so the export recomputes
    it for every household it knows.)
    """
    head = f"{prefix}hh:"
    found: dict[int, str] = {}
    for raw in redis_client.scan_iter(match=f"{_glob_escape(head)}*", count=1000):
        rest = _text(raw)[len(head) :]
        if not rest or ":" in rest:  # hh:H1:capital, hh:H1:ledger, ...
            continue
        hid = rest[1:-1] if rest.startswith("{") and rest.endswith("}") else rest
        hkey = household_key(key, hid)
        if hkey in wanted:
            found[hkey] = hid
    return found


def _hgetall_many(redis_client: RedisLike, keys: list[str]) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for start in range(0, len(keys), 500):
        pipe = redis_client.pipeline(transaction=False)
        for k in keys[start : start + 500]:
            pipe.hgetall(k)
        out.extend(_hash(d) for d in pipe.execute())
    return out


def _person_reason(person: dict[str, str], bans: frozenset[str], channel: str) -> str | None:
    """The consent rules (``models.consent``) on a person record as Redis holds it."""
    return person_excluded_reason(
        bans,
        email_marketing=person.get("email_marketing") == "1",
        sms_marketing=person.get("sms_marketing") == "1",
        channel=channel,
    )


def export_segment(
    client: ClickHouse,
    redis_client: RedisLike,
    settings: Settings,
    segment: str,
    channel: str,
    *,
    build_month: date | None = None,
) -> ExportResult:
    """The households of ``segment`` (newest build unless ``build_month``) that may be
    contacted on ``channel``, with the persons allowed on it, and what was left out and why.

    Every segment here is built from product-level purchases, so a household with any person
    banning ``product_data_marketing`` is always left out (contract §3). Channels: ``email``
    needs ``email_marketing`` and no ``email`` ban, ``sms`` needs ``sms_marketing``, ``mail``
    needs no ``direct_mail`` ban. Where the register data is missing, the household or person
    is left out rather than guessed.
    """
    if channel not in CHANNELS:
        raise ValueError(f"channel must be one of {', '.join(CHANNELS)}, got {channel!r}")
    if build_month is None:
        latest = latest_build(client)
        if latest is None:
            raise NoSegmentsError("no segments have been built yet (run `segments build` first)")
        build_month = latest[0]
    build_month = month_start(build_month)
    members = {
        int(r[0])
        for r in client.query(
            SQL["segment_members"], {"build_month": build_month, "segment": segment}
        )
    }
    result = ExportResult(segment, channel, build_month, len(members))
    if not members:
        return result

    prefix = settings.redis_prefix
    pseudonym_key = settings.pseudonym_key.get_secret_value().encode("utf-8")
    ids = _household_ids(redis_client, prefix, members, pseudonym_key)
    result.households_left_out["household_unknown"] += len(members) - len(ids)

    hids = sorted(ids.values())
    households = _hgetall_many(redis_client, [f"{prefix}hh:{h}" for h in hids])
    person_ids = {
        h: _json_list(hh.get("person_ids")) for h, hh in zip(hids, households, strict=True)
    }
    all_persons = sorted({p for ps in person_ids.values() for p in ps})
    persons = dict(
        zip(
            all_persons,
            _hgetall_many(redis_client, [f"{prefix}person:{p}" for p in all_persons]),
            strict=True,
        )
    )

    for hid, hh in zip(hids, households, strict=True):
        if not hh:  # removed between the scan and the read
            result.households_left_out["household_unknown"] += 1
            continue
        if hh.get("status") == "ended":
            result.households_left_out["household_ended"] += 1
            continue
        members_of = person_ids[hid]
        records = [persons.get(p, {}) for p in members_of]
        bans = [frozenset(_json_list(r.get("bans"))) for r in records]
        if household_bans_product_data(bans):
            result.households_left_out["product_data_marketing_ban"] += 1
            continue
        if any(not r for r in records):
            result.households_left_out["person_record_missing"] += 1
            continue
        allowed: list[str] = []
        for pid, record, person_bans in zip(members_of, records, bans, strict=True):
            reason = (
                "person_not_in_household"
                if record.get("household_id", hid) != hid
                else _person_reason(record, person_bans, channel)
            )
            if reason is None:
                allowed.append(pid)
            else:
                result.persons_left_out[reason] += 1
        if not allowed:
            result.households_left_out["no_reachable_person"] += 1
            continue
        result.rows.append(ExportRow(hid, tuple(allowed)))
    return result
