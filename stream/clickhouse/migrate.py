"""Versioned ClickHouse migrations (``migrations/NNN_name.sql``), applied once each."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from stream.clickhouse.engine import ClickHouse
from stream.errors import MigrationError as MigrationError  # noqa: PLC0414 (re-exported: its old home)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


# -- migrations ---------------------------------------------------------------------------

_MIGRATION_NAME = re.compile(r"^(\d{3,})_[a-z0-9_]+\.sql$")
_STATEMENT_END = re.compile(r";[ \t]*(?:\n|$)")

SCHEMA_MIGRATIONS_DDL = """
CREATE TABLE IF NOT EXISTS schema_migrations
(
    version String,
    name String,
    checksum String,
    applied_at DateTime('UTC') DEFAULT now()
)
ENGINE = MergeTree
ORDER BY version
"""


@dataclass(frozen=True, slots=True)
class Migration:
    version: str  # "001"
    name: str  # "001_purchase_lines"
    sql: str
    checksum: str  # sha256 of the file

    @property
    def statements(self) -> list[str]:
        return split_statements(self.sql)


def split_statements(sql: str) -> list[str]:
    """The statements of a migration file: split where a line ends with ``;``.

    Comment-only chunks are dropped. (Not a SQL parser: a ``;`` at the end of a line inside a
    string literal would split it; our migrations do not do that.)
    """
    out = []
    for chunk in _STATEMENT_END.split(sql):
        code = "\n".join(
            line for line in chunk.splitlines() if not line.strip().startswith("--")
        ).strip()
        if code:
            out.append(code)
    return out


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Every ``NNN_name.sql`` in ``directory``, in version order."""
    found: dict[str, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        m = _MIGRATION_NAME.match(path.name)
        if m is None:
            raise MigrationError(f"migration file name must be NNN_name.sql: {path.name}")
        text = path.read_text(encoding="utf-8")
        version = m.group(1)
        if version in found:
            raise MigrationError(f"two migrations with version {version}: {path.name}")
        found[version] = Migration(
            version, path.stem, text, hashlib.sha256(text.encode("utf-8")).hexdigest()
        )
    return [found[v] for v in sorted(found, key=int)]


def applied_migrations(client: ClickHouse) -> dict[str, str]:
    """version -> checksum of what ``schema_migrations`` records as applied."""
    client.execute(SCHEMA_MIGRATIONS_DDL)
    rows = client.query("SELECT version, any(checksum) FROM schema_migrations GROUP BY version")
    return {str(version): str(checksum) for version, checksum in rows}


def migrate(client: ClickHouse, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply the migrations not yet recorded; return their names (empty when up to date).

    ClickHouse has no transactional DDL: a migration that failed halfway is run again from
    its first statement next time, so every statement must be idempotent (``IF NOT EXISTS``).
    It is recorded only after all its statements succeeded. Two processes migrating at once
    both run the idempotent statements and may both record a version; readers group by it.
    A recorded migration whose file has changed since is an error, never re-run silently.
    """
    done = applied_migrations(client)
    applied: list[str] = []
    for migration in load_migrations(directory):
        recorded = done.get(migration.version)
        if recorded is not None:
            if recorded != migration.checksum:
                raise MigrationError(
                    f"migration {migration.name} was changed after it was applied "
                    "(add a new migration instead of editing an applied one)"
                )
            continue
        for statement in migration.statements:
            client.execute(statement)
        client.insert(
            "schema_migrations",
            ["version", "name", "checksum"],
            [(migration.version, migration.name, migration.checksum)],
        )
        applied.append(migration.name)
    return applied
