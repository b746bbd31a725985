"""Retention in Redis: per-month state older than the retention period is removed.

Accumulators, seen-sets and payout records carry an expiry from the moment they are written;
this sweep covers a shortened retention period and keys from before that.
"""

from __future__ import annotations

import re
from collections import Counter

import redis

from models.months import Month

# <kind>:<household>:<YYYY-MM>[:...] and month:<YYYY-MM>:...
_PER_HOUSEHOLD = re.compile(r"^(acc|seen|paid|payout):[A-Za-z0-9_.\-]+:(\d{4}-\d{2})(?::\d+)?$")
_PER_MONTH = re.compile(r"^month:(\d{4}-\d{2}):")


def month_of_key(key: str) -> tuple[str, Month] | None:
    """``(kind, month)`` of a per-month key (without prefix), else None."""
    if m := _PER_HOUSEHOLD.match(key):
        return m.group(1), Month.parse(m.group(2))
    if m := _PER_MONTH.match(key):
        return "month", Month.parse(m.group(1))
    return None


def expire_months(
    client: redis.Redis, prefix: str, keep_from: Month, *, dry_run: bool = False
) -> Counter[str]:
    """Delete per-month keys of months before ``keep_from``; returns counts by kind."""
    removed: Counter[str] = Counter()
    batch: list[bytes | str] = []
    for raw in client.scan_iter(match=f"{prefix}*", count=1000):
        key = raw.decode() if isinstance(raw, bytes) else raw
        found = month_of_key(key[len(prefix) :])
        if found is None or found[1] >= keep_from:
            continue
        removed[found[0]] += 1
        if not dry_run:
            batch.append(raw)
            if len(batch) >= 1000:
                client.unlink(*batch)
                batch.clear()
    if batch:
        client.unlink(*batch)
    return removed
