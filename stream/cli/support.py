"""What every ``loyalty`` command needs: settings and rules, with errors people can act on."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from pydantic import SecretStr, ValidationError

from models.rules import Rules, load_rules
from stream.errors import SettingsError
from stream.settings import Settings

Handler = Callable[[argparse.Namespace, Settings], int]

#: settings a command-line flag can also set (the message names both)
_FLAGS = {"log_level": "--log-level"}


def _settings_error(exc: ValidationError, given: dict[str, Any]) -> SettingsError:
    problems = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else ""
        if not field:  # a check across settings: its message names them
            problems.append(str(error["msg"]).removeprefix("Value error, "))
            continue
        name = f"LOYALTY_{field.upper()}"
        if field in given and field in _FLAGS:
            name = f"{_FLAGS[field]} / {name}"
        message = str(error["msg"]).removeprefix("Value error, ")
        if message.startswith(f"LOYALTY_{field.upper()} "):
            problems.append(f"{name}{message[len(field) + 8 :]}")  # the validator named it
            continue
        value = error.get("input")
        info = Settings.model_fields.get(field)
        secret = (info is not None and info.annotation is SecretStr) or any(
            word in field for word in ("key", "token", "password")
        )
        shown = "" if secret or isinstance(value, dict) else f", got {value!r}"
        problems.append(f"{name}: {message}{shown}")
    return SettingsError("invalid setting " + "; ".join(problems))


def load_settings(**given: Any) -> Settings:
    """The settings from the environment and ``.env``, ``given`` ones (from flags) on top.

    Raises :class:`SettingsError`, one line naming each bad setting and its value.
    """
    try:
        return Settings(**given)
    except ValidationError as exc:
        raise _settings_error(exc, given) from None
    except ValueError as exc:  # a settings source's own (LOYALTY_<NAME>_FILE it cannot read)
        raise SettingsError(f"invalid setting {exc}") from None


def load_rules_or_exit(settings: Settings) -> Rules:
    """The rules of ``LOYALTY_RULES``; a :class:`RulesError` (naming the file and line) is
    printed by ``loyalty`` as one line, exit code 1 (``--debug``: the traceback)."""
    return load_rules(settings.rules)
