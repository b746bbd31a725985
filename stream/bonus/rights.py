"""The worker's own upkeep of the register's promises (contract section 9), no cron needed:

- ended customers: a household with ``status: ended`` is erased once ``ended_at`` is more
  than ``LOYALTY_ENDED_RETENTION_MONTHS`` months in the past (the same erasure as a register
  ``erasure`` event, under a request id made of its pseudonymous key);
- retention: per-month Redis state and ClickHouse partitions older than
  ``LOYALTY_RETENTION_MONTHS`` are deleted; ``month:*`` keys get an expiry;
- segments: the previous month's build is (re)made, leaving out households banning
  product-data marketing (so a new ban takes effect within a day);
- ClickHouse erasures still pending are run.

``run_rights`` does all of it when due: at the worker's start and then every
``LOYALTY_RIGHTS_INTERVAL_SECONDS`` (default a day), whichever worker holds the leader timer.
The clock is a parameter, so tests drive it instead of waiting two years.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from models.months import Month
from models.register import ErasureRequest
from models.rights import add_months, ended_erasure_due
from models.rules import Rules
from stream.analytics.pseudonym import household_key
from stream.analytics.stage import LinesProcessor
from stream.audit import AuditLog
from stream.bonus.register import erasure_months, register_op
from stream.retry import retry_forever
from stream.settings import Settings
from stream.store.store import Store

log = logging.getLogger(__name__)

#: the window of the worker's monthly segment build, in bonus months
SEGMENT_WINDOW_MONTHS = 3
#: how long the analytics sink keeps dropping late lines of an erased household
ERASED_FILTER_DAYS = 90


@dataclass(slots=True)
class RightsReport:
    ended_erased: int = 0
    clickhouse_erasures: int = 0
    redis_removed: Counter[str] = field(default_factory=Counter)
    partitions_dropped: int = 0
    segments_built: int | None = None
    segments_excluded: int = 0


WORKER_CLIENT = "worker"  # the audit records' client for the worker's own deeds


async def erase_ended(
    settings: Settings,
    store: Store,
    now: datetime,
    audit: AuditLog,
    *,
    months: list[str] | None = None,
) -> int:
    """Erase every ended household whose time has come; returns how many were erased now."""
    key = settings.pseudonym_key.get_secret_value().encode()
    due: list[ErasureRequest] = []
    for household_id, ended_text in await store.ended_households():
        try:
            ended_at = datetime.fromisoformat(ended_text)
        except ValueError:
            log.warning("an ended household has an unreadable ended_at; skipped")
            continue
        if ended_at.tzinfo is None:
            ended_at = ended_at.replace(tzinfo=UTC)
        if ended_erasure_due(ended_at, settings.ended_retention_months, now):
            hk = household_key(key, household_id)
            request_id = f"ended-{hk}-{int(ended_at.timestamp())}"
            due.append(ErasureRequest(request_id, household_id, now))
    if not due:
        return 0
    window = months or erasure_months(now, settings.retention_months)
    ops = [register_op(r, key=key, months=window, now=now) for r in due]
    results = await retry_forever(lambda: store.apply_register(ops), dependency="redis")
    erased = 0
    for request, result in zip(due, results, strict=True):
        if result == "applied":
            erased += 1
            await audit.record(
                action="erasure",
                subject=request.household_id,
                client=WORKER_CLIENT,
                outcome="ok",
                detail="ended customer",
            )
    return erased


async def redis_retention(
    settings: Settings, rules: Rules, store: Store, now: datetime
) -> Counter[str]:
    tz = rules.timezone
    keep_from = Month.of(now, tz).minus(settings.retention_months - 1)

    def expire_at(month: Month) -> int:
        return int(add_months(month.ends_at(tz), settings.retention_months).timestamp())

    return await store.expire_months(keep_from, expire_at=expire_at)


async def run_rights(
    settings: Settings,
    rules: Rules,
    store: Store,
    lines: LinesProcessor,
    audit: AuditLog,
    *,
    now: datetime | None = None,
    force: bool = False,
) -> RightsReport | None:
    """Everything of the module docstring, if due (or ``force``); None when not due."""
    moment = now or datetime.now(UTC)
    stamp = moment.timestamp()
    if not force and not await store.rights_run_due(stamp, settings.rights_interval_seconds):
        return None
    report = RightsReport()
    indexed = await store.build_member_indexes()
    if indexed:
        log.info("indexed %d cards and persons of earlier registrations by household", indexed)
    report.ended_erased = await erase_ended(settings, store, moment, audit)
    report.clickhouse_erasures = await lines.run_erasures(now=stamp)
    report.redis_removed = await redis_retention(settings, rules, store, moment)
    local_today = moment.astimezone(rules.timezone).date()
    dropped = await lines.drop_old_months(local_today, settings.retention_months)
    report.partitions_dropped = len(dropped)
    await audit.record(
        action="retention",
        subject=None,
        client=WORKER_CLIENT,
        outcome="ok",
        detail=f"{sum(report.redis_removed.values())} Redis keys, {len(dropped)} partitions",
    )
    key = settings.pseudonym_key.get_secret_value().encode()
    banned = await store.product_data_banned_households()
    excluded = {household_key(key, h) for h in banned}
    report.segments_excluded = len(excluded)
    as_of = Month.of(moment, rules.timezone).previous().first_day
    tz_name = rules.timezone.key if isinstance(rules.timezone, ZoneInfo) else "UTC"
    report.segments_built = await lines.build_segments(
        as_of, SEGMENT_WINDOW_MONTHS, excluded, tz_name
    )
    await store.prune_erased((moment - timedelta(days=ERASED_FILTER_DAYS)).timestamp())
    await store.rights_run_done(stamp)
    log.info(
        "rights run: %d ended erased, %d ClickHouse erasures, Redis %s, %d partitions "
        "dropped, segments of %s: %s households (%d left out for bans)",
        report.ended_erased,
        report.clickhouse_erasures,
        dict(report.redis_removed),
        report.partitions_dropped,
        f"{as_of:%Y-%m}",
        report.segments_built,
        report.segments_excluded,
    )
    return report
