"""Dead-letter records (contract section 1)."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson


def dead_letter(
    topic: str, key: bytes | None, value: bytes | None, reason: str, detail: str
) -> bytes:
    return orjson.dumps(
        {
            "topic": topic,
            "key": (key or b"").decode("utf-8", errors="replace"),
            "value": (value or b"").decode("utf-8", errors="replace"),
            "reason": reason,
            "detail": detail[:1000],
            "rejected_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        }
    )
