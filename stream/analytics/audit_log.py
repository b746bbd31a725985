"""``loyalty.audit`` -> ClickHouse ``audit_log`` (migration 006), so that "who read household X
last month" is one query (README, operations dashboard)::

    SELECT client, action, outcome, count() AS accesses, max(at) AS last_at
    FROM audit_log FINAL
    WHERE subject_key = '<loyalty audit subject-key --household X>'
      AND at >= toDateTime(addMonths(toStartOfMonth(today()), -1))
      AND at < toDateTime(toStartOfMonth(today()))
    GROUP BY client, action, outcome
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from stream.audit import ACTIONS, OUTCOMES, SCHEMA
from stream.clickhouse.engine import ClickHouse

TABLE = "audit_log"
COLUMNS = ("audit_id", "at", "client", "action", "subject_key", "outcome", "detail")
_KEY = re.compile(r"^([0-9a-f]{32})?$")
_ID = re.compile(r"^[0-9a-f]{32}$")


def record_to_row(record: Mapping[str, Any]) -> tuple[Any, ...]:
    """One ``audit/1`` record -> a row in ``COLUMNS`` order; ``ValueError`` if it is not one."""
    if record.get("schema") != SCHEMA:
        raise ValueError(f"audit record: schema must be {SCHEMA}, got {record.get('schema')!r}")
    texts: dict[str, str] = {}
    for name in COLUMNS:
        value = record.get(name)
        if name != "at":
            if not isinstance(value, str) or len(value) > 512:
                raise ValueError(f"audit record: {name} must be a string of up to 512 characters")
            texts[name] = value
    if not _ID.match(texts["audit_id"]) or not _KEY.match(texts["subject_key"]):
        raise ValueError("audit record: audit_id and subject_key must be hex digests")
    if texts["action"] not in ACTIONS or texts["outcome"] not in OUTCOMES:
        raise ValueError(f"audit record: unknown action or outcome {texts['action']!r}")
    try:
        at = datetime.fromisoformat(str(record.get("at")))
    except ValueError:
        raise ValueError(f"audit record: bad at {record.get('at')!r}") from None
    if at.tzinfo is None:
        raise ValueError("audit record: at must carry an offset")
    return (
        texts["audit_id"],
        at.astimezone(UTC).replace(microsecond=0),
        texts["client"],
        texts["action"],
        texts["subject_key"],
        texts["outcome"],
        texts["detail"],
    )


def write_audit(client: ClickHouse, records: Iterable[Mapping[str, Any]]) -> int:
    """Insert records (already checked by ``record_to_row``, or raising on the first bad one)."""
    rows = [record_to_row(r) for r in records]
    if rows:
        client.insert(TABLE, COLUMNS, rows)
    return len(rows)
