"""The JSON Schemas under schemas/ and the contract in docs/contract.md, against the code.

- every JSON example in docs/contract.md validates against its schema;
- every event the service's own code builds validates;
- every input the parsers' own tests feed them is judged alike by the parser and the schema,
  or rejected for a reason listed below as a rule the schema cannot express;
- every dead-letter reason code the code emits is in the table below and in docs/contract.md.
"""

from __future__ import annotations

import ast
import asyncio
import base64
import json
import os
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from models.bonus import BonusFigures
from models.member_payment import CapitalLedger, plan_member_payments
from models.payout import PaidSoFar, plan_payout
from models.rules import CoOpYear
from models.swipe import MAX_QUANTITY
from stream.audit import AuditLog
from stream.cli.main import build_parser
from stream.kafka.deadletters import dead_letter
from tests.support import events
from tests.support.schemas import EVENT_SCHEMAS, ROOT, SCHEMAS, errors, load, schema_for

CONTRACT = ROOT / "docs" / "contract.md"
#: the parsers' own tests, whose every input is judged by the schemas too
PARSER_TESTS = sorted(
    p.relative_to(ROOT).as_posix()
    for pattern in ("test_swipe*.py", "test_register*.py")
    for p in (ROOT / "tests" / "models").glob(pattern)
)

SCHEMA = "schema"  # the JSON Schema rejects every such input too
RULE = "rule"  # a rule the schema cannot express, listed under "Rules beyond the schemas"

#: Every dead-letter reason code, and what checks it. A new code must be added here (and to
#: docs/contract.md): the test below finds every code the service emits.
REASONS = {
    "oversize": RULE,
    "invalid_json": RULE,
    "not_an_object": SCHEMA,
    "unsupported_schema": SCHEMA,
    "missing_field": SCHEMA,
    "invalid_field": SCHEMA,
    "unknown_enum": SCHEMA,
    "unsupported_currency": SCHEMA,
    "invalid_lines": SCHEMA,
    "total_mismatch": RULE,
    "card_blocked": RULE,
    "card_expired": RULE,
    "card_unknown": RULE,
    "unknown_partner": RULE,
    "internal_error": RULE,
    "store_error": RULE,
    "invalid_rows": RULE,
}
#: In the contract, not yet emitted by the code (docs/contract.md marks them planned).
PLANNED: set[str] = set()


# --- the schema files ----------------------------------------------------------------------


def test_every_schema_file_is_a_valid_draft_2020_12_schema() -> None:
    stems = {p.name.removesuffix(".schema.json") for p in SCHEMAS.glob("*.schema.json")}
    assert stems == set(EVENT_SCHEMAS)
    for stem in stems:
        Draft202012Validator.check_schema(load(stem))
        if EVENT_SCHEMAS[stem] is not None:
            assert load(stem)["properties"]["schema"] == {"const": EVENT_SCHEMAS[stem]}


# --- examples in the docs ------------------------------------------------------------------

_BLOCK = re.compile(r"(?:<!-- schema: ([^\s>]+)[^>]*-->\n)?```json\n(.*?)```", re.DOTALL)


def contract_examples() -> list[tuple[str | None, Any]]:
    """(schema stem named before the block, value) for every JSON value in a ```json block."""
    found = []
    decoder = json.JSONDecoder()
    for match in _BLOCK.finditer(CONTRACT.read_text(encoding="utf-8")):
        text, pos = match.group(2), 0
        while text[pos:].strip():
            pos += len(text[pos:]) - len(text[pos:].lstrip())
            value, pos = decoder.raw_decode(text, pos)
            found.append((match.group(1), value))
    return found


def test_every_json_example_in_the_contract_validates_against_its_schema() -> None:
    examples = contract_examples()
    assert len(examples) >= 10
    covered = set()
    for named, value in examples:
        assert named is not None, f"a ```json block without <!-- schema: NAME -->: {value}"
        if named == "none":
            continue
        assert named == schema_for(value), f"block marked {named} holds {value}"
        assert errors(named, value) == [], value
        covered.add(named)
    assert covered == set(EVENT_SCHEMAS), "every schema has an example in docs/contract.md"


def test_a_broken_example_would_be_caught() -> None:
    for named, value in contract_examples():
        if named in {None, "none", "subject-access-1"}:
            continue
        for field in list(value)[:3]:
            broken = {k: v for k, v in value.items() if k != field}
            assert errors(named, broken), f"{named} without {field} still validates"


# --- what the code builds ------------------------------------------------------------------


def test_the_test_builders_events_validate() -> None:
    built = [
        json.loads(events.CONTRACT_EXAMPLE),
        events.swipe("E-1"),
        events.swipe("E-2", kind="return", original_event_id="E-1"),
        events.swipe("E-4", partner_id="P-FUEL"),
        events.swipe(
            "E-3",
            lines=[
                {
                    "sku": "F",
                    "product_group": "fuel",
                    "quantity": 1.5,
                    "amount_cents": 9,
                    "fuel_ml": 7,
                }
            ],
        ),
        events.household("H1", capital_required_cents=10000),
        events.household("H2", business=True, status="ended", ended_at="2026-11-30T12:00:00Z"),
        events.card("6390001234567890", "H1"),
        events.card("6390001234567891", "H1", status="blocked"),
        events.capital_payment("CP-1", "H1", 2500),
    ]
    for value in built:
        assert errors(schema_for(value), value) == [], value


def _figures(total: int) -> BonusFigures:
    return BonusFigures(
        purchases_cents=41250,
        tier_bp=250,
        base_bonus_cents=total - 127,
        fuel_bonus_cents=26,
        payment_benefit_cents=101,
    )


def test_payouts_of_models_payout_validate() -> None:
    first = plan_payout(
        household_id="H100234",
        month="2026-11",
        co_op="hok-elanto",
        figures=_figures(1110),
        paid=PaidSoFar(),
        closed_before=False,
        capital_remaining_cents=500,
        payout_account="FI2112345600000785",
    )
    assert first is not None
    lower = plan_payout(
        household_id="H100234",
        month="2026-11",
        co_op="hok-elanto",
        figures=_figures(1100),
        paid=PaidSoFar(seq=1, base_bonus_cents=983, fuel_bonus_cents=26, payment_benefit_cents=101),
        closed_before=True,
        capital_remaining_cents=0,
        payout_account="",
    )
    assert lower is not None and lower.adjustment and lower.total_cents == -10
    for payout in (first, lower):
        assert errors("payout-1", payout.to_json()) == []
    # and the schema is not a rubber stamp: a zero total or a float amount breaks it
    assert errors("payout-1", first.to_json() | {"total_cents": 0})
    assert errors("payout-1", first.to_json() | {"to_capital_cents": 500.0})


def test_a_subject_access_document_never_carries_the_pseudonym() -> None:
    lines = [{"event_id": "E-1", "line_no": 0, "amount_cents": 398}]
    document = {"schema": "subject-access/1", "purchase_lines": lines}
    assert errors("subject-access-1", document) == []
    leaked = {"schema": "subject-access/1", "purchase_lines": [lines[0] | {"household_key": 7}]}
    assert errors("subject-access-1", leaked)
    assert errors("subject-access-1", {"schema": "subject-access/2"})


class _Captured:
    """An ``AuditWriter`` that keeps the records it is handed (the shape is what is tested)."""

    def __init__(self) -> None:
        self.values: list[bytes] = []

    async def write(self, topic: str, key: bytes, value: bytes) -> None:
        self.values.append(value)

    async def close(self) -> None:
        return None


def test_audit_records_of_stream_audit_validate() -> None:
    writer = _Captured()
    audit = AuditLog(writer, b"audit-key", "loyalty.audit")

    async def write_some() -> None:
        await audit.record(
            action="bonus_read", subject="H100234", client="app", outcome="ok", detail="m"
        )
        await audit.record(
            action="subject_access", subject="card:6390001", client="x", outcome="not_found"
        )
        await audit.record(action="retention", subject=None, client="worker", outcome="ok")

    asyncio.run(write_some())
    assert len(writer.values) == 3
    for value in writer.values:
        record = json.loads(value)
        assert errors("audit-1", record) == [], record
        assert "H100234" not in value.decode()
    assert errors("audit-1", json.loads(writer.values[0]) | {"action": "peek"})


def test_member_payments_of_models_member_payment_validate() -> None:
    payments = plan_member_payments(
        household_id="H100234",
        year=2026,
        co_op="hok-elanto",
        rates=CoOpYear(capital_interest_bp=300, surplus_refund_bp=100),
        ledger=CapitalLedger(10000, {2026: 10000}),
        monthly_purchases_cents=[41250] * 12,
        business=False,
        payout_account="FI2112345600000785",
    )
    assert [p.kind for p in payments] == ["capital_interest", "surplus_refund"]
    for payment in payments:
        assert errors("member-payment-1", payment.to_json()) == []
    assert errors("member-payment-1", payments[0].to_json() | {"kind": "dividend"})
    assert errors("member-payment-1", payments[0].to_json() | {"amount_cents": 0})


@pytest.mark.parametrize("value", [b'{"schema": "swipe/1"}', b"\xff\xfe broken", None])
def test_dead_letters_of_the_code_validate(value: bytes | None) -> None:
    letter = json.loads(dead_letter("loyalty.swipes", b"63900", value, "invalid_json", "x" * 5000))
    assert errors("dead-letter", letter) == []
    assert errors("dead-letter", letter | {"reason": "Not A Code"})


# --- dead-letter reason codes --------------------------------------------------------------


def _constant(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def emitted_reasons() -> dict[str, list[str]]:
    """Every reason code written as a literal where the code rejects an input: the first
    argument of ``InvalidEvent``, the reason of ``dead_letter`` / ``_reject`` calls, and the
    ``reason`` label of the dead-letter counter."""
    found: dict[str, list[str]] = {}
    for package in ("models", "stream", "agents"):
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call):
                    continue
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                candidates: list[ast.AST | None] = []
                if name == "InvalidEvent" and node.args:
                    candidates.append(node.args[0])
                if name == "dead_letter" and len(node.args) >= 4:
                    candidates.append(node.args[3])
                if name in {"_reject", "reject"} and len(node.args) >= 2:
                    candidates.append(node.args[1])
                candidates += [k.value for k in node.keywords if k.arg == "reason"]
                for candidate in candidates:
                    code = _constant(candidate)
                    if code is not None:
                        where = f"{path.relative_to(ROOT)}:{node.lineno}"
                        found.setdefault(code, []).append(where)
    return found


def test_every_reason_the_code_emits_is_in_the_table() -> None:
    emitted = emitted_reasons()
    # the scan finds what is known to be there
    assert {"invalid_field", "card_blocked", "card_unknown", "invalid_rows"} <= set(emitted)
    new = {code: where for code, where in emitted.items() if code not in REASONS}
    assert new == {}, (
        "new dead-letter reason code(s): add them to REASONS in tests/docs/test_schemas.py and "
        "to the reason table of docs/contract.md (as schema-checked or as a rule)"
    )
    assert set(REASONS) - set(emitted) <= PLANNED, "a code in the table that nothing emits"


def _section(text: str, heading: str) -> str:
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    return text[start : end if end > 0 else len(text)]


def test_every_reason_is_documented_with_how_it_is_checked() -> None:
    text = CONTRACT.read_text(encoding="utf-8")
    table = _section(text, "## Dead letters and reason codes")
    rules = _section(text, "## Rules beyond the schemas")
    rows = dict(re.findall(r"^\| `([a-z_]+)` \|.*\| (schema|rule) \|$", table, re.MULTILINE))
    assert rows == REASONS, "docs/contract.md's reason table differs from REASONS"
    for code, how in REASONS.items():
        if how == RULE:
            assert f"`{code}`" in rules, (
                f"{code} is a rule but not under 'Rules beyond the schemas'"
            )
        if code in PLANNED:
            assert re.search(rf"`{code}`[^\n]*\*planned\*", table), f"{code}: mark it planned"
    examples = load("dead-letter")["properties"]["reason"]["examples"]
    assert sorted(examples) == sorted(REASONS)


def _record_parses(tmp_path: Path) -> list[dict[str, Any]]:
    """Run the parsers' own tests with a recorder; every input they fed the parsers."""
    out = tmp_path / "parses.jsonl"
    env = {**os.environ, "LOYALTY_RECORD_PARSES": str(out), "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "tests.docs.record_rejections",
            "-p",
            "no:cacheprovider",
            "--hypothesis-seed=0",  # the same random cases every run
            *PARSER_TESTS,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return [json.loads(line) for line in out.read_text().splitlines()]


def _lines(value: Any) -> list[dict[str, Any]]:
    lines = value.get("lines") if isinstance(value, dict) else None
    return [line for line in lines if isinstance(line, dict)] if isinstance(lines, list) else []


def _quantity_rounding(value: Any) -> bool:
    """A quantity on the other side of 0 or of the maximum once kept to 3 decimals."""
    for line in _lines(value):
        q = line.get("quantity")
        if isinstance(q, int | float) and not isinstance(q, bool):
            exact = Decimal(str(q))
            kept = exact.quantize(Decimal("0.001"))
            if (0 < exact <= MAX_QUANTITY) != (0 < kept <= MAX_QUANTITY):
                return True
    return False


def _not_printable(value: Any) -> bool:
    """Text the schema's pattern lets through that Unicode does not call printable."""
    return any(
        isinstance(line.get(name), str) and not line[name].isprintable()
        for line in _lines(value)
        for name in ("sku", "product_group")
    )


#: Rules under a schema-checked reason that the schema cannot express: where the schema and
#: the service disagree on an input, one of these must explain it. Each is in docs/contract.md
#: under "Rules beyond the schemas" by the name given here.
NARROWER_RULES = {
    "Quantities keep 3 decimals": _quantity_rounding,
    "Printable text": _not_printable,
}


def _judge(kind: str, raw: bytes, reason: str | None) -> str | None:
    """None if parser and schema agree on ``raw`` (or a rule explains it), else why not."""
    stem = "swipe-1" if kind == "swipe" else "register-1"
    if reason is not None and REASONS.get(reason) == RULE:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return f"{reason}: the schema cannot judge what is not JSON: {raw[:120]!r}"
    found = errors(stem, value)
    if (reason is None) == (not found):
        return None
    if any(applies(value) for applies in NARROWER_RULES.values()):
        return None
    if reason is None:
        return f"accepted by the service, rejected by {stem}: {found[:2]} in {raw[:200]!r}"
    return f"rejected as {reason} by the service, accepted by {stem}: {raw[:200]!r}"


def test_the_narrower_rules_are_documented_and_apply_where_they_say() -> None:
    rules = _section(CONTRACT.read_text(encoding="utf-8"), "## Rules beyond the schemas")
    for name in NARROWER_RULES:
        assert f"**{name}**" in rules, name
    line = {"sku": "X", "product_group": "dairy", "amount_cents": 1}
    assert _quantity_rounding({"lines": [line | {"quantity": 0.0004}]})
    assert _quantity_rounding({"lines": [line | {"quantity": 1000000.0004}]})
    assert not _quantity_rounding({"lines": [line | {"quantity": 0.0006}]})
    assert _not_printable({"lines": [line | {"sku": "a\u200bb"}]})
    assert not _not_printable({"lines": [line | {"sku": "Maito 1,5 % ä"}]})


def test_every_case_of_the_parsers_tests_is_judged_alike_by_the_schema(tmp_path: Path) -> None:
    parses = _record_parses(tmp_path)
    reasons = {p["reason"] for p in parses}
    # the recorder saw the tests' cases: accepted ones and every schema-checked reason
    assert None in reasons
    assert {c for c, how in REASONS.items() if how == SCHEMA} <= reasons
    assert len(parses) > 300
    unknown = reasons - set(REASONS) - {None}
    assert unknown == set(), "reason codes of the parsers' tests missing from REASONS"
    problems = [
        problem
        for p in parses
        if (problem := _judge(p["kind"], base64.b64decode(p["raw"]), p["reason"])) is not None
    ]
    assert problems == []


def _pipeline_bad_kinds() -> list[tuple[str, bytes]]:
    """The malformed inputs of the pipeline's dead-letter test, evaluated from its source."""
    path = ROOT / "tests" / "agents" / "test_swipes.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", "") == "bad_kinds":
            good = events.swipe("G-0", "6390000000000007")
            code = compile(ast.Expression(node.value), str(path), "eval")  # type: ignore[arg-type]
            kinds: list[tuple[str, bytes]] = eval(code, {"events": events, "good": good})
            return kinds
    raise AssertionError("bad_kinds not found in tests/agents/test_swipes.py: update this test")


def test_every_case_of_the_pipelines_dead_letter_test_is_judged_alike() -> None:
    kinds = _pipeline_bad_kinds()
    assert len(kinds) >= 10
    for reason, raw in kinds:
        assert reason in REASONS
        assert _judge("swipe", raw, reason) is None


def test_the_judge_catches_a_disagreement() -> None:
    good = events.encode(events.swipe("J-1"))
    assert _judge("swipe", good, None) is None
    assert _judge("swipe", good, "invalid_field") is not None
    bad = events.encode({**events.swipe("J-2"), "kind": "refund"})
    assert _judge("swipe", bad, "unknown_enum") is None
    assert _judge("swipe", bad, None) is not None
    assert (
        _judge("swipe", events.encode({**events.swipe("J-3"), "total_cents": 1}), "total_mismatch")
        is None
    )


# --- no way out of the repository -----------------------------------------------------------


def test_readme_and_docs_point_only_inside_the_repository() -> None:
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = path.read_text(encoding="utf-8")
        assert "../shared" not in text and "shared/contracts" not in text, path
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
            if re.match(r"[a-z]+:", target):
                continue
            assert (path.parent / target).resolve().is_relative_to(ROOT), (path, target)
            assert (path.parent / target).exists(), (path, target)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for target in ("docs/contract.md", "schemas/", "docs/settings.md"):
        assert f"]({target})" in readme, target


# --- HTTP errors ---------------------------------------------------------------------------


def _status(node: ast.AST | None) -> int | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, int) and 400 <= node.value <= 599:
        return node.value
    return None


def answered_errors() -> set[tuple[int, str]]:
    """(status, code) of every JSON error the API code answers with a literal code."""
    found: set[tuple[int, str]] = set()
    for path in [ROOT / "stream" / "api.py", *sorted((ROOT / "stream").glob("auth*.py"))]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            pairs: list[tuple[ast.AST | None, ast.AST | None]] = []
            if isinstance(node, ast.Call) and len(node.args) >= 2:
                pairs.append((node.args[0], node.args[1]))
            if isinstance(node, ast.Dict):  # {404: "not_found", ...}: status -> code
                pairs += list(zip(node.keys, node.values, strict=True))
            for status_node, code_node in pairs:
                status, code = _status(status_node), _constant(code_node)
                if status is not None and code is not None:
                    found.add((status, code))
    return found


def test_every_http_error_the_api_answers_is_in_the_contract() -> None:
    section = _section(CONTRACT.read_text(encoding="utf-8"), "## 6. HTTP API")
    documented = {
        (int(status), code)
        for status, codes in re.findall(r"^\| (\d{3}) \| ([^|]+) \|", section, re.MULTILINE)
        for code in re.findall(r"`([a-z_]+)`", codes)
    }
    answered = answered_errors()
    assert {(401, "unauthorized"), (404, "household_not_found"), (503, "unavailable")} <= answered
    assert answered - documented == set(), (
        "add these (status, error) to the error table of docs/contract.md section 6"
    )
    assert documented - answered == set(), "docs/contract.md lists errors the API never answers"


# --- commands ------------------------------------------------------------------------------


def test_every_command_is_in_the_contracts_command_table() -> None:
    _, handlers = build_parser()
    section = _section(CONTRACT.read_text(encoding="utf-8"), "## 8. Configuration and commands")
    listed = set(re.findall(r"`([a-z][a-z-]*)[ `]", section))
    assert {"worker", "close-month"} <= set(handlers)
    missing = sorted(set(handlers) - listed)
    assert missing == [], "add these commands to the table of docs/contract.md section 8"


def test_every_route_of_the_api_is_in_the_contracts_route_table() -> None:
    source = (ROOT / "stream" / "api.py").read_text(encoding="utf-8")
    routes = set(re.findall(r'"(/v1/[^"?]+|/healthz|/metrics)"', source))
    section = _section(CONTRACT.read_text(encoding="utf-8"), "## 6. HTTP API")
    listed = set(re.findall(r"^\| `GET ([^ `?]+)", section, re.MULTILINE))
    assert {"/v1/households/{household_id}/bonus", "/healthz"} <= routes
    assert routes - listed == set(), "add these routes to the table of docs/contract.md section 6"
