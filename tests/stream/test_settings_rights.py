"""Retention over the register's 24 months is refused unless explicitly allowed."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from stream.settings import Settings


def test_retention_over_24_months_needs_the_explicit_setting() -> None:
    assert Settings(_env_file=None, retention_months=24).retention_months == 24  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="LOYALTY_RETENTION_ALLOW_LONGER"):
        Settings(_env_file=None, retention_months=25)  # type: ignore[call-arg]
    allowed = Settings(_env_file=None, retention_months=36, retention_allow_longer=True)  # type: ignore[call-arg]
    assert allowed.retention_months == 36
