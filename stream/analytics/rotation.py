"""Pseudonym key rotation (``loyalty pseudonym rotate``): every ``household_key`` in ClickHouse
re-keyed from the old ``LOYALTY_PSEUDONYM_KEY`` to a new one, segment membership unchanged.

The household ids come from Redis (every household with a snapshot); for each, the old and
the new key are computed, and in chunks:

- ``purchase_lines``: ``ALTER TABLE ... UPDATE household_key = transform(old -> new)`` (the
  key is not in the sort key, so a mutation can change it; waited for on both engines);
- ``household_segments`` (the key is in its sort key): the rows are copied under the new keys,
  then the old rows deleted; new-key copies of an interrupted run are removed first, so a run
  can be repeated.

Then the new key's fingerprint goes into ``pseudonym_keys`` (migration 007); a worker started
with any other key refuses to write (``check_key``). The worker must be stopped meanwhile (a
line it wrote under the old key after the rotation would stay under it), and no erasure may
be pending (its rows are found by the old key).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass

from stream.analytics.erasure import delete_households, wait_for_mutations
from stream.analytics.pseudonym import household_key
from stream.analytics.segments import SEGMENT_COLUMNS, SEGMENTS_TABLE
from stream.clickhouse.engine import ClickHouse
from stream.errors import SettingsError

KEYS_TABLE = "pseudonym_keys"
CHUNK = 2000  # keys per mutation: two arrays of them stay well under max_query_size


class KeyMismatch(SettingsError):
    """``LOYALTY_PSEUDONYM_KEY`` is not the key of the last rotation."""


def fingerprint(key: bytes) -> str:
    return hmac.new(key, b"loyalty pseudonym key fingerprint", hashlib.sha256).hexdigest()[:32]


def check_key(client: ClickHouse, key: bytes) -> None:
    """Raise ``KeyMismatch`` if a rotation happened and ``key`` is not its new key."""
    rows = client.query(f"SELECT fingerprint FROM {KEYS_TABLE} ORDER BY rotated_at DESC LIMIT 1")  # noqa: S608
    if rows and rows[0][0] != fingerprint(key):
        raise KeyMismatch(
            "LOYALTY_PSEUDONYM_KEY is not the key of the last `loyalty pseudonym rotate`: "
            "set it to the new key (rows written under the old one would split households)"
        )


@dataclass(frozen=True, slots=True)
class Rotation:
    households: int
    chunks: int


def mapping(household_ids: Sequence[str], old: bytes, new: bytes) -> dict[int, int]:
    return {household_key(old, h): household_key(new, h) for h in sorted(set(household_ids))}


def rotate(client: ClickHouse, keys: dict[int, int], new: bytes, *, chunk: int = CHUNK) -> Rotation:
    """Re-key every row of ``keys`` (old -> new) in ClickHouse, then record the new key."""
    olds = sorted(keys)
    chunks = 0
    columns = ", ".join(SEGMENT_COLUMNS)
    copied = ", ".join(
        "transform(household_key, {old:Array(UInt64)}, {new:Array(UInt64)}, household_key)"
        if c == "household_key"
        else c
        for c in SEGMENT_COLUMNS
    )
    for start in range(0, len(olds), chunk):
        part = olds[start : start + chunk]
        params = {"old": part, "new": [keys[k] for k in part]}
        update = (
            "ALTER TABLE purchase_lines UPDATE household_key = "
            "transform(household_key, {old:Array(UInt64)}, {new:Array(UInt64)}, household_key) "
            "WHERE has({old:Array(UInt64)}, household_key)"
        )
        if client.engine == "chdb":
            client.execute(update + " SETTINGS mutations_sync = 2", params)
        else:
            client.execute(update, params)
            wait_for_mutations(client, ["purchase_lines"], 3600.0)
        # segments: if old rows are left, drop copies of an interrupted run, copy the old rows
        # under the new keys, drop the old rows (no old rows: this chunk is done already)
        left = client.query(
            f"SELECT count() FROM {SEGMENTS_TABLE} "  # noqa: S608
            "WHERE has({old:Array(UInt64)}, household_key)",
            params,
        )
        chunks += 1
        if not left or int(left[0][0]) == 0:
            continue
        delete_households(client, params["new"], tables=(SEGMENTS_TABLE,))
        client.execute(
            f"INSERT INTO {SEGMENTS_TABLE} ({columns}) SELECT {copied} "  # noqa: S608
            f"FROM {SEGMENTS_TABLE} WHERE has({{old:Array(UInt64)}}, household_key)",
            params,
        )
        delete_households(client, part, tables=(SEGMENTS_TABLE,))
    client.insert(KEYS_TABLE, ("fingerprint", "households"), [(fingerprint(new), len(olds))])
    return Rotation(households=len(olds), chunks=chunks)


def unmapped_keys(client: ClickHouse, keys: Sequence[int]) -> int:
    """Household keys in ClickHouse that are not in ``keys`` (after a rotation: 0 expected)."""
    found = client.query("SELECT DISTINCT household_key FROM purchase_lines FINAL")
    wanted = set(keys)
    return sum(1 for (k,) in found if k not in wanted)
