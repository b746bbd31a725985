"""``docker-compose.yml``, the Dockerfile and ``deploy/``, tested without a Docker engine.

What can be checked here is checked for real: the compose file parses and has every service the
service needs; every long-running service has a health check and a restart policy; every image
is pinned; the ``LOYALTY_*`` variables are settings the code reads and, with compose's variable
interpolation done from ``deploy/loyalty.env.example``, build a valid ``Settings``; every
``loyalty`` command is one the real CLI parser accepts; the worker can be scaled; Prometheus
scrapes every worker replica and the API on the ports they listen on; Grafana's provisioning
points at dashboards that exist and at datasources the dashboards use; the topic script creates
the worker's topics; the simulator script sends swipes to a real (Tansu) broker.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from stream.cli.main import build_parser
from stream.devstack.broker import TansuBroker
from stream.kafka.topics import create_topics
from stream.settings import PLACEHOLDER_AUDIT_KEY, PLACEHOLDER_PSEUDONYM_KEY, Settings
from stream.worker import TOPICS
from tests.support.services import consume, unique_id

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / "deploy" / "loyalty.env.example"
PROMETHEUS_CONFIG = REPO / "deploy" / "prometheus" / "prometheus.yml"
DASHBOARDS = REPO / "dashboards"

# services the stack needs, and which of them are one-shot jobs (run to completion)
REQUIRED = {"kafka", "redis", "clickhouse", "worker", "api", "prometheus", "grafana", "simulator"}
ONE_SHOT = {"kafka-init", "clickhouse-migrate"}
#: jobs run by hand (``docker compose run``), in a profile, restarted never
JOBS = {"segments": ["jobs"]}
LONG_RUNNING_RESTART = {"always", "unless-stopped", "on-failure"}
# contract section 8: what a worker and an API must be told
CONTRACT_SETTINGS = {
    "LOYALTY_KAFKA_URL",
    "LOYALTY_REDIS_URL",
    "LOYALTY_CLICKHOUSE_URL",
    "LOYALTY_RULES",
    "LOYALTY_GROUP_ID",
    "LOYALTY_TOPIC_PREFIX",
    "LOYALTY_PSEUDONYM_KEY",
}
_INTERPOLATION = re.compile(
    r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)"
)


def _env_example() -> dict[str, str]:
    values = {}
    for raw_line in ENV_EXAMPLE.read_text().splitlines():
        line = raw_line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def interpolate(value: Any, env: dict[str, str], seen: set[str]) -> Any:
    """Compose's variable interpolation (``$$``, ``$VAR``, ``${VAR}``, ``:-``, ``:?``)."""
    if isinstance(value, dict):
        return {k: interpolate(v, env, seen) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env, seen) for v in value]
    if not isinstance(value, str):
        return value

    def replace(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1) or m.group(4)
        seen.add(name)
        op, arg = m.group(2), m.group(3)
        if name in env and (env[name] or op in (None, "-", "?")):
            return env[name]
        if op in (":-", "-"):
            return arg or ""
        raise AssertionError(f"compose needs ${name} ({arg or 'unset'}), not in {ENV_EXAMPLE.name}")

    return _INTERPOLATION.sub(replace, value)


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict) and isinstance(data.get("services"), dict)
    return data


@pytest.fixture(scope="module")
def services(raw: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services after interpolation with the example secrets."""
    return dict(interpolate(raw["services"], _env_example(), set()))


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def _argv(service: dict[str, Any]) -> list[str]:
    command = service.get("command", [])
    return shlex.split(command) if isinstance(command, str) else [str(c) for c in command]


def _loyalty_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in services.items() if str(s.get("image", "")).startswith("loyalty:")}


def _bind_mounts(service: dict[str, Any]) -> list[tuple[Path, str]]:
    mounts = []
    for volume in service.get("volumes", []):
        source, _, rest = str(volume).partition(":")
        if source.startswith((".", "/")):
            mounts.append(((REPO / source).resolve(), rest.split(":")[0]))
    return mounts


def _host_path(service: dict[str, Any], container_path: str) -> Path | None:
    """The repository path a bind mount of ``service`` puts at ``container_path``."""
    wanted = PurePosixPath(container_path)
    for source, target in _bind_mounts(service):
        target_path = PurePosixPath(target)
        if wanted == target_path:
            return source
        if target_path in wanted.parents:
            return source / wanted.relative_to(target_path)
    return None


# -- structure -------------------------------------------------------------------------------


def test_every_service_the_stack_needs_is_there(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) >= REQUIRED | ONE_SHOT, sorted(REQUIRED | ONE_SHOT - set(services))
    assert services["simulator"].get("profiles") == ["simulator"], "the simulator is optional"
    for name, profiles in JOBS.items():
        assert services[name].get("profiles") == profiles, f"{name} is a job, not started"
    for name, service in services.items():
        if name != "simulator" and name not in JOBS:
            assert not service.get("profiles"), f"{name} must start by default"


def test_every_service_has_a_health_check_and_a_restart_policy(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        restart = str(service.get("restart", ""))
        if name in ONE_SHOT or name in JOBS:
            # run to completion; retried on failure, never restarted after success
            assert restart in {"no", "on-failure"}, f"{name}: restart {restart!r}"
            continue
        assert restart in LONG_RUNNING_RESTART, f"{name}: restart {restart!r}"
        check = service.get("healthcheck", {})
        assert check.get("test") and not check.get("disable"), f"{name} has no health check"
        assert check["test"][0] in {"CMD", "CMD-SHELL"}, f"{name}: {check['test']}"
        for key in ("interval", "timeout", "retries"):
            assert key in check, f"{name}: healthcheck without {key}"


def test_dependencies_wait_for_health_and_for_the_init_jobs(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        for dep, spec in service.get("depends_on", {}).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            condition = spec.get("condition")
            wanted = (
                "service_completed_successfully"
                if dep in ONE_SHOT
                else ("service_healthy", "service_started")
            )
            assert condition in wanted, f"{name} -> {dep}: {condition}"
    worker = services["worker"]["depends_on"]
    assert {"kafka-init", "clickhouse-migrate", "redis"} <= set(worker)
    assert services["kafka-init"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert (
        services["clickhouse-migrate"]["depends_on"]["clickhouse"]["condition"] == "service_healthy"
    )


def test_images_are_pinned(raw: dict[str, Any], services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        image = str(service.get("image", ""))
        assert image, f"{name} has no image"
        repository, _, tag = (
            image.rpartition(":") if ":" in image.rsplit("/", maxsplit=1)[-1] else (image, "", "")
        )
        assert repository and tag, f"{name}: {image!r} has no tag"
        assert tag != "latest" and re.search(r"\d+\.\d+", tag), f"{name}: {image!r} is not pinned"
    assert "latest" not in COMPOSE_FILE.read_text()
    version = re.search(r'^version = "([^"]+)"', (REPO / "pyproject.toml").read_text(), re.M)
    assert version is not None
    for name, service in _loyalty_services(services).items():
        assert service["image"] == f"loyalty:{version.group(1)}", f"{name}: {service['image']}"
        assert service["build"]["context"] == "."


def test_the_worker_can_be_scaled(services: dict[str, dict[str, Any]]) -> None:
    worker = services["worker"]
    assert "container_name" not in worker, "a fixed container name allows one replica"
    assert not worker.get("ports"), "a fixed host port allows one replica"
    assert "hostname" not in worker
    env = _env(worker)
    assert env["LOYALTY_GROUP_ID"], "the replicas share one consumer group"
    init = _env(services["kafka-init"])
    assert int(init["PARTITIONS"]) >= 3, "the swipes topic needs partitions to share"
    assert env["LOYALTY_SWIPE_PARTITIONS"] == init["PARTITIONS"]
    assert init["TOPIC_PREFIX"] == env["LOYALTY_TOPIC_PREFIX"]


def test_kafka_runs_in_kraft_mode_and_redis_with_aof(services: dict[str, dict[str, Any]]) -> None:
    kafka = _env(services["kafka"])
    assert "controller" in kafka["KAFKA_PROCESS_ROLES"] and "broker" in kafka["KAFKA_PROCESS_ROLES"]
    assert "KAFKA_ZOOKEEPER_CONNECT" not in kafka
    assert kafka["KAFKA_ADVERTISED_LISTENERS"] == "PLAINTEXT://kafka:9092"
    redis = " ".join(_argv(services["redis"]))
    assert "--appendonly yes" in redis and "--appendfsync always" in redis
    for name in ("kafka", "redis", "clickhouse", "prometheus", "grafana"):
        assert any(
            ":" in str(v) and not str(v).startswith(".") for v in services[name]["volumes"]
        ), f"{name} keeps its data in a volume"


# -- settings and commands ---------------------------------------------------------------------


def test_loyalty_variables_are_settings_the_code_reads(services: dict[str, dict[str, Any]]) -> None:
    fields = {f"LOYALTY_{name.upper()}" for name in Settings.model_fields}
    fields |= {f"{field}_FILE" for field in fields}  # the value in a (secret) file
    for name, service in services.items():
        unknown = {k for k in _env(service) if k.startswith("LOYALTY_")} - fields
        assert not unknown, f"{name}: {sorted(unknown)} are not fields of stream.settings.Settings"


#: what each service is given, and whom it connects as ("-": it must not get that at all)
GRANTED = {
    "worker": {"redis": "worker", "clickhouse": "loyalty", "pseudonym_key": True},
    "api": {"redis": "api", "clickhouse": "-", "pseudonym_key": False},
    "clickhouse-migrate": {"redis": "-", "clickhouse": "loyalty", "pseudonym_key": False},
    "segments": {"redis": "segments", "clickhouse": "segments", "pseudonym_key": False},
    "simulator": {"redis": "-", "clickhouse": "-", "pseudonym_key": False},
}


@pytest.fixture(scope="module")
def secrets_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The secrets ``deploy/make-secrets.sh`` makes (run for real, into a temporary folder)."""
    folder = tmp_path_factory.mktemp("secrets") / "secrets"
    subprocess.run(["sh", str(REPO / "deploy" / "make-secrets.sh"), str(folder)], check=True)
    return folder


def _settings_of(
    raw: dict[str, Any], service: dict[str, Any], secrets_dir: Path
) -> tuple[Settings, set[str]]:
    """The service's ``Settings``, with each ``LOYALTY_*_FILE`` read from its Docker secret;
    and the names of the settings it was given."""
    values: dict[str, str] = {}
    given: set[str] = set()
    for key, value in _env(service).items():
        if not key.startswith("LOYALTY_"):
            continue
        name = key.removeprefix("LOYALTY_").removesuffix("_FILE").lower()
        given.add(name)
        if key.endswith("_FILE"):
            secret = PurePosixPath(value)
            assert secret.parent == PurePosixPath("/run/secrets"), f"{key}={value}"
            assert secret.name in service.get("secrets", []), f"{key}: {secret.name} not granted"
            assert secret.name in raw["secrets"], f"{secret.name} is not a secret of the stack"
            values[name] = (secrets_dir / secret.name).read_text().strip()
        else:
            values[name] = value
    return Settings(_env_file=None, **values), given  # type: ignore[call-arg]


@pytest.mark.parametrize("name", sorted(GRANTED))
def test_app_environment_builds_valid_settings_with_only_what_it_needs(
    raw: dict[str, Any], services: dict[str, dict[str, Any]], secrets_dir: Path, name: str
) -> None:
    service = services[name]
    settings, given = _settings_of(raw, service, secrets_dir)
    grant = GRANTED[name]
    assert settings.kafka_url == "kafka://kafka:9092"
    assert {"kafka_url", "rules", "group_id", "topic_prefix"} <= given
    if grant["redis"] == "-":
        assert "redis_url" not in given, f"{name} needs no Redis"
    else:
        assert settings.redis_url.startswith(f"redis://{grant['redis']}:")
        assert settings.redis_url.endswith("@redis:6379/0")
    if grant["clickhouse"] == "-":
        assert "clickhouse_url" not in given, f"{name} must not get a ClickHouse URL"
    else:
        assert settings.clickhouse_url.startswith(f"clickhouse://{grant['clickhouse']}:")
        assert settings.clickhouse_url.endswith("@clickhouse:9000/loyalty")
    assert ("pseudonym_key" in given) == grant["pseudonym_key"], f"{name}: pseudonym key"
    if grant["pseudonym_key"]:
        assert settings.pseudonym_key.get_secret_value() != PLACEHOLDER_PSEUDONYM_KEY
    # no secret in the environment itself, where `docker inspect` shows it
    for key, value in _env(service).items():
        assert "://" not in value or "@" not in value, f"{name}: {key} carries a password"
    rules = _host_path(service, str(settings.rules))
    assert rules is not None and rules.is_file(), f"{name}: {settings.rules} is not mounted"


def test_the_api_requires_clients_and_the_worker_metrics_are_reachable(
    raw: dict[str, Any], services: dict[str, dict[str, Any]], secrets_dir: Path
) -> None:
    settings, _ = _settings_of(raw, services["api"], secrets_dir)
    assert str(settings.api_clients) == "/run/secrets/api_clients"
    assert "api_clients" in services["api"]["secrets"]
    assert "--no-auth" not in _argv(services["api"])
    assert settings.audit_key.get_secret_value() != PLACEHOLDER_AUDIT_KEY
    worker = _env(services["worker"])
    assert worker["LOYALTY_METRICS_HOST"] == "0.0.0.0", "Prometheus scrapes from another container"
    assert worker["LOYALTY_WORKER_METRICS_PORT"] in {str(p) for p in services["worker"]["expose"]}


def test_published_ports_listen_on_localhost_only(services: dict[str, dict[str, Any]]) -> None:
    published = 0
    for name, service in services.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} to the world"
            published += 1
    assert published >= 3  # the API, Grafana and Prometheus


def test_secrets_are_files_the_script_makes_and_git_ignores(
    raw: dict[str, Any], secrets_dir: Path
) -> None:
    for name, spec in raw["secrets"].items():
        assert spec["file"] == f"./deploy/secrets/{name}"
        made = secrets_dir / name
        assert made.is_file(), f"deploy/make-secrets.sh does not make {name}"
        # readable inside the containers (bind-mounted as they are, services run as their
        # own users) and not writable there
        assert made.stat().st_mode & 0o444 == 0o444 and not made.stat().st_mode & 0o022
    # on the host, only the folder's owner gets to them
    assert secrets_dir.stat().st_mode & 0o777 == 0o700
    assert "deploy/secrets/" in (REPO / ".gitignore").read_text().splitlines()
    before = {p.name: p.read_bytes() for p in secrets_dir.iterdir()}
    subprocess.run(["sh", str(REPO / "deploy" / "make-secrets.sh"), str(secrets_dir)], check=True)
    assert before == {p.name: p.read_bytes() for p in secrets_dir.iterdir()}, "keys must not change"


def test_every_variable_compose_interpolates_is_in_the_env_example(raw: dict[str, Any]) -> None:
    seen: set[str] = set()
    interpolate(raw, _env_example(), seen)
    assert seen == set(_env_example()), (
        f"used but not documented: {sorted(seen - set(_env_example()))}; "
        f"documented but unused: {sorted(set(_env_example()) - seen)}"
    )


def test_loyalty_commands_are_commands_of_the_cli(services: dict[str, dict[str, Any]]) -> None:
    parser, handlers = build_parser()
    commands = 0
    for name, service in _loyalty_services(services).items():
        argv = _argv(service)
        if argv[0] != "loyalty":
            continue
        try:
            args = parser.parse_args(argv[1:])
        except SystemExit:
            pytest.fail(f"{name}: `{' '.join(argv)}` is not accepted by `loyalty`")
        assert args.command in handlers, name
        commands += 1
    assert commands >= 3
    api = parser.parse_args(_argv(services["api"])[1:])
    assert (api.host, api.port) == ("0.0.0.0", 8080)
    assert any(p.endswith(f":{api.port}") for p in services["api"]["ports"])


def test_dockerfile_installs_the_package_on_a_pinned_python() -> None:
    text = (REPO / "Dockerfile").read_text()
    base = re.findall(r"^FROM\s+(\S+)", text, re.M)
    assert base and all(re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?", b) for b in base), base
    # the locked dependencies, hash-checked, then the package alone on top of them
    lock = re.search(r"^RUN pip install --require-hashes -r (requirements/lock\.txt)$", text, re.M)
    package = re.search(r"^RUN pip install --no-deps \.", text, re.M)
    assert lock and package and lock.start() < package.start(), "install the lock, then ."
    assert re.search(rf"^COPY {lock.group(1)} ", text, re.M)
    assert "[demo]" not in text and "[dev]" not in text, "no extra in the production image"
    assert re.search(r"^USER\s+(?!root|0\b)\S+", text, re.M), "the service does not run as root"
    for package in re.findall(r"^packages = \[(.*)\]", (REPO / "pyproject.toml").read_text(), re.M)[
        0
    ].split(","):
        name = package.strip().strip('"').split(".")[0]  # a subpackage comes with its parent
        assert re.search(rf"^COPY {name} ", text, re.M), f"the image lacks {name}/"
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".git", ".venv", ".env", "tests"} <= set(ignored)


# -- Prometheus ----------------------------------------------------------------------------


def test_prometheus_scrapes_every_worker_replica_and_the_api(
    services: dict[str, dict[str, Any]],
) -> None:
    mounted = _host_path(services["prometheus"], "/etc/prometheus/prometheus.yml")
    assert mounted == PROMETHEUS_CONFIG.resolve()
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    worker_sd = jobs["worker"]["dns_sd_configs"][0]
    assert worker_sd["names"] == ["worker"] and worker_sd["type"] == "A", (
        "DNS discovery on the service name finds every replica"
    )
    assert str(worker_sd["port"]) == _env(services["worker"])["LOYALTY_WORKER_METRICS_PORT"]
    api_port = build_parser()[0].parse_args(_argv(services["api"])[1:]).port
    api_sd = jobs["api"]["dns_sd_configs"][0]
    assert api_sd["names"] == ["api"] and api_sd["port"] == api_port
    assert jobs["api"].get("metrics_path", "/metrics") == "/metrics"


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_accepts_the_prometheus_config() -> None:
    result = subprocess.run(
        ["promtool", "check", "config", str(PROMETHEUS_CONFIG)],
        check=False,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# -- Grafana -------------------------------------------------------------------------------


def _provisioning(services: dict[str, dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    directory = _host_path(services["grafana"], f"/etc/grafana/provisioning/{kind}")
    assert directory is not None and directory.is_dir(), f"no {kind} provisioning mounted"
    files = sorted(directory.glob("*.yml")) + sorted(directory.glob("*.yaml"))
    assert files, f"no {kind} provisioning files in {directory}"
    return [yaml.safe_load(f.read_text()) for f in files]


def test_grafana_provisions_the_dashboards_from_the_repository(
    services: dict[str, dict[str, Any]],
) -> None:
    providers = [p for doc in _provisioning(services, "dashboards") for p in doc["providers"]]
    assert providers
    found = set()
    for provider in providers:
        assert provider["type"] == "file"
        directory = _host_path(services["grafana"], provider["options"]["path"])
        assert directory is not None, f"{provider['options']['path']} is not mounted"
        assert directory == DASHBOARDS.resolve()
        found |= {p.name for p in directory.glob("*.json")}
    assert {"loyalty-business.json", "loyalty-operations.json"} <= found
    home = _env(services["grafana"]).get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
    if home:
        path = _host_path(services["grafana"], home)
        assert path is not None and path.is_file(), home


def test_dashboards_use_provisioned_datasources(services: dict[str, dict[str, Any]]) -> None:
    provisioned = {
        ds["uid"]: ds for doc in _provisioning(services, "datasources") for ds in doc["datasources"]
    }
    used: set[tuple[str, str]] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            ds = node.get("datasource")
            if isinstance(ds, dict) and "uid" in ds:
                used.add((ds.get("type", ""), ds["uid"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for path in DASHBOARDS.glob("*.json"):
        walk(json.loads(path.read_text()))
    assert used
    for ds_type, uid in used:
        assert uid in provisioned, f"datasource uid {uid!r} is not provisioned"
        assert provisioned[uid]["type"] == ds_type, (uid, ds_type)


def test_the_clickhouse_datasource_plugin_and_its_read_only_user(
    services: dict[str, dict[str, Any]],
) -> None:
    grafana = _env(services["grafana"])
    plugins = grafana.get("GF_PLUGINS_PREINSTALL_SYNC", "") + grafana.get("GF_INSTALL_PLUGINS", "")
    assert re.search(r"grafana-clickhouse-datasource[@ ]\d+\.\d+\.\d+", plugins), plugins
    clickhouse = next(
        ds
        for doc in _provisioning(services, "datasources")
        for ds in doc["datasources"]
        if ds["type"] == "grafana-clickhouse-datasource"
    )
    assert clickhouse["jsonData"]["host"] == "clickhouse"
    assert clickhouse["jsonData"]["port"] == 9000 and clickhouse["jsonData"]["protocol"] == "native"
    user = clickhouse["jsonData"]["username"]
    # the password: a Docker secret both containers get; ClickHouse keeps only its SHA-256
    secret = "clickhouse_grafana_password"
    assert clickhouse["secureJsonData"]["password"] == f"$__file{{/run/secrets/{secret}}}"
    assert secret in services["grafana"]["secrets"] and secret in services["clickhouse"]["secrets"]
    assert "CLICKHOUSE_GRAFANA_PASSWORD" not in grafana
    assert grafana["GF_SECURITY_ADMIN_PASSWORD__FILE"] == "/run/secrets/grafana_admin_password"
    template = _host_path(services["clickhouse"], "/opt/loyalty/grafana.xml.template")
    assert template is not None and template.is_file()
    root = ET.parse(template).getroot()
    account = root.find(f"users/{user}")
    assert account is not None
    assert account.findtext("password_sha256_hex") == "@GRAFANA_SHA256@"
    profile = root.find(f"profiles/{account.findtext('profile')}")
    assert profile is not None and profile.findtext("readonly") in {"1", "2"}, "Grafana reads only"
    databases = [d.text for d in account.findall("allow_databases/database")]
    assert databases == [clickhouse["jsonData"]["defaultDatabase"]]


# -- the scripts the stack runs ------------------------------------------------------------


def test_the_topic_script_creates_the_worker_topics(services: dict[str, dict[str, Any]]) -> None:
    init = services["kafka-init"]
    script = _host_path(init, init["entrypoint"][-1])
    assert script is not None and script.is_file()
    text = script.read_text()
    assert sorted(re.findall(r"^create (\S+)", text, re.M)) == sorted(TOPICS)
    assert "--if-not-exists" in text
    assert subprocess.run(["bash", "-n", str(script)], check=False).returncode == 0


def test_the_simulator_script_is_the_one_mounted(services: dict[str, dict[str, Any]]) -> None:
    simulator = services["simulator"]
    argv = _argv(simulator)
    script = _host_path(simulator, argv[1])
    assert script is not None and script.is_file()
    result = subprocess.run(
        [sys.executable, str(script), "--help"],
        check=False,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        cwd=REPO,
    )
    assert result.returncode == 0 and "--rate" in result.stdout, result.stderr
    alive = re.search(r"getmtime\('([^']+)'\)", " ".join(simulator["healthcheck"]["test"]))
    assert alive and alive.group(1) == "/var/lib/loyalty/simulator.alive"


def test_the_simulator_sends_register_events_swipes_and_a_torn_message(
    kafka: TansuBroker, tmp_path: Path
) -> None:
    prefix = f"{unique_id()}."
    create_topics(kafka.bootstrap, {f"{prefix}{t}": 2 for t in TOPICS})
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOYALTY_")} | {
        "LOYALTY_KAFKA_URL": kafka.url,
        "LOYALTY_TOPIC_PREFIX": prefix,
        "PYTHONPATH": str(REPO),
    }
    alive = tmp_path / "alive"
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "deploy" / "simulator" / "simulate.py"),
            *("--rate", "200", "--households", "5", "--seconds", "2", "--alive-file", str(alive)),
        ],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert alive.exists()
    swipes = consume(kafka.bootstrap, f"{prefix}swipes", 250)
    register = consume(kafka.bootstrap, f"{prefix}register", 5)
    assert any(r.value.startswith(b'{"schema":"swipe/1"') for r in swipes)
    assert any(b'"type":"household"' in r.value for r in register)


def test_clickhouse_users_writer_segments_and_grafana_are_separate(
    services: dict[str, dict[str, Any]], secrets_dir: Path, tmp_path: Path
) -> None:
    """The users file the clickhouse service renders (its start script run for real, up to the
    image's entrypoint): the writer has the database, the segment builder reads and writes only
    the segment table, passwords only as SHA-256 of the secrets."""
    template = _host_path(services["clickhouse"], "/opt/loyalty/loyalty-users.xml.template")
    script = _host_path(services["clickhouse"], "/opt/loyalty/users-start.sh")
    assert template is not None and script is not None
    assert services["clickhouse"]["entrypoint"] == ["/bin/bash", "/opt/loyalty/users-start.sh"]
    rendered = tmp_path / "loyalty-users.xml"
    env = {
        "SECRETS_DIR": str(secrets_dir),
        "USERS_TEMPLATE": str(template),
        "USERS_FILE": str(rendered),
        "PATH": "/usr/bin:/bin",
    }
    grafana_rendered = tmp_path / "grafana.xml"
    env |= {
        "GRAFANA_TEMPLATE": str(REPO / "deploy" / "clickhouse" / "users.d" / "grafana.xml"),
        "GRAFANA_FILE": str(grafana_rendered),
    }
    subprocess.run(["bash", str(script)], env=env, check=False, capture_output=True)
    grafana_password = (secrets_dir / "clickhouse_grafana_password").read_text().strip()
    grafana_hash = (
        ET.parse(grafana_rendered).getroot().findtext("users/grafana/password_sha256_hex")
    )
    assert grafana_hash == hashlib.sha256(grafana_password.encode()).hexdigest()
    root = ET.parse(rendered).getroot()
    users = root.find("users")
    assert users is not None
    for name, secret in (
        ("loyalty", "clickhouse_writer_url"),
        ("segments", "clickhouse_segments_url"),
    ):
        url = (secrets_dir / secret).read_text().strip()
        password = url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
        account = users.find(name)
        assert account is not None
        assert (
            account.findtext("password_sha256_hex") == hashlib.sha256(password.encode()).hexdigest()
        )
        assert password not in rendered.read_text()
    grants = {
        name: [q.text for q in users.findall(f"{name}/grants/query")]
        for name in ("loyalty", "segments")
    }
    assert grants["loyalty"] == ["GRANT ALL ON loyalty.*"]
    assert "GRANT SELECT ON loyalty.*" in grants["segments"]
    writes = [g for g in grants["segments"] if "INSERT" in str(g) or "ALTER" in str(g)]
    assert writes == ["GRANT INSERT, ALTER DELETE ON loyalty.household_segments"]
    default_networks = [ip.text for ip in users.findall("default/networks/ip")]
    assert set(default_networks) <= {"::1", "127.0.0.1"}, "the default user stays inside"
    env_names = set(_env(services["clickhouse"]))
    assert "CLICKHOUSE_PASSWORD" not in env_names and "CLICKHOUSE_USER" not in env_names
