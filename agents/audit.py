"""Audit: ``audit/1`` records from ``loyalty.audit`` into ClickHouse ``audit_log``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agents._batches import batch_agent

if TYPE_CHECKING:
    from stream.app import LoyaltyApp


def register(app: LoyaltyApp) -> None:
    settings = app.settings
    batch_agent(
        app,
        app.topic_names.audit,
        "audit",
        lambda: app.lines_processor().process_audit,
        size=settings.batch_size,
        within=settings.analytics_batch_seconds,
    )
