"""The hot path's decoder (``decode_swipe``) against the reference parser (``parse_swipe``).

Every case of ``test_swipe.py`` already goes through both (its ``parse`` and ``reason``
helpers); here: what only the hot path could get wrong. ``tests/docs/test_schemas.py`` judges
these inputs by the JSON Schemas too (with a fixed hypothesis seed).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.errors import InvalidEvent
from models.swipe import WireSwipe, decode_swipe, parse_swipe
from tests.models.test_swipe import Obj, encode, example, reason, view
from tests.support.events import CONTRACT_EXAMPLE

# --- the hot path ------------------------------------------------------------------------


def same_on_both_paths(raw: bytes) -> None:
    """The hot path accepts what the reference parser accepts, as the same swipe, and refuses
    the rest with the reference's reason."""
    try:
        swipe = parse_swipe(raw)
    except InvalidEvent as exc:
        assert reason(raw) == exc.reason
    else:
        assert view(decode_swipe(raw)) == view(swipe)


def test_the_hot_path_decodes_the_example_without_the_reference_parser() -> None:
    fast = decode_swipe(CONTRACT_EXAMPLE)
    assert isinstance(fast, WireSwipe)  # not a fallback
    assert view(fast) == view(parse_swipe(CONTRACT_EXAMPLE))


@pytest.mark.parametrize(
    "raw",
    [
        CONTRACT_EXAMPLE.replace(b'"kind"', b'"extra": 1e400, "kind"'),
        CONTRACT_EXAMPLE.replace(b'"kind"', b'"extra": -1E+0400, "kind"'),
        CONTRACT_EXAMPLE.replace(b'"kind"', b'"extra": ' + b"9" * 400 + b', "kind"'),
        CONTRACT_EXAMPLE.replace(b'"kind"', b'"extra": "\xff", "kind"'),
        CONTRACT_EXAMPLE.replace(b'"kind"', b'"extra": ' + b"[" * 1100 + b"]" * 1100 + b', "kind"'),
        CONTRACT_EXAMPLE.replace(b'"kind"', b'"extra": "\\ud800", "kind"'),
    ],
    ids=["1e400", "-1E+0400", "400 digits", "bad utf-8", "deep", "lone surrogate"],
)
def test_what_orjson_rejects_in_an_ignored_field_the_hot_path_rejects_too(raw: bytes) -> None:
    assert raw != CONTRACT_EXAMPLE
    assert reason(raw) == "invalid_json"


@pytest.mark.parametrize(
    "quantity", [b"0.0005", b"0.0004", b"0.00051", b"1000000.0004", b"1000000.0006", b"1e-3"]
)
def test_quantities_at_the_limits_read_the_same_on_both_paths(quantity: bytes) -> None:
    raw = CONTRACT_EXAMPLE.replace(b'"quantity": 2', b'"quantity": ' + quantity)
    same_on_both_paths(raw)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["sku", "product_group", "quantity", "amount_cents", "fuel_ml", "x"]),
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(-(2**70), 2**70),
            st.floats(allow_nan=False, allow_infinity=False),
            st.text(max_size=70),
        ),
    )
)
def test_any_line_reads_the_same_on_both_paths(line: Obj) -> None:
    obj = example()
    obj["lines"][0] = line
    amount = line.get("amount_cents")
    if isinstance(amount, int) and not isinstance(amount, bool):
        obj["total_cents"] = 1949 + amount
    raw = encode(obj)
    same_on_both_paths(raw)


@pytest.mark.parametrize(
    "sku", [b"A\x7fB", b"A\\u0007B", b"A\\u00a0B", b"A\\nB", "Ä".encode(), b"A\\u00c4B"]
)
def test_strings_the_printable_shortcut_cannot_vouch_for_read_the_same(sku: bytes) -> None:
    """DEL, escapes and non-ASCII take the per-line printable check (``_checked``)."""
    raw = CONTRACT_EXAMPLE.replace(b'"6408430000012"', b'"' + sku + b'"')
    assert raw != CONTRACT_EXAMPLE
    same_on_both_paths(raw)
