"""Prometheus metrics: names ``loyalty_<thing>_total`` / ``_seconds``, low-cardinality labels only.

Never label by card, person, household or event id.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable

from prometheus_client import Counter, Gauge, Histogram

BATCH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
LATENCY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0)
SIZE_BUCKETS = (1, 5, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
API_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)

SWIPES = Counter(
    "loyalty_swipes_total",
    "Swipes processed, by kind (purchase/return) and outcome "
    "(applied, duplicate, held, credited, rejected, blocked, expired)",
    ["kind", "outcome"],
)
DEAD_LETTERS = Counter(
    "loyalty_dead_letters_total",
    "Inputs sent to the dead-letter topic, by source and reason",
    ["source", "reason"],
)
REGISTER_EVENTS = Counter(
    "loyalty_register_events_total",
    "Register events, by type and outcome (applied, stale)",
    ["type", "outcome"],
)
HELD_SWIPES = Gauge("loyalty_held_swipes", "Swipes held because their card is not yet known")
HELD_OLDEST_AGE = Gauge(
    "loyalty_held_oldest_age_seconds",
    "Seconds since the longest-waiting unknown card's first swipe was held (0: none held)",
)
BATCH_SIZE = Histogram(
    "loyalty_batch_size", "Events per processed batch, by stage", ["stage"], buckets=SIZE_BUCKETS
)
BATCH_SECONDS = Histogram(
    "loyalty_batch_seconds",
    "Time to process one batch, by stage",
    ["stage"],
    buckets=BATCH_BUCKETS,
)
EVENT_TO_BALANCE_SECONDS = Histogram(
    "loyalty_event_to_balance_seconds",
    "From a swipe's occurred_at to its effect being visible in the balance",
    buckets=LATENCY_BUCKETS,
)
ELIGIBLE_CENTS = Counter(
    "loyalty_eligible_purchases_cents_total",
    "Bonus-eligible purchase cents applied to accumulators, by co-op and kind "
    "(purchase adds, return subtracts: net = purchase - return)",
    ["co_op", "kind"],
)
LINES_WRITTEN = Counter(
    "loyalty_clickhouse_lines_total", "Purchase lines written to ClickHouse", ["engine"]
)
TRANSIENT_ERRORS = Counter(
    "loyalty_transient_errors_total", "Retried faults of a dependency", ["dependency"]
)
CONSUMER_LAG = Gauge(
    "loyalty_consumer_lag",
    "Messages not yet processed, per topic partition",
    ["topic", "partition"],
)
PAYOUTS = Counter(
    "loyalty_payouts_total", "Payout events emitted, by kind (first, adjustment)", ["kind"]
)
PAYOUT_CENTS = Counter(
    "loyalty_payout_cents_total", "Cents in emitted payouts, by destination", ["destination"]
)
API_REQUESTS = Histogram(
    "loyalty_api_request_seconds",
    "API request latency by route template and status",
    ["route", "status"],
    buckets=API_BUCKETS,
)
WORKER_READY = Gauge(
    "loyalty_worker_ready", "1 once the worker has joined its group and got its partitions"
)
PARTITIONS_ASSIGNED = Gauge(
    "loyalty_worker_partitions_assigned", "Topic partitions assigned to this worker"
)
MEMBER_PAYMENTS = Counter(
    "loyalty_member_payments_total",
    "member-payment/1 events emitted, by kind (capital_interest, surplus_refund)",
    ["kind"],
)
MEMBER_PAYMENT_CENTS = Counter(
    "loyalty_member_payment_cents_total", "Cents in emitted member payments, by kind", ["kind"]
)
AUDIT_RECORDS = Counter(
    "loyalty_audit_records_total",
    "Audit records written (contract section 10), by action and outcome",
    ["action", "outcome"],
)
AUDIT_FAILURES = Counter(
    "loyalty_audit_failures_total",
    "Accesses refused because their audit record could not be written",
)
API_REJECTED = Counter(
    "loyalty_api_rejected_total",
    "API requests refused before any data was read, by cause "
    "(unauthorized, forbidden, rate_limited)",
    ["cause"],
)
PAYOUT_OUTBOX_ENTRIES = Gauge(
    "loyalty_payout_outbox_entries",
    "Money events recorded but not yet confirmed sent, by outbox (payout, member_payment)",
    ["outbox"],
)
PAYOUT_OUTBOX_OLDEST_AGE = Gauge(
    "loyalty_payout_outbox_oldest_age_seconds",
    "Seconds since the oldest entry still on the outbox was recorded (0 when empty)",
    ["outbox"],
)


def observe_many(histogram: Histogram, values: Iterable[float]) -> None:
    """``histogram.observe(v)`` for every ``v``, with one increment per bucket instead of a
    Python loop over the buckets per value (the swipe path observes every swipe's latency).

    Uses prometheus-client's per-child internals (``_upper_bounds``, ``_buckets``, ``_sum``:
    the version is pinned; ``tests/stream/test_metrics.py`` compares the exposition with
    ``observe``'s). Only for histograms without labels, or a child from ``.labels(...)``.
    """
    bounds = histogram._upper_bounds
    counts: dict[int, int] = {}
    total = 0.0
    for value in values:
        index = bisect_left(bounds, value)  # the first bound >= value, as ``observe`` picks
        counts[index] = counts.get(index, 0) + 1
        total += value
    if counts:
        histogram._sum.inc(total)
        buckets = histogram._buckets
        for index, n in counts.items():
            buckets[index].inc(n)
