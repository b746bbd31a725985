"""Household segments, assortment aggregates and the marketing export.

The SQL lives in ``stream/sql/segments.sql`` (one named block per query, reusable by
dashboards); this module runs it and applies the register's consent rules on export.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Protocol

import orjson

from stream.clickhouse import ClickHouse
from stream.pseudonym import household_key
from stream.settings import Settings

__all__ = [
    "CHANNELS",
    "SEGMENTS_TABLE",
    "SQL",
    "SQL_FILE",
    "AssortmentRow",
    "ExportResult",
    "ExportRow",
    "NoSegmentsError",
    "SegmentRules",
    "assortment",
    "build_segments",
    "export_segment",
    "latest_build",
    "load_sql",
    "month_start",
    "segment_sizes",
]

SQL_FILE = Path(__file__).with_name("sql") / "segments.sql"
SEGMENTS_TABLE = "household_segments"
SEGMENT_COLUMNS = (
    "build_month",
    "months",
    "household_key",
    "segment",
    "spend_cents",
    "visit_days",
    "recency_days",
    "top_group",
    "top_group_share_bp",
    "campaign_share_bp",
    "fuel",
)
DEFAULT_TIMEZONE = "Europe/Helsinki"
CHANNELS = ("email", "sms", "mail")

_NAME_LINE = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


def load_sql(path: Path = SQL_FILE) -> dict[str, str]:
    """The named blocks of a ``-- name:`` SQL file, comment lines and the final ``;`` removed."""
    text = path.read_text(encoding="utf-8")
    marks = list(_NAME_LINE.finditer(text))
    blocks: dict[str, str] = {}
    for i, mark in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        body = "\n".join(
            line
            for line in text[mark.end() : end].splitlines()
            if not line.lstrip().startswith("--")
        ).strip()
        blocks[mark.group(1)] = body.removesuffix(";").rstrip()
    return blocks


SQL: dict[str, str] = load_sql()


def month_start(day: date) -> date:
    return day.replace(day=1)


def _months_back(month: date, count: int) -> date:
    index = month.year * 12 + month.month - 1 - count
    return date(index // 12, index % 12 + 1, 1)


def _month_end(month: date) -> date:
    return _months_back(month, -1) - timedelta(days=1)


class NoSegmentsError(LookupError):
    """Nothing to export: no segments have been built."""


@dataclass(frozen=True, slots=True)
class SegmentRules:
    """Thresholds of the segment codes (see ``segment_rows`` in segments.sql).

    Spend and visits are per month on average over the window: a 3-month build puts a
    household in ``spend:high`` from 3 x 300 € of net purchases.
    """

    spend_medium_cents: int = 10_000  # 100 €/month
    spend_high_cents: int = 30_000  # 300 €/month
    spend_top_cents: int = 60_000  # 600 €/month
    visits_regular_days: int = 2  # shopping days per month
    visits_frequent_days: int = 8
    lapsed_days: int = 60  # since the last purchase day, counted to the end of the as-of month
    affinity_share_bp: int = 2_500  # top non-fuel group >= 25 % of non-fuel spend
    campaign_share_bp: int = 2_000  # >= 20 % of spend on campaign lines

    def params(self) -> dict[str, int]:
        return {
            "spend_medium_cents": self.spend_medium_cents,
            "spend_high_cents": self.spend_high_cents,
            "spend_top_cents": self.spend_top_cents,
            "visits_regular_days": self.visits_regular_days,
            "visits_frequent_days": self.visits_frequent_days,
            "lapsed_days": self.lapsed_days,
            "affinity_share_bp": self.affinity_share_bp,
            "campaign_share_bp": self.campaign_share_bp,
        }


def build_segments(
    client: ClickHouse,
    as_of_month: date,
    months: int,
    *,
    rules: SegmentRules | None = None,
    tz: str = DEFAULT_TIMEZONE,
) -> int:
    """Rebuild ``household_segments`` for the build month of ``as_of_month``.

    The window is the ``months`` bonus months ending with ``as_of_month`` (any day of it);
    ``tz`` is the rules' time zone, for the local day of a visit. The build month's partition
    is dropped and written again, so a rebuild replaces (readers may see it empty for the
    moment in between). Returns the number of households segmented.
    """
    if not 1 <= months <= 255:
        raise ValueError("months must be between 1 and 255")
    as_of = month_start(as_of_month)
    params: dict[str, Any] = {
        "as_of": as_of,
        "as_of_end": _month_end(as_of),
        "from_month": _months_back(as_of, months - 1),
        "months": months,
        "tz": tz,
        **(rules or SegmentRules()).params(),
    }
    client.execute(f"ALTER TABLE {SEGMENTS_TABLE} DROP PARTITION ID '{as_of:%Y%m}'")
    client.execute(
        f"INSERT INTO {SEGMENTS_TABLE} ({', '.join(SEGMENT_COLUMNS)}) {SQL['segment_rows']}",
        params,
    )
    rows = client.query(SQL["build_households"], {"build_month": as_of})
    return int(rows[0][0]) if rows else 0


def latest_build(client: ClickHouse) -> tuple[date, int] | None:
    """(build month, window months) of the newest build, or ``None`` if none was built."""
    rows = client.query(SQL["latest_build"])
    if not rows:
        return None
    return rows[0][0], int(rows[0][1])


def segment_sizes(client: ClickHouse, build_month: date) -> dict[str, int]:
    """segment code -> households in the build of ``build_month``."""
    rows = client.query(SQL["segment_sizes"], {"build_month": month_start(build_month)})
    return {str(code): int(n) for code, n in rows}


@dataclass(frozen=True, slots=True)
class AssortmentRow:
    store_id: str
    product_group: str
    month: date
    sales_cents: int
    households: int
    receipts: int
    store_receipts: int
    basket_share_bp: int


def assortment(
    client: ClickHouse, from_month: date, to_month: date, *, min_households: int = 5
) -> list[AssortmentRow]:
    """Store x product group x month aggregates (see ``assortment`` in segments.sql)."""
    rows = client.query(
        SQL["assortment"],
        {
            "from_month": month_start(from_month),
            "to_month": month_start(to_month),
            "min_households": min_households,
        },
    )
    return [
        AssortmentRow(
            str(r[0]), str(r[1]), r[2], int(r[3]), int(r[4]), int(r[5]), int(r[6]), int(r[7])
        )
        for r in rows
    ]


# -- export -------------------------------------------------------------------------------

#: household-level reasons, in the order they are checked (a household counts once, first hit)
HOUSEHOLD_REASONS = (
    "household_unknown",  # in the segment, but no hh:* record maps to its key
    "household_ended",
    "product_data_marketing_ban",  # some person of the household has the ban
    "person_record_missing",  # a listed person has no person:* record: bans unknown
    "no_reachable_person",  # nobody in the household may be contacted on the channel
)
#: person-level reasons (persons of households that passed the household checks)
PERSON_REASONS = (
    "person_not_in_household",  # the person record names another household
    "email_ban",
    "no_email_permission",
    "no_sms_permission",
    "direct_mail_ban",
)
PRODUCT_DATA_BAN = "product_data_marketing"


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


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


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


def _person_reason(person: dict[str, str], bans: set[str], channel: str) -> str | None:
    if channel == "email":
        if "email" in bans:
            return "email_ban"
        if person.get("email_marketing") != "1":
            return "no_email_permission"
    elif channel == "sms":
        if person.get("sms_marketing") != "1":
            return "no_sms_permission"
    elif "direct_mail" in bans:  # mail
        return "direct_mail_ban"
    return None


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
        bans = [set(_json_list(r.get("bans"))) for r in records]
        if any(PRODUCT_DATA_BAN in b for b in bans):
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
