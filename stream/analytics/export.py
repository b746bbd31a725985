"""The marketing export: segment members who may be reached on a channel, counts by reason."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date

import orjson

from models.consent import CHANNELS, household_bans_product_data, person_excluded_reason
from models.months import month_start
from stream.analytics.pseudonym import household_key
from stream.analytics.segments import SQL, latest_build
from stream.clickhouse.engine import ClickHouse
from stream.errors import NoSegmentsError
from stream.settings import Settings
from stream.store.store import Store


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


def _json_list(text: str | None) -> list[str]:
    if not text:
        return []
    value = orjson.loads(text)
    return [str(v) for v in value] if isinstance(value, list) else []


async def _household_ids(store: Store, wanted: set[int], key: bytes) -> dict[int, str]:
    """household_key -> household_id for the wanted keys, by scanning every household record.

    (There is no reverse index: the pseudonym is one-way by design, so the export recomputes
    it for every household it knows.)
    """
    found: dict[int, str] = {}
    async for batch in store.household_id_batches():
        for hid in batch:
            hkey = household_key(key, hid)
            if hkey in wanted:
                found[hkey] = hid
    return found


def _person_reason(person: dict[str, str], bans: frozenset[str], channel: str) -> str | None:
    """The consent rules (``models.consent``) on a person record as Redis holds it."""
    return person_excluded_reason(
        bans,
        email_marketing=person.get("email_marketing") == "1",
        sms_marketing=person.get("sms_marketing") == "1",
        channel=channel,
    )


async def export_segment(
    client: ClickHouse,
    store: Store,
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

    pseudonym_key = settings.pseudonym_key.get_secret_value().encode("utf-8")
    ids = await _household_ids(store, members, pseudonym_key)
    result.households_left_out["household_unknown"] += len(members) - len(ids)

    hids = sorted(ids.values())
    households = await store.household_records(hids)
    person_ids = {
        h: _json_list(hh.get("person_ids")) for h, hh in zip(hids, households, strict=True)
    }
    all_persons = sorted({p for ps in person_ids.values() for p in ps})
    persons = dict(
        zip(
            all_persons,
            await store.person_records(all_persons),
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
