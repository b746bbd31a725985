"""Pseudonym key rotation on both ClickHouse engines: every household_key re-keyed, segment
membership and every analytics total identical before and after, a repeated run harmless,
and the old key refused afterwards."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest

from stream.analytics.pseudonym import household_key
from stream.analytics.rotation import KeyMismatch, check_key, mapping, rotate, unmapped_keys
from stream.analytics.segments import build_segments
from stream.analytics.sink import PurchaseLineSink
from stream.cli.main import main as cli_main
from stream.clickhouse.connect import connect
from stream.clickhouse.engine import ClickHouse
from stream.clickhouse.migrate import migrate
from stream.store.keys import Keys
from tests.stream.conftest import PSEUDONYM_KEY

NEW_KEY = b"the-new-pseudonym-key-2027"
HOUSEHOLDS = [f"H{n}" for n in range(1, 13)]


def _seed(client: ClickHouse, make_line: Callable[..., dict[str, Any]]) -> None:
    rows = []
    for n, household in enumerate(HOUSEHOLDS):
        for day in range(1, 2 + n % 4):
            for month in ("2026-09", "2026-10", "2026-11"):
                rows.append(
                    make_line(
                        f"E-{household}-{month}-{day}",
                        household=household,
                        occurred_at=f"{month}-{day:02d}T10:00:00Z",
                        amount_cents=1000 * (n + 1) + day,
                        product_group=("fuel", "dairy", "meat")[n % 3],
                        campaign_id="C1" if n % 5 == 0 else "",
                    )
                )
    sink = PurchaseLineSink(client, batch_size=10_000, batch_seconds=1.0)
    sink.write(rows)
    sink.write(rows[:5])  # redelivered
    for month in (date(2026, 10, 1), date(2026, 11, 1)):
        build_segments(client, month, 3)


def _view(client: ClickHouse, key: bytes) -> dict[str, Any]:
    """Everything analytics shows, with each household_key turned back into its household."""
    who = {household_key(key, h): h for h in HOUSEHOLDS}
    lines = client.query(
        "SELECT household_key, month, product_group, count(), sum(amount_cents), "
        "sum(quantity) FROM purchase_lines FINAL GROUP BY household_key, month, product_group"
    )
    segments = client.query(
        "SELECT build_month, months, household_key, segment, spend_cents, visit_days, "
        "recency_days, top_group, top_group_share_bp, campaign_share_bp, fuel "
        "FROM household_segments"
    )
    totals = client.query(
        "SELECT month, co_op, count(), sum(amount_cents), uniqExact(household_key) "
        "FROM purchase_lines FINAL GROUP BY month, co_op ORDER BY month, co_op"
    )
    return {
        "lines": sorted((who[k], *rest) for k, *rest in lines),
        "segments": sorted((b, m, who[k], *rest) for b, m, k, *rest in segments),
        "totals": totals,
    }


@pytest.mark.usefixtures("clickhouse")
def test_rotation_rekeys_everything_and_changes_no_figure(
    clickhouse: ClickHouse, make_line: Callable[..., dict[str, Any]]
) -> None:
    migrate(clickhouse)
    _seed(clickhouse, make_line)
    before = _view(clickhouse, PSEUDONYM_KEY)
    assert len(before["segments"]) >= len(HOUSEHOLDS)  # really built
    check_key(clickhouse, PSEUDONYM_KEY)  # no rotation yet: any key passes

    keys = mapping(HOUSEHOLDS, PSEUDONYM_KEY, NEW_KEY)
    done = rotate(clickhouse, keys, NEW_KEY, chunk=5)  # several chunks
    assert (done.households, done.chunks) == (12, 3)
    after = _view(clickhouse, NEW_KEY)
    assert after == before
    old_keys = clickhouse.query(
        "SELECT count() FROM purchase_lines WHERE has({k:Array(UInt64)}, household_key)",
        {"k": list(keys)},
    )
    assert old_keys == [(0,)]
    assert unmapped_keys(clickhouse, list(keys.values())) == 0

    # a repeated run (say, after a crash) changes nothing
    rotate(clickhouse, keys, NEW_KEY, chunk=5)
    assert _view(clickhouse, NEW_KEY) == before
    # the segments a rebuild makes under the new key are the same too
    for month in (date(2026, 10, 1), date(2026, 11, 1)):
        build_segments(clickhouse, month, 3)
    assert _view(clickhouse, NEW_KEY)["segments"] == before["segments"]

    check_key(clickhouse, NEW_KEY)
    with pytest.raises(KeyMismatch, match="LOYALTY_PSEUDONYM_KEY"):
        check_key(clickhouse, PSEUDONYM_KEY)


def test_the_command_rotates_the_households_redis_knows(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
    redis_client: Any,
    redis_server: Any,
    unique: str,
    make_line: Callable[..., dict[str, Any]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    keys = Keys(f"{unique}:")
    for household in HOUSEHOLDS:
        redis_client.hset(keys.household(household), mapping={"co_op": "hok-elanto"})
    url = f"chdb://{tmp_path / 'chdb'}"
    with connect(url) as client:
        migrate(client)
        _seed(client, make_line)
        before = _view(client, PSEUDONYM_KEY)
    new_key = tmp_path / "new_key"
    new_key.write_text(NEW_KEY.decode() + "\n")
    monkeypatch.chdir(tmp_path)
    for name, value in {
        "REDIS_URL": redis_server.url,
        "REDIS_PREFIX": f"{unique}:",
        "CLICKHOUSE_URL": url,
        "PSEUDONYM_KEY": PSEUDONYM_KEY.decode(),
    }.items():
        monkeypatch.setenv(f"LOYALTY_{name}", value)
    assert cli_main(["pseudonym", "rotate", "--new-key-file", str(new_key)]) == 0
    assert "re-keyed 12 household(s)" in capsys.readouterr().out
    for household in HOUSEHOLDS:  # the key the API reads lines by follows the rotation
        stored = redis_client.hget(keys.household(household), "household_key")
        assert stored == str(household_key(NEW_KEY, household)).encode()
    with connect(url) as client:
        assert _view(client, NEW_KEY) == before
        with pytest.raises(KeyMismatch):
            check_key(client, PSEUDONYM_KEY)
    with pytest.raises(SystemExit, match="LOYALTY_PSEUDONYM_KEY already"):
        monkeypatch.setenv("LOYALTY_PSEUDONYM_KEY", NEW_KEY.decode())
        cli_main(["pseudonym", "rotate", "--new-key-file", str(new_key)])
