"""Query parameters: ``{name:Type}`` placeholders rendered as typed ClickHouse literals.

One rendering path for both engines, on purpose. The server engine cannot use server-side
parameters: ClickHouse 18.16 (the Debian server) predates ``{name:Type}`` query parameters
(19.x), and clickhouse-driver's own ``%(name)s`` substitution is client-side text formatting
with other placeholders. chdb does take ``params=`` (``Session.query(sql, fmt, params=...)``,
chdb 4.4), but it passes each value as ``str(value)`` for the server to parse, which cannot
express what this module guarantees (measured with chdb 4.4.0):

- ``{u:UInt8}`` with 300 gives 44 (wraps silently); here it is refused (money, counts);
- ``{a:Array(String)}`` with a list fails to parse (``[a,b'c]`` is not quoted);
- ``{t:DateTime('Europe/Helsinki')}`` with an aware datetime fails (``+00:00`` is not parsed);
- ``{n:Nullable(String)}`` with None gives the string ``'NULL'``, not NULL;
- ``{s:String}`` with 5 is accepted; here a value must be of the declared Python type.

Pre-converting values to text chdb would parse is this module's work again, so both engines
render here, and a query reads the same (and fails the same) on either.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PLACEHOLDER = re.compile(r"\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*:\s*([^{}]+?)\s*\}")
_INT_TYPE = re.compile(r"^(U?)Int(8|16|32|64)$")
_INT_TYPE_ALL = re.compile(r"^U?Int\d+$")
_ARRAY = re.compile(r"^Array\((.+)\)$")
_DATETIME = re.compile(r"^DateTime(?:\(\s*'([^']*)'\s*\))?$")


# -- parameters ---------------------------------------------------------------------------


def quote_identifier(name: str) -> str:
    """``name`` if it is a plain identifier; anything else is refused, never quoted around."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a plain identifier: {name!r}")
    return name


def _string_literal(value: str) -> str:
    # Backslash first: ClickHouse string literals treat it as the escape character.
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


def _literal(value: Any, ch_type: str, name: str) -> str:
    ch_type = ch_type.strip()
    if ch_type.startswith("Nullable(") and ch_type.endswith(")"):
        return "NULL" if value is None else _literal(value, ch_type[9:-1], name)
    if ch_type.startswith("LowCardinality(") and ch_type.endswith(")"):
        return _literal(value, ch_type[15:-1], name)
    if ch_type == "String":
        if not isinstance(value, str):
            raise TypeError(
                f"parameter {name!r} ({ch_type}) must be str, got {type(value).__name__}"
            )
        return _string_literal(value)
    m = _INT_TYPE.match(ch_type)
    if m:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(
                f"parameter {name!r} ({ch_type}) must be int, got {type(value).__name__}"
            )
        bits = int(m.group(2))
        low, high = (0, 2**bits - 1) if m.group(1) else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
        if not low <= value <= high:
            raise ValueError(f"parameter {name!r} = {value} is out of range for {ch_type}")
        # A typed conversion, not a bare number: arithmetic on it must not overflow a
        # narrower type ClickHouse would infer from the literal.
        return f"to{ch_type}({value})"
    if ch_type == "Date":
        if isinstance(value, datetime) or not isinstance(value, date):
            raise TypeError(f"parameter {name!r} (Date) must be a date, got {type(value).__name__}")
        return f"toDate('{value.isoformat()}')"
    m = _DATETIME.match(ch_type)
    if m:
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise TypeError(f"parameter {name!r} ({ch_type}) must be an aware datetime")
        tz = m.group(1) or "UTC"
        text = value.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M:%S")
        return f"toDateTime('{text}', {_string_literal(tz)})"
    if ch_type in {"Float32", "Float64"}:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"parameter {name!r} ({ch_type}) must be a number")
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"parameter {name!r} must be finite")
        return f"to{ch_type}({number!r})"
    m = _ARRAY.match(ch_type)
    if m:
        if isinstance(value, str | bytes) or not isinstance(value, Sequence | set | frozenset):
            raise TypeError(f"parameter {name!r} ({ch_type}) must be a list")
        items = sorted(value) if isinstance(value, set | frozenset) else list(value)
        return "[" + ", ".join(_literal(item, m.group(1), name) for item in items) + "]"
    raise ValueError(f"parameter {name!r}: type {ch_type!r} is not supported by render()")


def render(sql: str, params: Mapping[str, Any] | None) -> str:
    """``sql`` with every ``{name:Type}`` replaced by a safe literal of ``params[name]``.

    Values are checked against the declared type (an int for ``UInt32``, a ``date`` for
    ``Date``, ...), strings are escaped; a missing parameter raises ``KeyError``. Without
    ``params`` the text is returned as is.
    """
    if params is None:
        return sql

    def replace(m: re.Match[str]) -> str:
        name, ch_type = m.group(1), m.group(2)
        if name not in params:
            raise KeyError(f"SQL parameter {name!r} ({ch_type}) was not given")
        return _literal(params[name], ch_type, name)

    return _PLACEHOLDER.sub(replace, sql)
