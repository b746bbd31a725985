"""The pseudonymous household key: keyed, stable, 64 bits, never the id itself."""

from __future__ import annotations

import hashlib
import hmac

from hypothesis import given
from hypothesis import strategies as st

from stream.analytics.pseudonym import household_key

keys = st.binary(min_size=1, max_size=64)
# Register ids look like H100234: a letter no decimal or hex rendering can contain.
register_ids = st.from_regex(r"\A[G-Z][0-9]{1,12}\Z")


def test_known_value() -> None:
    digest = hmac.new(b"k", b"H100234", hashlib.sha256).digest()
    assert household_key(b"k", "H100234") == int.from_bytes(digest[:8], "big")
    # pinned: a change would orphan every household_key already stored in ClickHouse
    assert household_key(b"k", "H100234") == 0x6C3110A1B4DC6A9E


@given(keys, st.text(min_size=1, max_size=64))
def test_is_a_uint64_and_never_the_id(key: bytes, household_id: str) -> None:
    value = household_key(key, household_id)
    assert 0 <= value < 2**64
    assert str(value) != household_id


@given(keys, register_ids)
def test_never_contains_the_id(key: bytes, household_id: str) -> None:
    value = household_key(key, household_id)
    for rendering in (str(value), f"{value:x}", f"{value:X}", f"{value:016x}"):
        assert household_id not in rendering


@given(keys, keys, st.text(min_size=1, max_size=64))
def test_stable_and_keyed(key: bytes, other_key: bytes, household_id: str) -> None:
    assert household_key(key, household_id) == household_key(bytes(key), household_id)
    if hmac.compare_digest(key, other_key):
        return
    # HMAC pads short keys with zeros: b"k" and b"k\0" are the same key by design.
    if key.rstrip(b"\0") == other_key.rstrip(b"\0") and max(len(key), len(other_key)) <= 64:
        return
    assert household_key(key, household_id) != household_key(other_key, household_id)


@given(keys, st.text(min_size=1, max_size=32), st.text(min_size=1, max_size=32))
def test_different_households_differ(key: bytes, a: str, b: str) -> None:
    if a != b:
        assert household_key(key, a) != household_key(key, b)
