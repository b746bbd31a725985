"""``observe_many`` must expose exactly what ``observe`` per value would (it uses
prometheus-client internals: an upgrade that changes them fails here)."""

from __future__ import annotations

import random

from prometheus_client import CollectorRegistry, Histogram, generate_latest

from stream.metrics import LATENCY_BUCKETS, observe_many


def _exposed(registry: CollectorRegistry) -> list[str]:
    """The exposition less the ``_created`` timestamps (when each histogram was made)."""
    return [
        line for line in generate_latest(registry).decode().splitlines() if "_created" not in line
    ]


def _pair() -> tuple[CollectorRegistry, Histogram, CollectorRegistry, Histogram]:
    one, many = CollectorRegistry(), CollectorRegistry()
    return (
        one,
        Histogram("t_seconds", "t", buckets=LATENCY_BUCKETS, registry=one),
        many,
        Histogram("t_seconds", "t", buckets=LATENCY_BUCKETS, registry=many),
    )


def test_observe_many_equals_observe_per_value() -> None:
    rng = random.Random(7)
    # bounds themselves, just above and below them, zero, beyond the last bound
    values = [b for b in LATENCY_BUCKETS] + [b * 1.000001 for b in LATENCY_BUCKETS]
    values += [0.0, 5000.0] + [rng.expovariate(2.0) for _ in range(1000)]
    one, h1, many, h2 = _pair()
    for v in values:
        h1.observe(v)
    observe_many(h2, values)
    assert _exposed(many) == _exposed(one)
    observe_many(h2, [])  # nothing observed: nothing changes
    assert _exposed(many) == _exposed(one)


def test_observe_many_on_a_labelled_child() -> None:
    one, many = CollectorRegistry(), CollectorRegistry()
    h1 = Histogram("t_seconds", "t", ["stage"], buckets=LATENCY_BUCKETS, registry=one)
    h2 = Histogram("t_seconds", "t", ["stage"], buckets=LATENCY_BUCKETS, registry=many)
    for v in (0.02, 0.3, 7.0):
        h1.labels(stage="a").observe(v)
    observe_many(h2.labels(stage="a"), [0.02, 0.3, 7.0])
    assert _exposed(many) == _exposed(one)
