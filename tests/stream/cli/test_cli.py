"""The ``loyalty`` command line: help, and errors that name the bad value."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from stream.cli.main import build_parser, main


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stream.cli", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
        cwd=Path(__file__).resolve().parents[3],
    )


def test_help_lists_every_command() -> None:
    parser, handlers = build_parser()
    text = parser.format_help()
    for command in (
        "worker",
        "api",
        "demo",
        "close-month",
        "explain",
        "migrate",
        "segments",
        "retention",
    ):
        assert command in handlers
        assert command in text


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: loyalty" in capsys.readouterr().out


def test_invalid_rules_stop_the_worker_before_it_starts(tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(
        "[bonus_tables.default]\ntiers = [ { from_cents = 5000, bp = 100 },\n"
        "          { from_cents = 4000, bp = 150 } ]\n"
    )
    result = run("worker", env={"LOYALTY_RULES": str(rules)})
    assert result.returncode == 1
    assert f"{rules}:3:" in result.stderr and "from_cents = 4000" in result.stderr


def test_invalid_settings_name_the_variable() -> None:
    result = run("close-month", "2026-10", env={"LOYALTY_REDIS_URL": "http://nope"})
    assert result.returncode == 1
    assert "redis_url" in result.stderr and "http://nope" in result.stderr


def test_a_malformed_month_is_named() -> None:
    result = run("close-month", "2026-13")
    assert result.returncode == 1
    assert "2026-13" in result.stderr


def test_the_worker_refuses_the_placeholder_pseudonym_key_for_a_clickhouse_server() -> None:
    result = run("worker", env={"LOYALTY_CLICKHOUSE_URL": "clickhouse://127.0.0.1:9/x"})
    assert result.returncode == 1
    assert "LOYALTY_PSEUDONYM_KEY" in result.stderr
