"""The service's errors: one tree, so callers (the CLI above all) catch one base class.

Every message is one line a person can act on: what failed, where (host:port, path) and which
``LOYALTY_*`` setting or command-line flag to check. Secrets (passwords in URLs) never appear.

Exception
 └── LoyaltyError                     base of everything below; ``str()`` is the one line
      ├── SettingsError (ValueError)  a LOYALTY_* setting or a flag is invalid; names it
      ├── DependencyError             a service we use failed; ``.service``, ``.address``,
      │    │                          ``.setting`` say which one and where
      │    ├── RedisUnavailable       Redis cannot be reached (LOYALTY_REDIS_URL)
      │    ├── KafkaUnavailable       the Kafka broker cannot be reached (LOYALTY_KAFKA_URL)
      │    └── ClickHouseUnavailable  ClickHouse cannot be reached (LOYALTY_CLICKHOUSE_URL);
      │                               also a ClickHouseError
      ├── ClickHouseError (RuntimeError)  a query failed, or the engine could not be opened
      │    ├── MigrationError         migrations on disk and in schema_migrations disagree
      │    ├── ClickHouseDataError    an insert's data was refused (does not parse or fit, or a
      │    │                          view's check failed): retrying the same data cannot help
      │    └── ChdbBusyError          the chdb directory is open in another process
      ├── CloseError                  a month cannot be closed now (not ended, close running)
      ├── NoSegmentsError (LookupError)  nothing to export: no segments built yet
      ├── PortInUse (OSError)         a port we must bind is taken; names the setting
      ├── UnsafeDataDir               refusing to wipe a directory we did not create
      ├── MissingExtra (ImportError)  an optional extra (``loyalty[demo]``) is not installed
      ├── EmbeddedStackError (RuntimeError)  a local development server failed
      │    └── ProcessStartError      a managed process died or never became ready
      └── ApiError                    an HTTP error answered as {"error": code, "detail": text}

Domain errors (``models.errors``: ``InvalidEvent``, ``RulesError``) stay in ``models``, which
imports nothing of ours; the CLI catches ``RulesError`` next to ``LoyaltyError``.

:func:`map_exceptions` turns third-party errors (redis-py, aiokafka, clickhouse-driver, socket
errors) into ours, naming the service's address and setting (compare httpx's
``map_exceptions``).
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import ClassVar, Protocol
from urllib.parse import urlsplit

__all__ = [
    "CLICKHOUSE_DATA_ERROR_CODES",
    "ApiError",
    "ChdbBusyError",
    "ClickHouseDataError",
    "ClickHouseError",
    "ClickHouseUnavailable",
    "CloseError",
    "DependencyError",
    "EmbeddedStackError",
    "KafkaUnavailable",
    "LoyaltyError",
    "MigrationError",
    "MissingExtra",
    "NoSegmentsError",
    "PortInUse",
    "ProcessStartError",
    "RedisUnavailable",
    "SettingsError",
    "UnsafeDataDir",
    "address_of",
    "check_port_free",
    "dependency_error",
    "map_exceptions",
]


class LoyaltyError(Exception):
    """Base of the service's errors; the message is one line a user can act on."""


class SettingsError(LoyaltyError, ValueError):
    """A ``LOYALTY_*`` setting (or a command-line flag standing for one) is invalid."""


# -- dependencies -------------------------------------------------------------------------


class DependencyError(LoyaltyError):
    """A service we use failed or answered with an error."""

    service: ClassVar[str] = "a dependency"
    setting: ClassVar[str] = ""

    def __init__(self, address: str, reason: str) -> None:
        self.address = address
        self.reason = _one_line(reason)
        super().__init__(self._message())

    def _message(self) -> str:
        where = f" at {self.address}" if self.address else ""
        check = f"; check {self.setting}" if self.setting else ""
        return f"{self.service}{where} failed: {self.reason}{check}"


class _Unavailable(DependencyError):
    def _message(self) -> str:
        where = f" at {self.address}" if self.address else ""
        return (
            f"{self.service}{where} is unavailable ({self.reason}); "
            f"check that it runs and {self.setting}"
        )


class RedisUnavailable(_Unavailable):
    service = "Redis"
    setting = "LOYALTY_REDIS_URL"


class KafkaUnavailable(_Unavailable):
    service = "Kafka broker"
    setting = "LOYALTY_KAFKA_URL"


class _RedisFailed(DependencyError):
    service = "Redis"
    setting = "LOYALTY_REDIS_URL"


class _KafkaFailed(DependencyError):
    service = "Kafka broker"
    setting = "LOYALTY_KAFKA_URL"


class _ConnectionFailed(DependencyError):
    """A connection failed and the code did not say to whom."""

    def _message(self) -> str:
        return (
            f"a connection failed ({self.reason}); check that Redis, Kafka and ClickHouse run "
            "and LOYALTY_REDIS_URL, LOYALTY_KAFKA_URL, LOYALTY_CLICKHOUSE_URL"
        )


class ClickHouseError(LoyaltyError, RuntimeError):
    """A query failed, or the engine could not be reached or opened."""


class ClickHouseUnavailable(_Unavailable, ClickHouseError):
    service = "ClickHouse"
    setting = "LOYALTY_CLICKHOUSE_URL"


class ClickHouseDataError(ClickHouseError):
    """ClickHouse refused the data of an insert: a value does not parse or fit its column, or
    a check of a materialized view failed. Not a fault of ClickHouse (which answered): the same
    data fails again, so it is not retried; the caller isolates and dead-letters it."""


#: ClickHouse error codes that mean "the data is bad" (both engines): parse errors of the
#: input format, values out of range, array sizes that differ (ARRAY JOIN), a view's check.
CLICKHOUSE_DATA_ERROR_CODES = frozenset(
    {
        6,  # CANNOT_PARSE_TEXT (also our views' checks: toUInt8('purchase line: ...'))
        25,  # CANNOT_PARSE_ESCAPE_SEQUENCE
        26,  # CANNOT_PARSE_QUOTED_STRING
        27,  # CANNOT_PARSE_INPUT_ASSERTION_FAILED
        32,  # ATTEMPT_TO_READ_AFTER_EOF
        33,  # CANNOT_READ_ALL_DATA
        38,  # CANNOT_PARSE_DATE
        41,  # CANNOT_PARSE_DATETIME
        53,  # TYPE_MISMATCH
        69,  # ARGUMENT_OUT_OF_BOUND (a decimal too large)
        70,  # CANNOT_CONVERT_TYPE
        72,  # CANNOT_PARSE_NUMBER
        117,  # INCORRECT_DATA
        130,  # CANNOT_READ_ARRAY_FROM_TEXT
        131,  # TOO_LARGE_STRING_SIZE
        190,  # SIZES_OF_ARRAYS_DOESNT_MATCH
        321,  # VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
        395,  # FUNCTION_THROW_IF_VALUE_IS_NON_ZERO
        407,  # DECIMAL_OVERFLOW
    }
)


class MigrationError(ClickHouseError):
    """The migrations on disk and those recorded in ``schema_migrations`` disagree."""


class ChdbBusyError(ClickHouseError):
    """The chdb directory is open in another process (only one may have it)."""


# -- the service's own refusals -----------------------------------------------------------


class CloseError(LoyaltyError):
    """The month cannot be closed now (not ended, or another close is running)."""


class NoSegmentsError(LoyaltyError, LookupError):
    """Nothing to export: no segments have been built."""


class PortInUse(LoyaltyError, OSError):
    """A port we must bind is taken (often: the same service runs twice on this host)."""

    def __init__(self, host: str, port: int, setting: str, *, zero_disables: bool = True) -> None:
        self.host, self.port, self.setting = host, port, setting
        disable = ", or 0 to disable it" if zero_disables else ""
        super().__init__(
            f"port {port} on {host} is already in use (is another instance running?); "
            f"set {setting} to a free port{disable}"
        )

    def __str__(self) -> str:
        return str(self.args[0])


class UnsafeDataDir(LoyaltyError):
    """A directory we would wipe was not created by us."""


class MissingExtra(LoyaltyError, ImportError):
    """An optional part needs packages that are not installed."""

    def __init__(self, what: str, extra: str, missing: str) -> None:
        self.extra = extra
        super().__init__(
            f"{what} needs the {extra!r} extra ({missing} is not installed): "
            f"pip install 'loyalty[{extra}]'"
        )

    def __str__(self) -> str:
        return str(self.args[0])


class EmbeddedStackError(LoyaltyError, RuntimeError):
    """A local server of the development stack could not be started or used."""


class ProcessStartError(EmbeddedStackError):
    """A managed process died before it was ready, or never became ready in time."""


class ApiError(LoyaltyError):
    """An HTTP error the API answers as ``{"error": code, "detail": text}``."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


def check_port_free(host: str, port: int, setting: str, *, zero_disables: bool = True) -> None:
    """Raise :class:`PortInUse` if ``host:port`` cannot be bound now (someone listens on it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # As servers bind (SO_REUSEADDR): a port in TIME_WAIT is free, a listener's is not.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUse(host, port, setting, zero_disables=zero_disables) from exc
            # Anything else (a privileged port, an address not ours) the server reports itself.


# -- mapping third-party errors -----------------------------------------------------------


class DependencyUrls(Protocol):
    """Where the dependencies are (``Settings`` has these)."""

    @property
    def redis_url(self) -> str: ...
    @property
    def kafka_url(self) -> str: ...
    @property
    def clickhouse_url(self) -> str: ...


def address_of(url: str) -> str:
    """``host:port`` (or the path of a unix socket or chdb directory) of ``url``, no secrets.

    >>> address_of("redis://:secret@10.0.0.5:6380/0")
    '10.0.0.5:6380'
    >>> address_of("kafka://a:9092,b:9092")
    'a:9092,b:9092'
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    if parts.scheme in {"unix", "chdb"} or not parts.netloc:
        return parts.path
    netloc = parts.netloc.rpartition("@")[2]  # drop user:password
    return netloc


_CONNECTION_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.ETIMEDOUT,
        errno.EPIPE,
    }
)


def _one_line(text: str) -> str:
    return " ".join(text.split()) or "no detail"


def _reason(exc: BaseException) -> str:
    return _one_line(str(exc)) if str(exc) else type(exc).__name__


def dependency_error(
    exc: BaseException, urls: DependencyUrls | None = None, *, service: str | None = None
) -> LoyaltyError | None:
    """Our error for a third-party ``exc``, or None if it is not a dependency's failure.

    ``service`` (``"redis"``, ``"kafka"``, ``"clickhouse"``) names whom a bare socket error
    (``ConnectionRefusedError``, ``TimeoutError``) came from; without it such an error is
    reported against no particular service.
    """
    if isinstance(exc, LoyaltyError):
        return exc

    def where(kind: str) -> str:
        if urls is None:
            return ""
        return address_of(getattr(urls, f"{kind}_url"))

    module = type(exc).__module__ or ""
    if module.startswith("redis"):
        import redis.exceptions  # noqa: PLC0415 (only when something failed)

        if isinstance(exc, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
            return RedisUnavailable(where("redis"), _reason(exc))
        if isinstance(exc, redis.exceptions.RedisError):
            return _RedisFailed(where("redis"), _reason(exc))
    if module.startswith(("aiokafka", "kafka")):
        import aiokafka.errors  # noqa: PLC0415

        unavailable = (
            aiokafka.errors.KafkaConnectionError,
            aiokafka.errors.KafkaTimeoutError,
            aiokafka.errors.NodeNotReadyError,
            aiokafka.errors.RequestTimedOutError,
        )
        if isinstance(exc, unavailable):
            return KafkaUnavailable(where("kafka"), _reason(exc))
        if isinstance(exc, aiokafka.errors.KafkaError):
            return _KafkaFailed(where("kafka"), _reason(exc))
    if module.startswith("clickhouse_driver"):
        import clickhouse_driver.errors  # noqa: PLC0415

        if isinstance(
            exc, clickhouse_driver.errors.NetworkError | clickhouse_driver.errors.SocketTimeoutError
        ):
            return ClickHouseUnavailable(where("clickhouse"), _reason(exc))
        if getattr(exc, "code", None) in CLICKHOUSE_DATA_ERROR_CODES:
            return ClickHouseDataError(f"ClickHouse at {where('clickhouse')}: {_reason(exc)}")
        if isinstance(exc, clickhouse_driver.errors.Error):
            return ClickHouseError(f"ClickHouse at {where('clickhouse')}: {_reason(exc)}")
    if isinstance(exc, OSError) and (
        isinstance(exc, ConnectionError | TimeoutError) or exc.errno in _CONNECTION_ERRNOS
    ):
        unavailable_of: dict[str, type[_Unavailable]] = {
            "redis": RedisUnavailable,
            "kafka": KafkaUnavailable,
            "clickhouse": ClickHouseUnavailable,
        }
        if service in unavailable_of:
            return unavailable_of[service](where(service), _reason(exc))
        return _ConnectionFailed("", _reason(exc))
    return None


@contextmanager
def map_exceptions(
    urls: DependencyUrls | None = None, *, service: str | None = None
) -> Iterator[None]:
    """Re-raise third-party dependency errors inside the block as ours (the cause is kept).

    >>> with map_exceptions(settings):              # doctest: +SKIP
    ...     asyncio.run(close(settings))            # Redis down -> RedisUnavailable
    """
    try:
        yield
    except Exception as exc:
        mapped = dependency_error(exc, urls, service=service)
        if mapped is None or mapped is exc:
            raise
        raise mapped from exc
