"""One small ClickHouse client over two engines, plus the versioned migrations.

``connect(url)`` picks the engine from ``LOYALTY_CLICKHOUSE_URL``:

- ``clickhouse://[user[:password]@]host[:port][/database]``: a server (clickhouse-driver,
  native protocol; tested against Debian's 18.16.1);
- ``chdb:///absolute/path[?database=NAME]``: chdb, the engine embedded in this process (26.9).

The same SQL runs on both. Parameters are written ``{name:Type}`` (ClickHouse's own syntax) and
substituted here, on the client, as typed literals (:func:`render`): 18.16 has no server-side
binding, and one code path for both engines is easier to trust than two.

chdb is an embedded server: a process can have only one chdb directory open, and a directory can
be open in only one process at a time (the second gets :class:`ChdbBusyError`, even read-only).
A CLI command on a chdb directory therefore needs the worker stopped; with a ClickHouse server
there is no such limit.
"""

from __future__ import annotations

import fcntl
import hashlib
import math
import os
import re
import threading
import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Self
from urllib.parse import parse_qs, unquote, urlsplit
from zoneinfo import ZoneInfo

import orjson

from stream.embedded import ManagedProcess

__all__ = [
    "MIGRATIONS_DIR",
    "ChdbBusyError",
    "ChdbClickHouse",
    "ClickHouse",
    "ClickHouseError",
    "ClickHouseServerProcess",
    "Migration",
    "MigrationError",
    "ServerClickHouse",
    "applied_migrations",
    "connect",
    "find_clickhouse_server",
    "load_migrations",
    "migrate",
    "quote_identifier",
    "render",
    "split_statements",
]

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
DEFAULT_SERVER_PORT = 9000

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PLACEHOLDER = re.compile(r"\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*:\s*([^{}]+?)\s*\}")
_INT_TYPE = re.compile(r"^(U?)Int(8|16|32|64)$")
_INT_TYPE_ALL = re.compile(r"^U?Int\d+$")
_ARRAY = re.compile(r"^Array\((.+)\)$")
_DATETIME = re.compile(r"^DateTime(?:\(\s*'([^']*)'\s*\))?$")


class ClickHouseError(RuntimeError):
    """A query failed, or the engine could not be reached or opened."""


class ChdbBusyError(ClickHouseError):
    """The chdb directory is open in another process (only one may have it)."""


class MigrationError(ClickHouseError):
    """The migrations on disk and those recorded in ``schema_migrations`` disagree."""


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


# -- the client interface -----------------------------------------------------------------


class ClickHouse(ABC):
    """What the service needs from ClickHouse; get one from :func:`connect`.

    Not safe to share between threads at the same time (the server client is not); give each
    thread its own, or serialise calls.
    """

    engine: ClassVar[str]

    def __init__(self, url: str, database: str) -> None:
        self.url = url
        self.database = database

    @abstractmethod
    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        """Run a statement (DDL, ``INSERT ... SELECT``, ``ALTER``) and discard any result."""

    @abstractmethod
    def query_with_columns(
        self, sql: str, params: Mapping[str, Any] | None = None
    ) -> tuple[list[tuple[Any, ...]], list[str]]:
        """Rows (Python values: int, str, Decimal, date, datetime, list) and column names."""

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """The rows of a ``SELECT``."""
        return self.query_with_columns(sql, params)[0]

    @abstractmethod
    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Insert ``rows`` (tuples in ``columns`` order, Python values) in one statement."""

    @abstractmethod
    def close(self) -> None:
        """Release the connection (idempotent)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.engine} database={self.database}>"


def _insert_head(table: str, columns: Sequence[str]) -> str:
    if not columns:
        raise ValueError("insert needs at least one column")
    cols = ", ".join(quote_identifier(c) for c in columns)
    return f"INSERT INTO {quote_identifier(table)} ({cols})"


# -- server (clickhouse-driver) -----------------------------------------------------------


class ServerClickHouse(ClickHouse):
    """A ClickHouse server over the native protocol (clickhouse-driver)."""

    engine: ClassVar[str] = "server"

    def __init__(
        self, url: str, host: str, port: int, *, database: str, user: str, password: str
    ) -> None:
        from clickhouse_driver import Client  # noqa: PLC0415 (only the server engine needs it)

        super().__init__(url, database)
        self._client = Client(
            host=host,
            port=port,
            database=database,
            user=user,
            password=password,
            connect_timeout=5,
            send_receive_timeout=300,
            client_name="loyalty",
        )

    def _run(self, sql: str, *args: Any, **kwargs: Any) -> Any:
        from clickhouse_driver import errors  # noqa: PLC0415

        try:
            return self._client.execute(sql, *args, **kwargs)
        except (errors.Error, OSError, EOFError) as exc:
            raise ClickHouseError(f"ClickHouse server ({self.database}): {exc}") from exc

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        self._run(render(sql, params))

    def query_with_columns(
        self, sql: str, params: Mapping[str, Any] | None = None
    ) -> tuple[list[tuple[Any, ...]], list[str]]:
        rows, types = self._run(render(sql, params), with_column_types=True)
        return [tuple(row) for row in rows], [name for name, _type in types]

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        # Rows go as parameters (native blocks): inline literal VALUES time out on 18.16.
        self._run(f"{_insert_head(table, columns)} VALUES", list(rows))

    def close(self) -> None:
        self._client.disconnect()


# -- chdb (embedded) ----------------------------------------------------------------------

_chdb_lock = threading.Lock()


def _chdb_value(raw: Any, ch_type: str) -> Any:
    if raw is None:
        return None
    if ch_type.startswith("Nullable(") and ch_type.endswith(")"):
        return _chdb_value(raw, ch_type[9:-1])
    if ch_type.startswith("LowCardinality(") and ch_type.endswith(")"):
        return _chdb_value(raw, ch_type[15:-1])
    if ch_type.startswith("Decimal"):
        return Decimal(str(raw))
    if ch_type in {"Date", "Date32"}:
        return date.fromisoformat(raw)
    m = _DATETIME.match(ch_type)
    if m:
        # Like clickhouse-driver: aware in the column's time zone if it names one, else naive.
        value = datetime.strptime(raw, "%Y-%m-%d %H:%M:%S")
        return value.replace(tzinfo=ZoneInfo(m.group(1))) if m.group(1) else value
    m = _ARRAY.match(ch_type)
    if m:
        return [_chdb_value(item, m.group(1)) for item in raw]
    if _INT_TYPE_ALL.match(ch_type) and isinstance(raw, str):
        return int(raw)
    return raw


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot insert a {type(value).__name__}")


class ChdbClickHouse(ClickHouse):
    """chdb, the ClickHouse engine inside this process, on a data directory."""

    engine: ClassVar[str] = "chdb"

    def __init__(self, url: str, path: Path, database: str) -> None:
        super().__init__(url, database)
        self.path = path
        self._session: Any = _open_chdb(path)
        try:
            # JSON output keeps decimals exact as strings (parsed back into Decimal).
            self._run("SET output_format_json_quote_decimals = 1")
            self._run("SET output_format_json_quote_64bit_integers = 0")
        except BaseException:
            self.close()
            raise

    def _run(self, sql: str, fmt: str = "CSV") -> Any:
        from chdb._exceptions import ChdbError  # noqa: PLC0415

        if self._session is None:
            raise ClickHouseError("the chdb session is closed")
        try:
            return self._session.query(sql, fmt)
        except (ChdbError, RuntimeError) as exc:
            raise ClickHouseError(f"chdb ({self.path}, {self.database}): {exc}") from exc

    def use(self, database: str) -> None:
        self._run(f"USE {quote_identifier(database)}")
        self.database = database

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        self._run(render(sql, params))

    def query_with_columns(
        self, sql: str, params: Mapping[str, Any] | None = None
    ) -> tuple[list[tuple[Any, ...]], list[str]]:
        result = self._run(render(sql, params), "JSONCompactEachRowWithNamesAndTypes")
        lines = result.bytes().splitlines()
        if not lines:  # statements that return nothing
            return [], []
        names: list[str] = orjson.loads(lines[0])
        types: list[str] = orjson.loads(lines[1])
        rows = []
        for line in lines[2:]:
            raw = orjson.loads(line)
            rows.append(tuple(_chdb_value(v, t) for v, t in zip(raw, types, strict=True)))
        return rows, names

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        # One JSON array per row is the fastest text path measured into chdb 26.9 (about 2x a
        # VALUES literal, 4x JSONEachRow objects); best_effort parses the ISO datetimes orjson
        # writes. (chdb's Python() table function was faster still but cannot carry a UInt64
        # above 2**63, which household_key often is.)
        body = b"\n".join(orjson.dumps(row, default=_json_default) for row in rows)
        head = _insert_head(table, columns)
        sql = (
            f"{head} SETTINGS date_time_input_format = 'best_effort' "
            f"FORMAT JSONCompactEachRow\n{body.decode()}"
        )
        self._run(sql)

    def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            with _chdb_lock:
                session.close()


def _status_file_owner(path: Path) -> str | None:
    """Who holds the chdb directory's lock, if anyone does (the status file's first line)."""
    status = path / "status"
    try:
        fd = os.open(status, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            try:
                first = status.read_text(errors="replace").splitlines()[:1]
            except OSError:
                first = []
            return first[0].strip() if first else "another process"
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _open_chdb(path: Path) -> Any:
    from chdb._exceptions import ChdbError  # noqa: PLC0415
    from chdb.session import Session  # noqa: PLC0415

    path.mkdir(parents=True, exist_ok=True)
    with _chdb_lock:
        try:
            return Session(str(path))  # type: ignore[no-untyped-call]
        except (ChdbError, RuntimeError) as exc:
            # Only look at the lock after a failure: taking it first, even briefly, could make
            # the worker's own start fail in that instant.
            owner = _status_file_owner(path)
            if owner is not None:
                raise ChdbBusyError(
                    f"the chdb directory {path} is in use by another process ({owner}), "
                    "probably `loyalty worker`: chdb lets only one process open it at a time. "
                    "Stop the worker and run this again, or use a ClickHouse server "
                    "(LOYALTY_CLICKHOUSE_URL=clickhouse://host:port/db)."
                ) from exc
            raise ClickHouseError(f"cannot open chdb at {path}: {exc}") from exc


# -- connect ------------------------------------------------------------------------------


def connect(url: str) -> ClickHouse:
    """A client for ``url`` (see the module docstring); the database is created if missing."""
    parts = urlsplit(url)
    if parts.scheme == "clickhouse":
        database = quote_identifier(unquote(parts.path.strip("/")) or "default")
        host = parts.hostname or "127.0.0.1"
        port = parts.port or DEFAULT_SERVER_PORT
        user = unquote(parts.username or "default")
        password = unquote(parts.password or "")
        if database != "default":
            with ServerClickHouse(
                url, host, port, database="default", user=user, password=password
            ) as bootstrap:
                bootstrap.execute(f"CREATE DATABASE IF NOT EXISTS {database}")
        return ServerClickHouse(url, host, port, database=database, user=user, password=password)
    if parts.scheme == "chdb":
        raw_path = unquote(parts.netloc + parts.path)
        if not raw_path:
            raise ValueError(f"chdb URL needs a path: chdb:///path, got {url!r}")
        query = parse_qs(parts.query)
        database = quote_identifier(query.get("database", ["default"])[0])
        client = ChdbClickHouse(url, Path(raw_path).absolute(), database)
        try:
            client.execute(f"CREATE DATABASE IF NOT EXISTS {database}")
            client.use(database)
        except BaseException:
            client.close()
            raise
        return client
    raise ValueError(f"ClickHouse URL must be clickhouse://host:port/db or chdb:///path: {url!r}")


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


# -- a local server for tests and benchmarks ----------------------------------------------


def find_clickhouse_server() -> str | None:
    """The ``clickhouse-server`` binary (Debian puts it in /usr/sbin), or ``None``."""
    import shutil  # noqa: PLC0415

    for candidate in (shutil.which("clickhouse-server"), "/usr/sbin/clickhouse-server"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


_SERVER_CONFIG = """<?xml version="1.0"?>
<yandex>
    <logger>
        <level>information</level>
        <log>{dir}/clickhouse-server.log</log>
        <errorlog>{dir}/clickhouse-server.err.log</errorlog>
        <console>0</console>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <tcp_port>{tcp_port}</tcp_port>
    <http_port>{http_port}</http_port>
    <path>{dir}/data/</path>
    <tmp_path>{dir}/tmp/</tmp_path>
    <user_files_path>{dir}/user_files/</user_files_path>
    <format_schema_path>{dir}/format_schemas/</format_schema_path>
    <users_config>users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mark_cache_size>268435456</mark_cache_size>
    <max_concurrent_queries>100</max_concurrent_queries>
    <macros><loyalty_instance>{instance}</loyalty_instance></macros>
</yandex>
"""

_SERVER_USERS = """<?xml version="1.0"?>
<yandex>
    <profiles><default></default></profiles>
    <users>
        <default>
            <password></password>
            <networks><ip>127.0.0.1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas><default></default></quotas>
</yandex>
"""


class ClickHouseServerProcess(ManagedProcess):
    """The Debian ``clickhouse-server`` (18.16) as our child, on 127.0.0.1 and free ports.

    For tests and benchmarks: a default user without password, data and logs under
    ``data_dir``. Ready when it answers with the instance id from our own config (so a server
    that beat us to the port is never mistaken for ours).
    """

    name: ClassVar[str] = "clickhouse"

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        port: int | None = None,
        *,
        binary: str | None = None,
        startup_timeout: float = 60.0,
        stop_timeout: float = 15.0,
    ) -> None:
        super().__init__(data_dir, port, startup_timeout=startup_timeout, stop_timeout=stop_timeout)
        found = binary or find_clickhouse_server()
        if found is None:
            raise FileNotFoundError("clickhouse-server is not installed")
        self.binary = found
        self.http_port = 0
        self.instance = uuid.uuid4().hex

    @property
    def url(self) -> str:
        """``clickhouse://127.0.0.1:PORT/default``; append another database as needed."""
        return f"clickhouse://{self.host}:{self.port}/default"

    def url_for(self, database: str) -> str:
        return f"clickhouse://{self.host}:{self.port}/{quote_identifier(database)}"

    def command(self) -> list[str]:
        from stream.embedded import free_port  # noqa: PLC0415

        self.http_port = free_port()
        config = self.data_dir / "config.xml"
        config.write_text(
            _SERVER_CONFIG.format(
                dir=self.data_dir,
                tcp_port=self.port,
                http_port=self.http_port,
                instance=self.instance,
            )
        )
        (self.data_dir / "users.xml").write_text(_SERVER_USERS)
        return [self.binary, f"--config-file={config}"]

    def log_tail(self, max_bytes: int = 4000) -> str:
        err = self.data_dir / "clickhouse-server.err.log"
        try:
            extra = err.read_bytes()[-max_bytes:].decode("utf-8", "replace")
        except OSError:
            extra = ""
        return super().log_tail(max_bytes) + extra

    def is_ready(self, timeout: float) -> bool:
        from clickhouse_driver import Client, errors  # noqa: PLC0415

        client = Client(
            host=self.host, port=self.port, connect_timeout=timeout, send_receive_timeout=timeout
        )
        try:
            rows = client.execute(
                "SELECT substitution FROM system.macros WHERE macro = 'loyalty_instance'"
            )
        except errors.Error:
            return False
        finally:
            client.disconnect()
        return bool(rows == [(self.instance,)])
