"""One settings object, built once (from the environment or a ``.env`` file) and passed in."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

DEFAULT_RULES = Path(__file__).with_name("rules.default.toml")
PLACEHOLDER_PSEUDONYM_KEY = "change-me-in-production"
#: the log levels ``--log-level`` and ``LOYALTY_LOG_LEVEL`` take (Faust's names) and their numbers
LOG_LEVELS: dict[str, int] = {"crit": 50, "error": 40, "warn": 30, "info": 20, "debug": 10}
_LOG_LEVEL_ALIASES = {"critical": "crit", "warning": "warn"}  # the standard library's names
MAX_RETENTION_MONTHS = 24  # what the register description promises
PLACEHOLDER_AUDIT_KEY = "change-me-audit-key"


class _FileVariables(PydanticBaseSettingsSource):
    """``LOYALTY_<NAME>_FILE=/run/secrets/x``: the setting's value is that file's content."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        variable = f"LOYALTY_{field_name.upper()}_FILE"
        path = os.environ.get(variable)
        if not path:
            return None, field_name, False
        try:
            return Path(path).read_text(encoding="utf-8").rstrip("\r\n"), field_name, False
        except OSError as exc:
            raise ValueError(f"{variable}={path}: cannot read it ({exc.strerror})") from None

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, info in self.settings_cls.model_fields.items():
            value, key, _ = self.get_field_value(info, name)
            if value is not None:
                values[key] = value
        return values


class Settings(BaseSettings):
    """Contract section 8, plus operational knobs (all ``LOYALTY_*``)."""

    model_config = SettingsConfigDict(
        env_prefix="LOYALTY_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    kafka_url: str = Field(
        "kafka://127.0.0.1:9092", description="Kafka bootstrap server, kafka://host:port"
    )
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0", description="Redis (or Valkey), redis://host:port/db"
    )
    clickhouse_url: str = Field(
        "chdb:///var/lib/loyalty/chdb",
        description="analytics: clickhouse://host:port/db (a server) or chdb:///path (embedded)",
    )
    rules: Path = Field(DEFAULT_RULES, description="path to the bonus rules file (rules.toml)")
    group_id: str = Field("loyalty", description="Kafka consumer group of the stream worker")
    topic_prefix: str = Field("loyalty.", description="prefix of every topic name (loyalty.swipes)")
    pseudonym_key: SecretStr = Field(
        SecretStr(PLACEHOLDER_PSEUDONYM_KEY),
        description="secret key of the ClickHouse household_key pseudonym; set one in production",
    )

    # Operational settings, not in contract v1 (added, nothing broken).
    redis_prefix: str = Field("loyalty:", description="prefix of every Redis key we own")
    swipe_partitions: int = Field(4, ge=1, description="partitions when we create loyalty.swipes")
    batch_size: int = Field(500, ge=1, description="swipes per Redis round trip")
    batch_seconds: float = Field(0.2, gt=0, description="longest wait to fill a batch")
    analytics_batch_size: int = Field(
        50_000, ge=1, description="rows per ClickHouse insert (at most)"
    )
    analytics_batch_seconds: float = Field(
        2.0, gt=0, description="longest wait to fill a ClickHouse insert"
    )
    hold_days: int = Field(35, ge=1, description="how long a swipe of an unknown card is held")
    dedupe_days: int = Field(
        100, ge=1, description="how long after a bonus month its seen event ids are kept"
    )
    retention_months: int = Field(24, ge=1, description="purchase data kept this many months")
    close_day: int = Field(5, ge=1, le=28, description="day of the next month the close runs")
    close_hour: int = Field(3, ge=0, le=23, description="local hour the scheduled close runs")
    worker_metrics_port: int = Field(
        9108, ge=0, le=65535, description="port of the worker's /metrics; 0 disables it"
    )
    metrics_host: str = Field("127.0.0.1", description="address the worker's /metrics binds")
    worker_web_port: int = Field(6066, ge=0, le=65535, description="port of Faust's own web server")
    # Tansu answers JoinGroup after about half the session timeout: shorter means faster start
    # and faster takeover of a dead worker's partitions (see platform notes).
    broker_session_timeout: float = Field(
        10.0, gt=0, description="Kafka consumer session timeout, seconds"
    )
    broker_rebalance_timeout: float = Field(
        20.0, gt=0, description="Kafka consumer group rebalance timeout, seconds"
    )
    api_tokens: SecretStr = Field(
        SecretStr(""), description="comma-separated v1 bearer tokens for /v1 (bonus:read only)"
    )
    log_level: str = Field("info", description="log level: crit, error, warn, info or debug")
    # Register rights (contract section 9).
    ended_retention_months: int = Field(
        24, ge=1, description="an ended household is erased this many months after ended_at"
    )
    retention_allow_longer: bool = Field(
        False, description="allow LOYALTY_RETENTION_MONTHS above 24 (the register promises 24)"
    )
    rights_interval_seconds: float = Field(
        86400.0, gt=0, description="how often the worker runs retention and ended-customer erasure"
    )
    rights_check_seconds: float = Field(
        30.0, gt=0, description="how often the worker checks whether its rights run is due"
    )

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, v: str) -> str:
        level = v.strip().lower()
        level = _LOG_LEVEL_ALIASES.get(level, level)
        if level not in LOG_LEVELS:
            raise ValueError(f"LOYALTY_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {v!r}")
        return level

    @property
    def log_level_number(self) -> int:
        """``log_level`` as a number of the ``logging`` module (Faust and uvicorn take these)."""
        return LOG_LEVELS[self.log_level]

    # Access control and audit (contract section 10; stream.auth, stream.audit).
    api_clients: Path | None = Field(None, description="TOML file of API clients and scopes")
    api_rate_per_second: float = Field(
        50.0, ge=0, description="requests per second per API client (burst 2x); 0 = no limit"
    )
    audit_key: SecretStr = Field(
        SecretStr(PLACEHOLDER_AUDIT_KEY),
        description="secret for the audit records' subject_key (not the pseudonym key)",
    )
    audit_timeout_seconds: float = Field(
        2.0, gt=0, description="longest wait for the broker to take an audit record"
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # LOYALTY_<NAME>_FILE: the value is in that file (Docker secrets); LOYALTY_<NAME> wins.
        return (
            init_settings,
            env_settings,
            _FileVariables(settings_cls),
            dotenv_settings,
            file_secret_settings,
        )

    @field_validator("kafka_url")
    @classmethod
    def _kafka_scheme(cls, v: str) -> str:
        if urlsplit(v).scheme != "kafka":
            raise ValueError(f"LOYALTY_KAFKA_URL must be kafka://host:port, got {v!r}")
        return v

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, v: str) -> str:
        if urlsplit(v).scheme not in {"redis", "rediss", "unix"}:
            raise ValueError(f"LOYALTY_REDIS_URL must be redis://host:port/db, got {v!r}")
        return v

    @field_validator("clickhouse_url")
    @classmethod
    def _clickhouse_scheme(cls, v: str) -> str:
        if urlsplit(v).scheme not in {"clickhouse", "chdb"}:
            raise ValueError(
                "LOYALTY_CLICKHOUSE_URL must be clickhouse://host:port/db or chdb:///path, "
                f"got {v!r}"
            )
        return v

    @model_validator(mode="after")
    def _retention_limit(self) -> Settings:
        if self.retention_months > MAX_RETENTION_MONTHS and not self.retention_allow_longer:
            raise ValueError(
                f"LOYALTY_RETENTION_MONTHS={self.retention_months} is over the register's "
                f"{MAX_RETENTION_MONTHS} months: set LOYALTY_RETENTION_ALLOW_LONGER=true to keep "
                "data longer"
            )
        return self

    @property
    def embedded_clickhouse(self) -> bool:
        return urlsplit(self.clickhouse_url).scheme == "chdb"

    def topic(self, name: str) -> str:
        """Full topic name for a contract name like ``swipes``."""
        return f"{self.topic_prefix}{name}"
