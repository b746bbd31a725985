"""The pseudonymous household key stored in ClickHouse instead of the household id (contract §7)."""

from __future__ import annotations

import hashlib
import hmac


def household_key(key: bytes, household_id: str) -> int:
    """HMAC-SHA256(``key``, ``household_id``), first 8 bytes big-endian, as a UInt64."""
    digest = hmac.new(key, household_id.encode("utf-8"), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big")
