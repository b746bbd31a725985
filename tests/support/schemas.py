"""The JSON Schemas under ``schemas/``, loaded as validators the way the docs describe them."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.validators import extend

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "schemas"

#: schema file stem -> the value of the events' ``schema`` field (None: no such field)
EVENT_SCHEMAS = {
    "swipe-1": "swipe/1",
    "register-1": "register/1",
    "payout-1": "payout/1",
    "dead-letter": None,
    "audit-1": "audit/1",
    "member-payment-1": "member-payment/1",
    "subject-access-1": "subject-access/1",
}


def _strict_integer(checker: Any, instance: Any) -> bool:
    # The service reads 398.0 or 1e3 as a number, not an integer (docs/contract.md says so);
    # JSON Schema's own "integer" would accept them.
    return isinstance(instance, int) and not isinstance(instance, bool)


StrictValidator = extend(
    Draft202012Validator,
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine("integer", _strict_integer),
)


@cache
def load(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
    return schema


def validator(name: str) -> Any:
    return StrictValidator(load(name), format_checker=FormatChecker())


def errors(name: str, instance: Any) -> list[str]:
    """Why ``instance`` breaks schema ``name`` (empty: it validates)."""
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
        for e in validator(name).iter_errors(instance)
    ]


def schema_for(instance: Any) -> str:
    """The schema file stem for an event, by its ``schema`` field (dead letters have none)."""
    if isinstance(instance, dict) and "schema" in instance:
        for stem, value in EVENT_SCHEMAS.items():
            if value == instance["schema"]:
                return stem
        raise AssertionError(f"no schema file for {instance['schema']!r}")
    return "dead-letter"
