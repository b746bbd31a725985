"""docs/DESIGN.md names every file of the code, and only files that exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DESIGN = ROOT / "docs" / "DESIGN.md"
_PATH = re.compile(r"`((?:models|stream|agents)/[A-Za-z0-9_./]*)`")
#: files that hold nothing to describe
_SKIP = {"__init__.py", "__main__.py"}


def named() -> set[str]:
    return set(_PATH.findall(DESIGN.read_text(encoding="utf-8")))


def code_files() -> set[str]:
    files = set()
    for package in ("models", "stream", "agents"):
        for path in (ROOT / package).rglob("*"):
            if "__pycache__" in path.parts or not path.is_file():
                continue
            if path.suffix in {".py", ".lua", ".sql", ".toml"} and path.name not in _SKIP:
                files.add(path.relative_to(ROOT).as_posix())
    return files


def test_every_path_named_in_design_exists() -> None:
    found = named()
    assert len(found) > 40
    missing = sorted(p for p in found if not (ROOT / p).exists())
    assert missing == [], "docs/DESIGN.md names files that do not exist"


def test_design_names_every_file_of_the_code() -> None:
    files = code_files()
    assert "stream/bonus/swipes.py" in files
    unnamed = sorted(files - named())
    assert unnamed == [], (
        "docs/DESIGN.md does not name these files: add one line each saying what it holds"
    )


def _keys_in_first_column(rows: list[str]) -> set[str]:
    return {key for row in rows for key in re.findall(r"`+([^`]+)`+", row)}


def test_designs_redis_key_table_is_the_one_of_keys_py() -> None:
    doc = (ROOT / "stream" / "store" / "keys.py").read_text(encoding="utf-8")
    docstring = doc.split('"""')[1]
    # rows of its table start with ``key``; the first column ends at the first two spaces
    rows = [line.split("  ")[0] for line in docstring.splitlines() if line.startswith("``")]
    in_code = _keys_in_first_column(rows)
    design = DESIGN.read_text(encoding="utf-8")
    section = design[design.index("## Redis keys") :]
    section = section[: section.index("\n## ", 4)]
    in_design = _keys_in_first_column(
        [line.split(" | ")[0] for line in section.splitlines() if line.startswith("| `")]
    )
    assert len(in_code) > 20
    assert in_code == in_design, (
        "docs/DESIGN.md's Redis key table differs from stream/store/keys.py"
    )
