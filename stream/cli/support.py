"""What every ``loyalty`` command needs: settings and rules, with errors people can act on."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from pydantic import ValidationError

from models.errors import RulesError
from models.rules import Rules, load_rules
from stream.settings import Settings

Handler = Callable[[argparse.Namespace, Settings], int]


def settings_or_exit() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        lines = [
            f"  {'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors()
        ]
        raise SystemExit(
            "invalid settings (LOYALTY_* environment or .env):\n" + "\n".join(lines)
        ) from None


def load_rules_or_exit(settings: Settings) -> Rules:
    try:
        return load_rules(settings.rules)
    except RulesError as exc:
        raise SystemExit(f"invalid rules, not starting: {exc}") from None
