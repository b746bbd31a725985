"""Faust agents and timers, thin: each module's ``register(app)`` attaches its agents.

``discover`` finds every module of this package, so a new agent is a new module.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stream.app import LoyaltyApp


def discover(app: LoyaltyApp) -> list[str]:
    found = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        register = getattr(module, "register", None)
        if callable(register):
            register(app)
            found.append(info.name)
    return found
