"""The ``loyalty`` command line: help, and errors that name the bad value."""

from __future__ import annotations

import logging
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from stream.cli.main import build_parser, main
from stream.cli.support import load_settings
from stream.errors import SettingsError, UnsafeDataDir
from stream.settings import LOG_LEVELS, Settings


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
        "member-payments",
        "tax-report",
        "partner-settlement",
        "simulate",
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
    assert "LOYALTY_REDIS_URL" in result.stderr and "http://nope" in result.stderr


def test_a_malformed_month_is_named() -> None:
    result = run("close-month", "2026-13")
    assert result.returncode == 1
    assert "2026-13" in result.stderr


def test_the_worker_refuses_the_placeholder_pseudonym_key_for_a_clickhouse_server() -> None:
    result = run("worker", env={"LOYALTY_CLICKHOUSE_URL": "clickhouse://127.0.0.1:9/x"})
    assert result.returncode == 1
    assert "LOYALTY_PSEUDONYM_KEY" in result.stderr


# -- errors a user can read: one line, exit 1, the traceback only with --debug ---------------


def dead_port() -> int:
    """A port nobody listens on (the kernel's pick, released at once)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_explain_with_redis_down_is_one_line_naming_host_port_and_setting() -> None:
    port = dead_port()
    line = one_line_error(
        run("explain", "H1", "2026-10", env={"LOYALTY_REDIS_URL": f"redis://127.0.0.1:{port}/0"})
    )
    assert line.startswith("loyalty explain: error: Redis at ")
    assert f"127.0.0.1:{port}" in line
    assert "LOYALTY_REDIS_URL" in line


def test_debug_shows_the_traceback() -> None:
    port = dead_port()
    result = run(
        "--debug",
        "explain",
        "H1",
        "2026-10",
        env={"LOYALTY_REDIS_URL": f"redis://127.0.0.1:{port}/0"},
    )
    assert result.returncode == 1
    assert "Traceback" in result.stderr
    assert "stream.errors.RedisUnavailable" in result.stderr
    assert "redis.exceptions.ConnectionError" in result.stderr  # the cause is kept


def test_close_month_with_kafka_down_is_one_line() -> None:
    port = dead_port()
    line = one_line_error(
        run(
            "close-month",
            "2026-10",
            env={
                "LOYALTY_KAFKA_URL": f"kafka://127.0.0.1:{port}",
                "LOYALTY_REDIS_URL": f"redis://127.0.0.1:{dead_port()}/0",
            },
        )
    )
    assert f"Kafka broker at 127.0.0.1:{port} is unavailable" in line
    assert "LOYALTY_KAFKA_URL" in line


@pytest.mark.integration
def test_close_month_with_redis_down_is_one_line(kafka: Any, unique: str) -> None:
    port = dead_port()
    line = one_line_error(
        run(
            "close-month",
            "2026-10",
            env={
                "LOYALTY_KAFKA_URL": kafka.url,
                "LOYALTY_TOPIC_PREFIX": f"{unique}.",
                "LOYALTY_REDIS_URL": f"redis://:secret@127.0.0.1:{port}/0",
            },
        )
    )
    assert f"Redis at 127.0.0.1:{port} is unavailable" in line
    assert "LOYALTY_REDIS_URL" in line
    assert "secret" not in line


@pytest.mark.parametrize("where", ["flag", "environment"])
def test_an_unknown_log_level_is_refused_with_the_allowed_ones(where: str) -> None:
    if where == "flag":
        result = run("--log-level", "loud", "explain", "H1", "2026-10")
    else:
        result = run("explain", "H1", "2026-10", env={"LOYALTY_LOG_LEVEL": "loud"})
    line = one_line_error(result)
    assert "LOYALTY_LOG_LEVEL" in line
    assert "'loud'" in line
    assert "crit, error, warn, info, debug" in line
    assert ("--log-level" in line) == (where == "flag")


@pytest.mark.parametrize("level", list(LOG_LEVELS))
def test_every_log_level_the_help_lists_is_accepted(level: str) -> None:
    parser, _ = build_parser()
    assert level in parser.format_help()
    port = dead_port()
    redis_down = {"LOYALTY_REDIS_URL": f"redis://127.0.0.1:{port}/0"}
    by_flag = run("--log-level", level, "explain", "H1", "2026-10", env=redis_down)
    by_env = run("explain", "H1", "2026-10", env={**redis_down, "LOYALTY_LOG_LEVEL": level})
    for result in (by_flag, by_env):
        # The command ran (and met the Redis that is down): the level itself was accepted.
        assert result.returncode == 1
        assert "Traceback" not in result.stderr
        last = result.stderr.strip().splitlines()[-1]  # debug logs come before it
        assert last.startswith("loyalty explain: error: Redis at 127.0.0.1:"), result.stderr
        assert str(port) in last


@pytest.mark.parametrize("level", list(LOG_LEVELS))
def test_faust_and_uvicorn_take_every_level(level: str) -> None:
    from mode.utils.logging import level_number  # noqa: PLC0415

    number = Settings(log_level=level).log_level_number
    assert isinstance(level_number(number), int)  # what faust.Worker(loglevel=...) does
    assert logging.getLevelName(number) in {"CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"}
    assert Settings(log_level=level.upper()).log_level == level


def test_standard_level_names_are_taken_as_faust_names() -> None:
    assert Settings(log_level="warning").log_level == "warn"
    assert Settings(log_level="CRITICAL").log_level == "crit"


def test_a_bad_integer_setting_names_the_variable_and_value() -> None:
    line = one_line_error(run("explain", "H1", "2026-10", env={"LOYALTY_BATCH_SIZE": "many"}))
    assert "LOYALTY_BATCH_SIZE" in line and "'many'" in line


def test_a_secret_setting_is_never_echoed() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(api_tokens=["tok-123"])
    assert "LOYALTY_API_TOKENS" in str(caught.value)
    assert "tok-123" not in str(caught.value)


# -- the demo: the extra it needs, and the directory it wipes --------------------------------


def test_demo_without_its_extra_says_what_to_install(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['chdb'] = None\n"  # as if chdb were not installed
        "from stream.cli.main import main\n"
        f"raise SystemExit(main(['demo', '--data-dir', {str(tmp_path / 'd')!r}]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
        cwd=Path(__file__).resolve().parents[3],
    )
    line = one_line_error(result)
    assert "pip install 'loyalty[demo]'" in line
    assert "chdb" in line
    assert not (tmp_path / "d").exists()


def test_demo_refuses_to_wipe_a_directory_it_did_not_create(tmp_path: Path) -> None:
    precious = tmp_path / "thesis"
    precious.mkdir()
    (precious / "chapter1.txt").write_text("years of work")
    line = one_line_error(run("demo", "--data-dir", str(precious), "--seconds", "1"))
    assert str(precious) in line
    assert "--data-dir" in line
    assert (precious / "chapter1.txt").read_text() == "years of work"


def test_demo_data_dir_is_reused_only_with_its_marker(tmp_path: Path) -> None:
    from stream.devstack.demo import DATA_DIR_MARKER, fresh_data_dir  # noqa: PLC0415

    new = fresh_data_dir(tmp_path / "new" / "demo")  # created, parents too
    assert (new / DATA_DIR_MARKER).is_file()
    (new / "redis").mkdir()
    (new / "redis" / "dump.rdb").write_text("old state")
    again = fresh_data_dir(new)  # ours: wiped and marked again
    assert sorted(p.name for p in again.iterdir()) == [DATA_DIR_MARKER]

    empty = tmp_path / "empty"
    empty.mkdir()
    assert (fresh_data_dir(empty) / DATA_DIR_MARKER).is_file()  # nothing to lose

    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(UnsafeDataDir, match="not a directory"):
        fresh_data_dir(a_file)
    assert a_file.read_text() == "x"


def test_worker_with_kafka_down_is_one_line(tmp_path: Path) -> None:
    port = dead_port()
    line = one_line_error(
        run(
            "worker",
            env={
                "LOYALTY_KAFKA_URL": f"kafka://127.0.0.1:{port}",
                "LOYALTY_CLICKHOUSE_URL": f"chdb://{tmp_path / 'chdb'}",
                "LOYALTY_WORKER_METRICS_PORT": "0",
                "LOYALTY_WORKER_WEB_PORT": "0",
            },
        )
    )
    assert line.startswith(f"loyalty worker: error: Kafka broker at 127.0.0.1:{port}")
    assert "LOYALTY_KAFKA_URL" in line


def test_migrate_with_the_clickhouse_server_down_is_one_line() -> None:
    port = dead_port()
    line = one_line_error(
        run("migrate", env={"LOYALTY_CLICKHOUSE_URL": f"clickhouse://u:pw@127.0.0.1:{port}/x"})
    )
    assert f"ClickHouse at 127.0.0.1:{port} is unavailable" in line
    assert "LOYALTY_CLICKHOUSE_URL" in line
    assert "u:pw" not in line


def test_api_on_a_taken_port_is_one_line_naming_the_flag() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        line = one_line_error(run("api", "--port", str(port)))
    assert line == (
        f"loyalty api: error: port {port} on 127.0.0.1 is already in use "
        "(is another instance running?); set --port to a free port"
    )


def test_ctrl_c_stops_a_command_in_one_line() -> None:
    # A "Redis" that accepts the connection and never answers: explain waits until Ctrl-C.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        proc = subprocess.Popen(
            [sys.executable, "-m", "stream.cli", "explain", "H1", "2026-10"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={"PATH": "/usr/bin:/bin", "LOYALTY_REDIS_URL": f"redis://127.0.0.1:{port}/0"},
            cwd=Path(__file__).resolve().parents[3],
        )
        try:
            conn, _ = silent.accept()  # it connected and now waits for the answer
            with conn:
                time.sleep(0.3)
                proc.send_signal(signal.SIGINT)
                _, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == ["loyalty explain: interrupted"]


def test_an_unreadable_secret_file_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-secret"
    line = one_line_error(
        run("explain", "H1", "2026-10", env={"LOYALTY_PSEUDONYM_KEY_FILE": str(missing)})
    )
    assert f"LOYALTY_PSEUDONYM_KEY_FILE={missing}" in line
    assert "cannot read it" in line


def test_invalid_rules_are_one_line_for_any_command_and_debug_shows_where(tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text("[bonus_tables.default]\ntiers = 7\n")
    line = one_line_error(run("explain", "H1", "2026-10", env={"LOYALTY_RULES": str(rules)}))
    assert line.startswith("loyalty explain: error: invalid rules (LOYALTY_RULES): ")
    assert str(rules) in line
    debug = run("--debug", "explain", "H1", "2026-10", env={"LOYALTY_RULES": str(rules)})
    assert debug.returncode == 1
    assert "Traceback" in debug.stderr and "RulesError" in debug.stderr


def test_debug_and_log_level_work_after_the_command_too(tmp_path: Path) -> None:
    redis_down = {
        "LOYALTY_REDIS_URL": f"redis://127.0.0.1:{dead_port()}/0",
        "LOYALTY_CLICKHOUSE_URL": f"chdb://{tmp_path / 'chdb'}",
    }
    debug = run("explain", "H1", "2026-10", "--debug", env=redis_down)
    assert debug.returncode == 1 and "Traceback" in debug.stderr
    line = one_line_error(run("explain", "H1", "2026-10", "--log-level", "loud", env=redis_down))
    assert "--log-level / LOYALTY_LOG_LEVEL" in line and "'loud'" in line
    nested = run("segments", "export", "x", "--channel", "email", "--debug", env=redis_down)
    assert nested.returncode == 1
    assert "unrecognized arguments" not in nested.stderr and "Traceback" in nested.stderr
