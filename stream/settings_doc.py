"""``docs/settings.md``, generated from the settings class so the two cannot drift.

``python -m stream.settings_doc`` prints it; ``make docs`` writes it; a test compares.
"""

from __future__ import annotations

import enum
import sys
import typing
from pathlib import Path
from typing import Any

import annotated_types
from pydantic import SecretStr
from pydantic.fields import FieldInfo

from stream.settings import Settings

_PACKAGE_ROOT = Path(__file__).resolve().parent.parent

HEADER = """\
# Settings

<!-- Generated from stream/settings.py by `make docs`; do not edit by hand. -->

Every setting is an environment variable (or a line of a `.env` file in the working
directory): the field name in upper case with the prefix `LOYALTY_`. `LOYALTY_<NAME>_FILE`
names a file holding the value instead (Docker secrets); `LOYALTY_<NAME>` itself wins. A value
that is not allowed stops the command with one line naming the variable.

| variable | default | allowed | meaning |
| --- | --- | --- | --- |
"""


def _default(info: FieldInfo) -> str:
    value = info.get_default(call_default_factory=True)
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if isinstance(value, Path):
        try:
            value = value.resolve().relative_to(_PACKAGE_ROOT).as_posix()
        except ValueError:
            value = value.as_posix()
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, bool):
        value = "true" if value else "false"
    if value is None:
        return "(none)"
    if isinstance(value, list | tuple | set | frozenset):
        value = ",".join(str(v) for v in value)
    text = str(value)
    return f"`{text}`" if text else "(empty)"


def _allowed(info: FieldInfo) -> str:
    annotation = info.annotation
    if typing.get_origin(annotation) is typing.Literal:
        return ", ".join(f"`{v}`" for v in typing.get_args(annotation))
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return ", ".join(f"`{m.value}`" for m in annotation)
    bounds = []
    for item in info.metadata:
        for cls, sign, attr in _BOUNDS:
            if isinstance(item, cls):
                bounds.append(f"{sign} {getattr(item, attr)}")
    kind = _kind(annotation)
    return ", ".join([kind, *bounds])


_BOUNDS = (
    (annotated_types.Ge, ">=", "ge"),
    (annotated_types.Gt, ">", "gt"),
    (annotated_types.Le, "<=", "le"),
    (annotated_types.Lt, "<", "lt"),
)


def _kind(annotation: Any) -> str:
    names = {
        int: "integer",
        float: "number",
        bool: "true/false",
        str: "text",
        Path: "path",
        SecretStr: "secret text",
    }
    return names.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(settings_class: type[Settings] = Settings) -> str:
    """The settings table, one row per ``LOYALTY_*`` variable, in the class's order."""
    prefix = str(settings_class.model_config.get("env_prefix", ""))
    rows = []
    for name, info in settings_class.model_fields.items():
        variable = f"{prefix}{name}".upper()
        meaning = info.description or ""
        rows.append(
            f"| `{variable}` | {_cell(_default(info))} | {_cell(_allowed(info))} "
            f"| {_cell(meaning)} |\n"
        )
    return HEADER + "".join(rows)


def undocumented(settings_class: type[Settings] = Settings) -> list[str]:
    """Settings without a description (each must say what it means)."""
    return [name for name, info in settings_class.model_fields.items() if not info.description]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    text = markdown()
    if args and args[0] not in {"-", "--markdown"}:
        Path(args[0]).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
