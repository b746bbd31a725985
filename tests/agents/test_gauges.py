"""The worker's gauges timer: the payout outbox gauges that the alert rules watch."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from models.rules import load_rules
from stream.bonus.housekeeping import months_due
from stream.store.keys import Keys
from tests.agents.conftest import Deployment
from tests.support.services import metric, wait_until


def test_the_worker_reports_what_waits_on_the_payout_outbox(deployment: Deployment) -> None:
    keys = Keys(deployment.env["LOYALTY_REDIS_PREFIX"])
    # Keep the worker's scheduled close (which would send the outbox) out of the way.
    now = datetime.now(UTC)
    settings = deployment.settings
    for due in months_due(now, load_rules(settings.rules), settings):
        deployment.redis.set(keys.month_scheduled(str(due), now.strftime("%Y-%m")), "x")
    # Two payouts recorded by a close that died before sending them, the older an hour ago.
    deployment.redis.zadd(
        keys.outbox(), {"HG:2026-10:1": time.time() - 3600, "HG:2026-10:2": time.time()}
    )
    worker = deployment.start_worker()
    entries = 'loyalty_payout_outbox_entries{outbox="payout"}'
    wait_until(lambda: metric(worker.metrics_url, entries) == 2, timeout=60, what=entries)
    age = metric(worker.metrics_url, 'loyalty_payout_outbox_oldest_age_seconds{outbox="payout"}')
    assert 3600 <= age < 3600 + 120
    assert metric(worker.metrics_url, 'loyalty_payout_outbox_entries{outbox="member_payment"}') == 0

    deployment.redis.zrem(keys.outbox(), "HG:2026-10:1", "HG:2026-10:2")  # sent after all
    wait_until(lambda: metric(worker.metrics_url, entries) == 0, timeout=30, what="drained")
