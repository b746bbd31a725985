"""Fixtures for the whole suite.

Session-scoped services: ``kafka`` (a Tansu broker) and ``redis_server`` (Redis/Valkey with
``appendfsync always``), started once and stopped at the end. They are shared, so every test
isolates itself with ``unique`` (topic prefix, group id) and ``redis_prefix`` (key prefix).
A test that uses either service (directly or through another fixture) is marked
``integration`` automatically: ``pytest -m 'not integration'`` runs only the pure tests.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest

# The repository root on sys.path, so that ``stream``/``models`` and ``tests.support`` import
# whether or not the project is installed into the venv, in either pytest import mode.
# (``pythonpath = ["."]`` in [tool.pytest.ini_options] would make this unnecessary.)
_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import redis  # noqa: E402

from stream.devstack.broker import TansuBroker  # noqa: E402
from stream.devstack.clickhouse_server import ClickHouseServerProcess, find_clickhouse_server  # noqa: E402
from stream.devstack.redis_server import RedisServer  # noqa: E402
from tests.support.processes import CliProcess, RunCli  # noqa: E402
from tests.support.processes import run_cli as _run_cli  # noqa: E402
from tests.support.services import loyalty_env as _loyalty_env  # noqa: E402
from tests.support.services import unique_id  # noqa: E402

INTEGRATION_FIXTURES = frozenset({"kafka", "redis_server"})


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    # pytest-asyncio is not a dependency of this project and not configured (no test is async),
    # but when a venv happens to have it installed, its own pytest_configure warns that
    # ``asyncio_default_fixture_loop_scope`` is unset, which ``filterwarnings = error`` turns
    # into an INTERNALERROR before any test runs. Ignore exactly that third-party warning;
    # this runs first, inside the filter context pytest sets up for the configure hooks.
    warnings.filterwarnings(
        "ignore",
        message=r'The configuration option "asyncio_default_fixture_loop_scope" is unset',
        category=pytest.PytestDeprecationWarning,
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & INTEGRATION_FIXTURES and item.get_closest_marker("integration") is None:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TansuBroker]:
    """A Tansu broker (memory storage) for the whole session; use unique topics and groups."""
    with TansuBroker(tmp_path_factory.mktemp("kafka")) as broker:
        yield broker


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A Redis/Valkey server (AOF, ``appendfsync always``) for the session; prefix your keys."""
    with RedisServer(tmp_path_factory.mktemp("redis"), fsync="always") as server:
        yield server


@pytest.fixture(scope="session")
def clickhouse_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ClickHouseServerProcess]:
    """The Debian ClickHouse server (18.16) for the whole session."""
    if find_clickhouse_server() is None:
        pytest.skip(
            "clickhouse-server is not installed (Debian: apt-get install clickhouse-server; "
            "`make sysdeps` does it)"
        )
    with ClickHouseServerProcess(tmp_path_factory.mktemp("clickhouse-server")) as server:
        yield server


@pytest.fixture
def unique() -> str:
    """A short unique name for this test: ``t`` + 8 hex digits."""
    return unique_id()


@pytest.fixture
def redis_prefix(unique: str) -> str:
    """This test's Redis key prefix (``LOYALTY_REDIS_PREFIX``)."""
    return f"{unique}:"


@pytest.fixture
def redis_client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """A client of the session server (bytes in, bytes out)."""
    client = redis.Redis.from_url(redis_server.url, decode_responses=False)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def loyalty_env(
    kafka: TansuBroker, redis_server: RedisServer, unique: str, tmp_path: Path
) -> dict[str, str]:
    """``LOYALTY_*`` variables for a worker/CLI of this test: the session services, this
    test's topic prefix, group id, Redis prefix, chdb directory and free ports, short timeouts."""
    return _loyalty_env(kafka=kafka, redis=redis_server, unique=unique, data_dir=tmp_path)


@pytest.fixture
def run_cli(tmp_path: Path) -> Iterator[RunCli]:
    """``run_cli(args, env=None, *, name=None, module='stream.cli') -> CliProcess``.

    Logs go to ``tmp_path/<name or cli-N>.log``; every process started is stopped (SIGTERM,
    then SIGKILL) at teardown.
    """
    started: list[CliProcess] = []

    def start(
        args: Sequence[str],
        env: Mapping[str, object] | None = None,
        *,
        name: str | None = None,
        module: str = "stream.cli",
    ) -> CliProcess:
        log_path = tmp_path / f"{name or f'cli-{len(started) + 1}'}.log"
        proc = _run_cli(args, env, log_path=log_path, module=module)
        started.append(proc)
        return proc

    yield start
    for proc in reversed(started):
        proc.terminate_and_wait()
