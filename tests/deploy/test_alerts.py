"""The alert rules of ``deploy/prometheus/alerts.yml``: valid, loaded, named right, tested.

``promtool check rules`` validates them and ``promtool test rules`` runs their unit tests
(``alerts.test.yml``: each alert fires when it should, with its rendered annotations, and stays
quiet in look-alike cases). Statically: Prometheus loads the file (``rule_files``, mounted by
compose where the config names it), every metric an alert reads is one ``stream.metrics``
defines, every alert has a severity, a summary and a description, and a unit test that makes
it fire. (The live Prometheus of ``tests/dashboards`` loads the rules as well.)
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import Counter, Gauge, Histogram

from stream import metrics

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = REPO / "deploy" / "prometheus"
ALERTS = PROMETHEUS_DIR / "alerts.yml"
ALERT_TESTS = Path(__file__).with_name("alerts.test.yml")
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is not installed (Debian: apt-get install prometheus)"
)
# the alerts the service promises (issue 8): worker down, lag, dead letters, hold, outbox
REQUIRED = {
    "LoyaltyWorkerDown",
    "LoyaltyNoWorker",
    "LoyaltyConsumerLagGrowing",
    "LoyaltyDeadLetters",
    "LoyaltySwipesHeldPastADay",
    "LoyaltyPayoutOutboxNotDraining",
}
SEVERITIES = {"page", "ticket"}


def _rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(ALERTS.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *args], check=False, capture_output=True, text=True, timeout=120
    )


@needs_promtool
def test_promtool_accepts_the_rules() -> None:
    result = _promtool("check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(_rules())} rules found" in result.stdout


@needs_promtool
def test_the_rules_pass_their_unit_tests() -> None:
    result = _promtool("test", "rules", str(ALERT_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_prometheus_loads_the_rules_where_compose_mounts_them() -> None:
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    assert config["rule_files"] == ["alerts.yml"]
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    volumes = compose["services"]["prometheus"]["volumes"]
    config_mount = next(v for v in volumes if v.startswith("./deploy/prometheus/prometheus.yml:"))
    config_dir = config_mount.split(":")[1].rsplit("/", 1)[0]
    assert f"./deploy/prometheus/alerts.yml:{config_dir}/alerts.yml:ro" in volumes


def test_every_required_alert_is_there_with_a_severity_and_text() -> None:
    rules = _rules()
    names = [r["alert"] for r in rules]
    assert len(names) == len(set(names)), names
    assert set(names) >= REQUIRED, sorted(REQUIRED - set(names))
    for rule in rules:
        assert rule["labels"]["severity"] in SEVERITIES, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert len(rule["annotations"]["description"]) >= 60, rule["alert"]


def _defined_metrics() -> set[str]:
    names = {"up"}
    for value in vars(metrics).values():
        if isinstance(value, Counter):
            names.add(f"{value._name}_total")
        elif isinstance(value, Gauge):
            names.add(value._name)
        elif isinstance(value, Histogram):
            names |= {f"{value._name}_{s}" for s in ("bucket", "sum", "count")}
    return names


def test_every_metric_an_alert_reads_is_defined_by_the_service() -> None:
    defined = _defined_metrics()
    for rule in _rules():
        text = rule["expr"] + " ".join(rule["annotations"].values())
        used = set(re.findall(r"\b(loyalty_[a-z0-9_]+|up)\b", text))
        assert used, rule["alert"]
        unknown = used - defined
        assert not unknown, f"{rule['alert']}: {sorted(unknown)} not in stream.metrics"
        for label in re.findall(r"\$labels\.([a-z_]+)", text):
            assert re.search(rf"\b{label}\b", rule["expr"]) or label in {"job", "instance"}, (
                f"{rule['alert']}: the annotation uses {label}, the expression drops it"
            )


def test_every_alert_has_a_unit_test_that_makes_it_fire() -> None:
    doc = yaml.safe_load(ALERT_TESTS.read_text())
    assert [str(PROMETHEUS_DIR / "alerts.yml")] == [
        str((ALERT_TESTS.parent / f).resolve()) for f in doc["rule_files"]
    ]
    fired: set[str] = set()
    quiet: set[str] = set()
    for case in doc["tests"]:
        for check in case["alert_rule_test"]:
            (fired if check["exp_alerts"] else quiet).add(check["alertname"])
    names = {r["alert"] for r in _rules()}
    assert names <= fired, f"never shown firing: {sorted(names - fired)}"
    assert names <= quiet, f"never shown quiet: {sorted(names - quiet)}"
