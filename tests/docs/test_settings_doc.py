"""docs/settings.md is generated from the settings class; this catches drift."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field

from stream.settings import Settings
from stream.settings_doc import main, markdown, undocumented

ROOT = Path(__file__).resolve().parents[2]
SETTINGS_MD = ROOT / "docs" / "settings.md"


def test_docs_settings_md_is_what_the_settings_class_says() -> None:
    assert SETTINGS_MD.read_text(encoding="utf-8") == markdown(), (
        "docs/settings.md differs from stream/settings.py: run make docs"
    )


def test_every_setting_says_what_it_means() -> None:
    assert undocumented() == [], "add Field(description=...) to these settings"


def test_every_setting_has_one_row_with_its_default() -> None:
    text = markdown()
    for name, info in Settings.model_fields.items():
        row = f"| `LOYALTY_{name.upper()}` "
        rows = [line for line in text.splitlines() if line.startswith(row)]
        assert len(rows) == 1, name
        assert info.description and info.description in rows[0]
    assert "| `LOYALTY_BATCH_SIZE` | `500` | integer, >= 1 |" in text
    assert "| `LOYALTY_RULES` | `stream/rules.default.toml` | path |" in text
    assert "| `LOYALTY_API_TOKENS` | (empty) |" in text


def test_a_new_setting_appears_and_one_without_meaning_is_named() -> None:
    class More(Settings):
        shiny_knob: int = Field(7, ge=0, le=9, description="a knob | with a pipe")
        silent: str = "x"

    text = markdown(More)
    assert "| `LOYALTY_SHINY_KNOB` | `7` | integer, >= 0, <= 9 | a knob \\| with a pipe |" in text
    assert undocumented(More) == ["silent"]
    assert text != markdown()


def test_main_writes_the_file(tmp_path: Path) -> None:
    out = tmp_path / "settings.md"
    assert main([str(out)]) == 0
    assert out.read_text(encoding="utf-8") == markdown()


def test_every_setting_named_in_the_readme_exists() -> None:
    known = {f"LOYALTY_{name.upper()}" for name in Settings.model_fields}
    named = set(re.findall(r"LOYALTY_[A-Z0-9_]*[A-Z0-9]", (ROOT / "README.md").read_text()))
    assert named - known == set()
