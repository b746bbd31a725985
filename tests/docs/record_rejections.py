"""A pytest plugin that records every input the event parsers saw in a test run, and its fate.

Loaded with ``-p tests.docs.record_rejections`` by ``tests/docs/test_schemas.py``, which runs
the parsers' own tests in a subprocess: so "every dead-letter case in the tests" is exactly
what those tests feed the parsers, not a copy that can drift. Writes JSON lines to the file
named by ``LOYALTY_RECORD_PARSES``.
"""

from __future__ import annotations

import base64
import functools
import json
import os
from collections.abc import Callable
from typing import Any

import models.register
import models.swipe
from models.errors import InvalidEvent

_OUT = os.environ.get("LOYALTY_RECORD_PARSES", "")


def _recording(parser: Callable[[bytes], Any], kind: str) -> Callable[[bytes], Any]:
    @functools.wraps(parser)
    def wrapper(raw: bytes) -> Any:
        reason = None
        try:
            return parser(raw)
        except InvalidEvent as exc:
            reason = exc.reason
            raise
        finally:
            if _OUT:
                line = {"kind": kind, "raw": base64.b64encode(raw).decode(), "reason": reason}
                with open(_OUT, "a", encoding="utf-8") as out:
                    out.write(json.dumps(line) + "\n")

    return wrapper


# Before the test modules are imported, so their ``from models.swipe import parse_swipe``
# picks up the recording parser.
models.swipe.parse_swipe = _recording(models.swipe.parse_swipe, "swipe")  # type: ignore[assignment]
models.register.parse_register = _recording(models.register.parse_register, "register")  # type: ignore[assignment]
