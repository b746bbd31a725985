"""The worker's garbage-collector tuning (``stream.worker.tune_gc``)."""

from __future__ import annotations

import gc

from stream.worker import GC_THRESHOLDS, tune_gc


def test_tune_gc_freezes_what_is_alive_and_collects_less_often() -> None:
    before = gc.get_threshold()
    try:
        tune_gc()
        assert gc.get_threshold() == GC_THRESHOLDS
        assert gc.get_freeze_count() > 0  # start-up objects are out of the scans
        cycle: list[object] = []
        cycle.append(cycle)  # a cycle made after start-up is still collectable
        del cycle
        assert gc.collect() >= 1
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
