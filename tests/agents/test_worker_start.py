"""Starting the worker: every log level works; a second worker on a taken port says which."""

from __future__ import annotations

from stream.devstack.processes import free_port
from tests.agents.conftest import Deployment
from tests.support import events
from tests.support.processes import RunCli
from tests.support.services import wait_until

CARD = "6390990000000042"


def test_the_worker_runs_at_crit_and_a_second_one_on_its_ports_fails_in_one_line(
    deployment: Deployment, run_cli: RunCli
) -> None:
    # "crit" and "warn" are Faust's names, not the standard library's: the worker at crit
    # level must start and become ready (it did not, once).
    web_port = free_port()
    first = deployment.start_worker(LOYALTY_LOG_LEVEL="crit", LOYALTY_WORKER_WEB_PORT=str(web_port))
    assert first.running

    same_metrics = run_cli(
        ["worker"],
        {**deployment.env, "LOYALTY_WORKER_METRICS_PORT": str(first.port)},
        name="second-worker-metrics",
    )
    assert same_metrics.wait(60) == 1
    log = same_metrics.log_text()
    assert "Traceback" not in log, log
    assert log.strip().splitlines() == [
        f"loyalty worker: error: port {first.port} on 127.0.0.1 is already in use "
        "(is another instance running?); set LOYALTY_WORKER_METRICS_PORT to a free port, "
        "or 0 to disable it"
    ]

    same_web = run_cli(
        ["worker"],
        {
            **deployment.env,
            "LOYALTY_WORKER_METRICS_PORT": str(free_port()),
            "LOYALTY_WORKER_WEB_PORT": str(web_port),
        },
        name="second-worker-web",
    )
    assert same_web.wait(60) == 1
    log = same_web.log_text()
    assert "Traceback" not in log, log
    assert "LOYALTY_WORKER_WEB_PORT" in log and str(web_port) in log
    assert first.running  # the first worker is untouched


def test_the_worker_runs_at_warn(deployment: Deployment) -> None:
    worker = deployment.start_worker(LOYALTY_LOG_LEVEL="warn")
    assert worker.running


def test_the_worker_waits_for_clickhouse_naming_it_without_a_traceback(
    deployment: Deployment,
) -> None:
    port = free_port()  # nobody listens there
    deployment.send("register", [events.household("HC"), events.card(CARD, "HC")])
    deployment.send("swipes", [events.swipe("C-1", CARD)])
    worker = deployment.start_worker(
        LOYALTY_CLICKHOUSE_URL=f"clickhouse://127.0.0.1:{port}/x",
        LOYALTY_PSEUDONYM_KEY="a-test-secret",
    )
    named = f"ClickHouse at 127.0.0.1:{port} is unavailable"
    wait_until(lambda: named in worker.log_tail(200_000), timeout=60, what=named)
    log = worker.log_tail(200_000)
    assert "check that it runs and LOYALTY_CLICKHOUSE_URL" in log
    assert "Traceback" not in log
    assert worker.running  # it waits for ClickHouse, it does not die
