"""Field validators shared by the event parsers; each raises ``InvalidEvent``."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

from models.errors import InvalidEvent

# Always used with ``fullmatch``: ``^...$`` with ``match`` also accepts a trailing newline.
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]+")
_DIGITS = re.compile(r"[0-9]+")

# Generous bounds that still keep every sum far inside Int64.
MAX_CENTS = 10_000_000_000
MAX_ML = 1_000_000_000


def require(obj: dict[str, Any], name: str) -> Any:
    if name not in obj or obj[name] is None:
        raise InvalidEvent("missing_field", f"{name} is required")
    return obj[name]


def ascii_text(obj: dict[str, Any], name: str, max_len: int, *, optional: bool = False) -> str:
    if optional and obj.get(name) is None:
        return ""
    value = require(obj, name)
    if not isinstance(value, str):
        raise InvalidEvent("invalid_field", f"{name} must be a string")
    if not 1 <= len(value) <= max_len or not _PRINTABLE_ASCII.fullmatch(value):
        raise InvalidEvent(
            "invalid_field", f"{name} must be 1-{max_len} printable ASCII characters"
        )
    return value


def text(obj: dict[str, Any], name: str, max_len: int) -> str:
    value = require(obj, name)
    if not isinstance(value, str):
        raise InvalidEvent("invalid_field", f"{name} must be a string")
    if not 1 <= len(value) <= max_len or not value.isprintable():
        raise InvalidEvent("invalid_field", f"{name} must be 1-{max_len} printable characters")
    return value


def digits(obj: dict[str, Any], name: str, min_len: int, max_len: int) -> str:
    value = require(obj, name)
    if not isinstance(value, str) or not _DIGITS.fullmatch(value):
        raise InvalidEvent("invalid_field", f"{name} must be a string of digits")
    if not min_len <= len(value) <= max_len:
        raise InvalidEvent("invalid_field", f"{name} must have {min_len}-{max_len} digits")
    return value


def integer(obj: dict[str, Any], name: str, low: int, high: int) -> int:
    value = require(obj, name)
    # bool is an int in Python but never a valid amount in JSON.
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidEvent("invalid_field", f"{name} must be an integer")
    if not low <= value <= high:
        raise InvalidEvent("invalid_field", f"{name} must be between {low} and {high}")
    return value


def boolean(obj: dict[str, Any], name: str) -> bool:
    value = require(obj, name)
    if not isinstance(value, bool):
        raise InvalidEvent("invalid_field", f"{name} must be true or false")
    return value


def choice(obj: dict[str, Any], name: str, allowed: frozenset[str]) -> str:
    value = require(obj, name)
    if not isinstance(value, str):
        raise InvalidEvent("invalid_field", f"{name} must be a string")
    if value not in allowed:
        raise InvalidEvent("unknown_enum", f"{name} must be one of {', '.join(sorted(allowed))}")
    return value


def timestamp(obj: dict[str, Any], name: str) -> datetime:
    value = require(obj, name)
    if not isinstance(value, str) or not RFC3339.fullmatch(value):
        raise InvalidEvent("invalid_field", f"{name} must be RFC 3339 with a UTC offset")
    try:
        return datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidEvent("invalid_field", f"{name}: {exc}") from None


def calendar_date(obj: dict[str, Any], name: str) -> date:
    value = require(obj, name)
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        raise InvalidEvent("invalid_field", f"{name} must be YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise InvalidEvent("invalid_field", f"{name}: {exc}") from None


def string_list(obj: dict[str, Any], name: str, max_items: int, max_len: int) -> tuple[str, ...]:
    value = require(obj, name)
    if not isinstance(value, list) or len(value) > max_items:
        raise InvalidEvent("invalid_field", f"{name} must be a list of at most {max_items}")
    items = []
    for item in value:
        if not isinstance(item, str) or not 1 <= len(item) <= max_len or not item.isprintable():
            raise InvalidEvent("invalid_field", f"{name} items must be 1-{max_len} characters")
        items.append(item)
    return tuple(items)


_IDENTIFIER = re.compile(r"[A-Za-z0-9_.\-]{1,64}")


def identifier(obj: dict[str, Any], name: str, *, optional: bool = False) -> str:
    """Register ids become parts of storage keys, so they get a conservative alphabet."""
    if optional and obj.get(name) is None:
        return ""
    value = require(obj, name)
    if not isinstance(value, str) or not _IDENTIFIER.fullmatch(value):
        raise InvalidEvent("invalid_field", f"{name} must be 1-64 characters of A-Z a-z 0-9 _ . -")
    return value


def identifier_list(obj: dict[str, Any], name: str, max_items: int) -> tuple[str, ...]:
    """A list of register ids (each as ``identifier``)."""
    value = require(obj, name)
    if not isinstance(value, list) or len(value) > max_items:
        raise InvalidEvent("invalid_field", f"{name} must be a list of at most {max_items}")
    for item in value:
        if not isinstance(item, str) or not _IDENTIFIER.fullmatch(item):
            raise InvalidEvent(
                "invalid_field", f"{name} items must be 1-64 characters of A-Z a-z 0-9 _ . -"
            )
    return tuple(value)
