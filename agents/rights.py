"""Timers of the register's rights: ClickHouse erasures, and the daily rights run (ended
customers, retention, segment build), both without any cron (contract section 9)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from stream.app import FaustPublisher
from stream.audit import AuditLog
from stream.bonus.rights import run_rights

if TYPE_CHECKING:
    from stream.app import LoyaltyApp

log = logging.getLogger(__name__)
ERASURE_INTERVAL = 15.0  # seconds: a quiet analytics topic still gets its erasures run


def register(app: LoyaltyApp) -> None:
    settings = app.settings
    audit = AuditLog.from_settings(settings, FaustPublisher(app))

    # Timers never raise: a failed round is logged and the next one tries again.
    @app.timer(interval=ERASURE_INTERVAL, name="erasures")
    async def erasures() -> None:
        try:
            await app.lines_processor().run_erasures()
        except Exception:
            log.exception("ClickHouse erasures failed; next round in %.0f s", ERASURE_INTERVAL)

    # Checked every LOYALTY_RIGHTS_CHECK_SECONDS: the run itself happens at start, then once
    # every LOYALTY_RIGHTS_INTERVAL_SECONDS (a day).
    @app.timer(interval=settings.rights_check_seconds, on_leader=True, name="rights")
    async def rights() -> None:
        try:
            await run_rights(settings, app.rules, app.store, app.lines_processor(), audit)
        except Exception:
            log.exception("rights run failed; retrying in %.0f s", settings.rights_check_seconds)
