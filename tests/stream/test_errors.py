"""The error tree: one base, and third-party errors mapped to ours with address and setting."""

from __future__ import annotations

import errno
import inspect

import aiokafka.errors
import clickhouse_driver.errors
import pytest
import redis.exceptions

import stream.errors as errors_module
from stream.analytics.segments import NoSegmentsError
from stream.bonus.close import CloseError
from stream.clickhouse.chdb import ChdbBusyError
from stream.clickhouse.engine import ClickHouseError as EngineError
from stream.clickhouse.migrate import MigrationError
from stream.devstack.processes import EmbeddedStackError, ProcessStartError
from stream.errors import (
    ClickHouseError,
    ClickHouseUnavailable,
    DependencyError,
    KafkaUnavailable,
    LoyaltyError,
    RedisUnavailable,
    address_of,
    dependency_error,
    map_exceptions,
)
from stream.settings import Settings

SETTINGS = Settings(
    redis_url="redis://:sekrit@10.1.2.3:6390/2",
    kafka_url="kafka://broker-1:9093",
    clickhouse_url="clickhouse://user:pw@ch.local:9001/db",
)


def test_every_error_class_derives_from_the_base_and_is_drawn_in_the_docstring() -> None:
    doc = errors_module.__doc__ or ""
    classes = [
        cls
        for name, cls in inspect.getmembers(errors_module, inspect.isclass)
        if issubclass(cls, BaseException) and cls.__module__ == errors_module.__name__
    ]
    assert len(classes) >= 15
    for cls in classes:
        assert issubclass(cls, LoyaltyError), cls
        if not cls.__name__.startswith("_"):
            assert cls.__name__ in doc, cls


def test_old_homes_still_export_their_errors() -> None:
    for cls in (
        NoSegmentsError,
        CloseError,
        ChdbBusyError,
        EngineError,
        MigrationError,
        EmbeddedStackError,
        ProcessStartError,
    ):
        assert issubclass(cls, LoyaltyError)
    # The standard bases they had stay, so old ``except`` clauses still match.
    assert issubclass(NoSegmentsError, LookupError)
    assert issubclass(ChdbBusyError, RuntimeError)
    assert issubclass(ProcessStartError, RuntimeError)


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("redis://:sekrit@10.1.2.3:6390/2", "10.1.2.3:6390"),
        ("redis://127.0.0.1:6379/0", "127.0.0.1:6379"),
        ("unix:///run/redis.sock", "/run/redis.sock"),
        ("kafka://a:9092,b:9092", "a:9092,b:9092"),
        ("clickhouse://user:pw@ch.local:9001/db", "ch.local:9001"),
        ("chdb:///var/lib/loyalty/chdb", "/var/lib/loyalty/chdb"),
    ],
)
def test_address_of_drops_credentials(url: str, address: str) -> None:
    assert address_of(url) == address


def test_redis_connection_errors_name_host_port_and_setting() -> None:
    raw = redis.exceptions.ConnectionError("Error 111 connecting to 10.1.2.3:6390.\nRefused.")
    with pytest.raises(RedisUnavailable) as caught, map_exceptions(SETTINGS):
        raise raw
    message = str(caught.value)
    assert "10.1.2.3:6390" in message
    assert "LOYALTY_REDIS_URL" in message
    assert "sekrit" not in message
    assert "\n" not in message
    assert caught.value.__cause__ is raw
    timeout = dependency_error(redis.exceptions.TimeoutError("Timeout reading"), SETTINGS)
    assert isinstance(timeout, RedisUnavailable)


def test_other_redis_errors_are_dependency_errors_but_not_unavailable() -> None:
    mapped = dependency_error(redis.exceptions.ResponseError("WRONGTYPE"), SETTINGS)
    assert isinstance(mapped, DependencyError)
    assert not isinstance(mapped, RedisUnavailable)
    assert "WRONGTYPE" in str(mapped)
    assert "LOYALTY_REDIS_URL" in str(mapped)


def test_kafka_errors() -> None:
    mapped = dependency_error(aiokafka.errors.KafkaConnectionError("no broker"), SETTINGS)
    assert isinstance(mapped, KafkaUnavailable)
    assert "broker-1:9093" in str(mapped)
    assert "LOYALTY_KAFKA_URL" in str(mapped)
    other = dependency_error(aiokafka.errors.UnknownTopicOrPartitionError(), SETTINGS)
    assert isinstance(other, DependencyError)
    assert not isinstance(other, KafkaUnavailable)


def test_clickhouse_driver_errors() -> None:
    mapped = dependency_error(clickhouse_driver.errors.NetworkError("refused"), SETTINGS)
    assert isinstance(mapped, ClickHouseUnavailable)
    assert isinstance(mapped, ClickHouseError)  # old `except ClickHouseError` still catches
    assert "ch.local:9001" in str(mapped)
    assert "LOYALTY_CLICKHOUSE_URL" in str(mapped)
    assert "pw@" not in str(mapped)
    server = dependency_error(clickhouse_driver.errors.ServerException("bad SQL", 62), SETTINGS)
    assert isinstance(server, ClickHouseError)
    assert not isinstance(server, ClickHouseUnavailable)


def test_bare_socket_errors_need_a_service_to_name_one() -> None:
    refused = ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
    named = dependency_error(refused, SETTINGS, service="kafka")
    assert isinstance(named, KafkaUnavailable)
    assert "broker-1:9093" in str(named)
    anonymous = dependency_error(refused, SETTINGS)
    assert isinstance(anonymous, DependencyError)
    assert "LOYALTY_REDIS_URL" in str(anonymous)
    assert "LOYALTY_KAFKA_URL" in str(anonymous)


def test_unrelated_errors_pass_through_unchanged() -> None:
    with pytest.raises(KeyError), map_exceptions(SETTINGS):
        raise KeyError("x")
    assert dependency_error(FileNotFoundError(errno.ENOENT, "nope", "/x"), SETTINGS) is None
    ours = RedisUnavailable("h:1", "down")
    with pytest.raises(RedisUnavailable) as caught, map_exceptions(SETTINGS):
        raise ours
    assert caught.value is ours
