"""Every PromQL expression of the dashboards, evaluated by a real Prometheus.

Static part (always runs): every metric an expression names is one ``stream.metrics`` defines,
every label it uses is one of that metric's labels, and every ``job`` it selects is a job of
``deploy/prometheus/prometheus.yml``.

Live part (needs Debian's ``prometheus`` binary, skipped without it): a real worker and API on
the session's Kafka (Tansu) and Redis get traffic from the checkout simulator (register
events, swipes, a torn message for the dead letters, a swipe of an unknown card to hold, API
requests with 200, 400 and 404 answers); Prometheus scrapes both every second with the job
names of the deploy config; then each expression, with Grafana's interval variables
substituted, must return at least one series, with the labels its legend uses.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import Counter, Gauge, Histogram

from stream import metrics
from stream.devstack.broker import TansuBroker
from stream.devstack.processes import ManagedProcess, free_port
from stream.devstack.redis_server import RedisServer
from stream.devstack.services import ApiProcess, WorkerProcess
from stream.devstack.simulator import Simulator
from stream.kafka.publisher import KafkaPublisher
from tests.dashboards.grafana_json import (
    PROMETHEUS_TYPE,
    REPO_ROOT,
    Query,
    all_queries,
    render_promql,
)
from tests.support.services import loyalty_env, unique_id

PROMETHEUS_CONFIG = REPO_ROOT / "deploy" / "prometheus" / "prometheus.yml"
PROM_QUERIES = all_queries(PROMETHEUS_TYPE)
PROMETHEUS = shutil.which("prometheus")
# PromQL words that look like metric names
PROMQL_WORDS = frozenset(
    [
        "sum",
        "avg",
        "min",
        "max",
        "count",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "rate",
        "irate",
        "increase",
        "histogram_quantile",
        "vector",
        "or",
        "and",
        "unless",
        "bool",
        "offset",
        "topk",
        "bottomk",
        "abs",
        "clamp_min",
        "clamp_max",
        "time",
        "scalar",
        "label_replace",
        "label_join",
        "delta",
        "deriv",
        "idelta",
        "absent",
        "sort",
        "sort_desc",
    ]
)
ALWAYS_LABELS = frozenset({"job", "instance"})


def _metric_samples() -> dict[str, set[str]]:
    """Sample name -> its label names, for every metric of ``stream.metrics``."""
    samples: dict[str, set[str]] = {}
    for value in vars(metrics).values():
        if not isinstance(value, Counter | Gauge | Histogram):
            continue
        name = value._name  # prometheus_client strips _total from counters
        labels = set(value._labelnames)
        if isinstance(value, Counter):
            samples[f"{name}_total"] = labels
        elif isinstance(value, Gauge):
            samples[name] = labels
        else:
            samples[f"{name}_bucket"] = labels | {"le"}
            samples[f"{name}_sum"] = labels
            samples[f"{name}_count"] = labels
    samples["up"] = set()
    return samples


def _job_names() -> set[str]:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    return {job["job_name"] for job in config["scrape_configs"]}


def test_there_are_promql_expressions() -> None:
    assert len(PROM_QUERIES) >= 15


@pytest.mark.parametrize("query", PROM_QUERIES, ids=lambda q: q.name)
def test_expression_names_existing_metrics_labels_and_jobs(query: Query) -> None:
    known = _metric_samples()
    expr = render_promql(query)
    bare = re.sub(r'"[^"]*"', '""', expr)  # no string literals
    bare = re.sub(r"\[[^\]]*\]", "", bare)  # no range selectors ([5m])
    words = set(re.findall(r"(?<![0-9.])[A-Za-z_:][A-Za-z0-9_:]*", bare))
    names = {w for w in words if w.startswith("loyalty_") or w == "up"}
    unknown = names - known.keys()
    assert not unknown, f"{query.name}: no such metric {sorted(unknown)} in stream.metrics"
    assert names, f"{query.name}: names no metric"
    allowed = set().union(*(known[n] for n in names)) | ALWAYS_LABELS
    used = set(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)\s*\"", expr))
    for clause in re.findall(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)", expr):
        used |= {label.strip() for label in clause.split(",") if label.strip()}
    assert used <= allowed, f"{query.name}: labels {sorted(used - allowed)} not on {sorted(names)}"
    assert query.legend_labels() <= allowed, f"{query.name}: legend {query.legend_labels()}"
    jobs = set()
    for op, value in re.findall(r'\bjob\s*(=~|=)\s*"([^"]*)"', expr):
        jobs |= set(value.split("|")) if op == "=~" else {value}
    assert jobs <= _job_names(), f"{query.name}: jobs {jobs - _job_names()} are not scraped"
    leftovers = words - names - PROMQL_WORDS - allowed
    assert not leftovers, f"{query.name}: unexpected words {sorted(leftovers)}"


# -- the live part ---------------------------------------------------------------------------


class PrometheusProcess(ManagedProcess):
    """Debian's Prometheus on 127.0.0.1:``port``; ready when ``/-/ready`` answers 200."""

    name = "prometheus"

    def __init__(self, data_dir: Path, config: dict[str, Any]) -> None:
        super().__init__(data_dir, startup_timeout=30.0, stop_timeout=10.0)
        self.config = config

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def command(self) -> list[str]:
        assert PROMETHEUS is not None
        config = self.data_dir / "prometheus.yml"
        config.write_text(yaml.safe_dump(self.config))
        return [
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={self.data_dir / 'tsdb'}",
            f"--web.listen-address={self.host}:{self.port}",
            "--log.level=warn",
        ]

    def is_ready(self, timeout: float) -> bool:
        with urllib.request.urlopen(f"{self.url}/-/ready", timeout=timeout) as response:
            return bool(response.status == 200)

    def api(self, path: str, **params: str) -> Any:
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as response:
            body = json.loads(response.read())
        assert body["status"] == "success", body
        return body["data"]


def scrape_config(worker_port: int, api_port: int, own_port: int) -> dict[str, Any]:
    """deploy/prometheus/prometheus.yml with its jobs pointed at local processes, 1 s scrapes."""
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    config["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    # the alert rules too, from the repository (a relative path would be read next to the
    # written config): a rule Prometheus cannot load stops it from starting
    config["rule_files"] = [str(PROMETHEUS_CONFIG.parent / r) for r in config["rule_files"]]
    targets = {"worker": worker_port, "api": api_port, "prometheus": own_port}
    for job in config["scrape_configs"]:
        port = targets.pop(job["job_name"])
        for key in ("dns_sd_configs", "static_configs", "file_sd_configs"):
            job.pop(key, None)
        job["static_configs"] = [{"targets": [f"127.0.0.1:{port}"]}]
    assert not targets, f"deploy config lacks jobs {targets}"
    return config


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def _send_traffic(env: dict[str, str], sim: Simulator) -> None:
    prefix = env["LOYALTY_TOPIC_PREFIX"]
    now = datetime.now(UTC)

    async def run() -> None:
        async with KafkaPublisher(env["LOYALTY_KAFKA_URL"]) as publisher:
            for key, value in sim.register_events(now):
                await publisher.send(f"{prefix}register", key, value)
            await publisher.flush()
            for _ in range(300):
                await publisher.send(f"{prefix}swipes", *sim.swipe(now))
            key, value = sim.swipe(now)
            await publisher.send(f"{prefix}swipes", key, value[:-7])  # torn: a dead letter
            await publisher.send(f"{prefix}swipes", *sim.swipe(now, card="6390990000000001"))

    asyncio.run(run())


Evaluate = Callable[[Query], list[dict[str, Any]]]


@pytest.fixture(scope="module")
def evaluate(
    kafka: TansuBroker, redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Evaluate]:
    """Worker + API with traffic, scraped by Prometheus; evaluates a dashboard query now."""
    if PROMETHEUS is None:
        pytest.skip("prometheus is not installed (Debian: apt-get install prometheus)")
    tmp = tmp_path_factory.mktemp("promql")
    env = {
        **loyalty_env(kafka=kafka, redis=redis_server, unique=unique_id(), data_dir=tmp),
        "LOYALTY_WORKER_WEB_PORT": "0",
        "LOYALTY_BATCH_SECONDS": "0.1",
    }
    worker = WorkerProcess(tmp / "worker", env, free_port())
    api = ApiProcess(tmp / "api", env, free_port())
    prometheus: PrometheusProcess | None = None
    try:
        worker.start()
        api.start()
        prometheus = PrometheusProcess(tmp / "prometheus", {})
        prometheus.config = scrape_config(worker.port, api.port, prometheus.port)
        prometheus.start()

        sim = Simulator(households=20, seed=5)
        _send_traffic(env, sim)
        hid = sim.households[0].household_id
        deadline = time.monotonic() + 30
        while _get(f"{api.base_url}/v1/households/{hid}/bonus") != 200:
            assert time.monotonic() < deadline, f"no balance for {hid}:\n{worker.log_tail()}"
            time.sleep(0.2)
        for hh in sim.households[:10]:
            assert _get(f"{api.base_url}/v1/households/{hh.household_id}/bonus") in {200, 404}
            assert _get(f"{api.base_url}/v1/cards/{hh.cards[0]}/bonus") in {200, 404}
        assert _get(f"{api.base_url}/v1/households/NOBODY/bonus") == 404
        assert _get(f"{api.base_url}/v1/cards/12/bonus") == 400

        def run(query: Query) -> list[dict[str, Any]]:
            assert prometheus is not None
            data = prometheus.api("query", query=render_promql(query))
            return list(data["result"]) if data["resultType"] == "vector" else [data["result"]]

        def scraped() -> bool:
            """Both targets up, each scraped a few times (rate() needs two samples)."""
            assert prometheus is not None
            up = {
                t["labels"]["job"]
                for t in prometheus.api("targets")["activeTargets"]
                if t["health"] == "up"
            }
            counts = prometheus.api("query", query="count_over_time(up[1m])")["result"]
            return up >= {"worker", "api"} and all(float(c["value"][1]) >= 3 for c in counts)

        # The worker's gauges are set by a 10 s timer: wait until every query has a series
        # (or give up, and let the tests below say which have none).
        deadline = time.monotonic() + 30
        pending = list(PROM_QUERIES)
        while time.monotonic() < deadline:
            if scraped():
                pending = [q for q in pending if not run(q)]
                if not pending:
                    break
            time.sleep(1)
        run.prometheus = prometheus  # type: ignore[attr-defined]  # for the alert rules' test
        yield run
    finally:
        for proc in (prometheus, api, worker):
            if proc is not None:
                proc.stop()


@pytest.mark.prometheus
@pytest.mark.skipif(
    PROMETHEUS is None, reason="prometheus is not installed (apt-get install prometheus)"
)
@pytest.mark.parametrize("query", PROM_QUERIES, ids=lambda q: q.name)
def test_expression_returns_a_series(evaluate: Evaluate, query: Query) -> None:
    result = evaluate(query)
    assert result, f"{query.name}: no series for {render_promql(query)}"
    for series in result:
        labels = set(series.get("metric", {}))
        missing = query.legend_labels() - labels
        assert not missing, f"{query.name}: legend labels {missing} not in {series['metric']}"


@pytest.mark.prometheus
@pytest.mark.skipif(
    PROMETHEUS is None, reason="prometheus is not installed (apt-get install prometheus)"
)
def test_the_alert_rules_evaluate_on_the_live_metrics(evaluate: Evaluate) -> None:
    """Prometheus loaded deploy/prometheus/alerts.yml and evaluates every rule without error
    on the real worker's and API's metrics; with both up and traffic flowing, the alerts that
    only an outage raises stay quiet."""
    prometheus: PrometheusProcess = evaluate.prometheus  # type: ignore[attr-defined]
    wanted = {
        rule["alert"]
        for group in yaml.safe_load((PROMETHEUS_CONFIG.parent / "alerts.yml").read_text())["groups"]
        for rule in group["rules"]
    }
    deadline = time.monotonic() + 20
    while True:
        rules = [r for g in prometheus.api("rules")["groups"] for r in g["rules"]]
        evaluated = {r["name"] for r in rules if r.get("lastEvaluation", "").startswith("20")}
        if evaluated >= wanted or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert {r["name"] for r in rules} == wanted
    for rule in rules:
        assert rule["health"] == "ok", f"{rule['name']}: {rule.get('lastError')}"
        assert rule["name"] in evaluated, f"{rule['name']} was never evaluated"
    firing = {r["name"] for r in rules if r["state"] != "inactive"}
    assert not firing & {"LoyaltyWorkerDown", "LoyaltyNoWorker", "LoyaltyApiDown"}, firing
