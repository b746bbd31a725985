"""ClickHouse fixtures: ``clickhouse`` runs a test on both engines, each in its own database.

- ``chdb``: the embedded engine, one data directory for the whole session (a process can have
  only one chdb directory open). The session is closed after every test, so tests elsewhere
  that open their own chdb directory are not blocked by ours.
- ``server``: the Debian ``clickhouse-server`` (18.16), started once per session on free ports
  on 127.0.0.1 and stopped at the end; skipped when the binary is not installed.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from stream.analytics.pseudonym import household_key
from stream.clickhouse.connect import connect
from stream.clickhouse.engine import ClickHouse
from stream.devstack.clickhouse_server import ClickHouseServerProcess

PSEUDONYM_KEY = b"test-pseudonym-key"


@pytest.fixture(scope="session")
def chdb_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("chdb") / "data"


def _engine_url(request: pytest.FixtureRequest, engine: str, database: str) -> str:
    if engine == "server":
        server: ClickHouseServerProcess = request.getfixturevalue("clickhouse_server")
        return server.url_for(database)
    path: Path = request.getfixturevalue("chdb_path")
    return f"chdb://{path}?database={database}"


@pytest.fixture(
    params=[
        pytest.param("chdb", id="chdb"),
        pytest.param(
            "server", id="server", marks=[pytest.mark.integration, pytest.mark.clickhouse_server]
        ),
    ]
)
def clickhouse(request: pytest.FixtureRequest) -> Iterator[ClickHouse]:
    """A client on a fresh database of its own (dropped afterwards), on each engine."""
    database = f"t_{uuid.uuid4().hex[:12]}"
    client = connect(_engine_url(request, request.param, database))
    try:
        yield client
    finally:
        try:
            client.execute(f"DROP DATABASE IF EXISTS {database}")
        finally:
            client.close()


# -- purchase lines for tests -------------------------------------------------------------


@pytest.fixture
def pseudonym_key() -> bytes:
    return PSEUDONYM_KEY


@pytest.fixture
def make_line() -> Callable[..., dict[str, Any]]:
    """``make_line(event_id, household="H1", ...)``: a purchase-lines row (see ``_line``)."""
    return _line


def _line(
    event_id: str,
    *,
    household: str = "H1",
    line_no: int = 0,
    occurred_at: str = "2026-11-10T10:00:00Z",
    month: str | None = None,
    store_id: str = "S1",
    product_group: str = "dairy",
    amount_cents: int = 1000,
    quantity: str = "1",
    fuel_ml: int = 0,
    kind: str = "purchase",
    campaign_id: str = "",
    payment_method: str = "s_etukortti_visa",
    bonus_eligible: int = 1,
    sku: str = "SKU1",
    co_op: str = "hok-elanto",
) -> dict[str, Any]:
    """One row as it travels on ``loyalty.purchase-lines`` (returns already negative there)."""
    return {
        "event_id": event_id,
        "line_no": line_no,
        "occurred_at": occurred_at,
        "month": month or f"{occurred_at[:7]}-01",
        "store_id": store_id,
        "household_key": household_key(PSEUDONYM_KEY, household),
        "co_op": co_op,
        "sku": sku,
        "product_group": product_group,
        "quantity": quantity,
        "amount_cents": amount_cents,
        "fuel_ml": fuel_ml,
        "payment_method": payment_method,
        "bonus_eligible": bonus_eligible,
        "kind": kind,
        "campaign_id": campaign_id,
    }
