"""chdb: the ClickHouse engine embedded in this process (one directory per process)."""

from __future__ import annotations

import fcntl
import os
import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import orjson

from stream.clickhouse.engine import ClickHouse, _chdb_lock, _insert_head
from stream.clickhouse.params import _ARRAY, _DATETIME, _INT_TYPE_ALL, quote_identifier, render
from stream.errors import (
    CLICKHOUSE_DATA_ERROR_CODES,
    ClickHouseDataError,
    ClickHouseError,
    MissingExtra,
)
from stream.errors import ChdbBusyError as ChdbBusyError  # noqa: PLC0414 (re-exported: its old home)

_ERROR_CODE = re.compile(r"^\s*Code: (\d+)\.")


#: JSON input as strict as the Python path's checks: no number or bool read as a string, no
#: bool as a number, no null as a column's default.
_STRICT_JSON = ", ".join(
    f"{name} = 0"
    for name in (
        "input_format_json_read_numbers_as_strings",
        "input_format_json_read_bools_as_numbers",
        "input_format_json_read_bools_as_strings",
        "input_format_json_read_arrays_as_strings",
        "input_format_json_read_objects_as_strings",
        "input_format_null_as_default",
    )
)


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
            code = _ERROR_CODE.match(str(exc))
            if code is not None and int(code.group(1)) in CLICKHOUSE_DATA_ERROR_CODES:
                raise ClickHouseDataError(f"chdb ({self.path}, {self.database}): {exc}") from exc
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

    def insert_json_rows(self, table: str, body: bytes) -> None:
        if not body.strip():
            return
        try:
            text = body.decode()
        except UnicodeDecodeError as exc:
            raise ClickHouseDataError(
                f"chdb ({self.path}): the rows are not UTF-8: {exc}"
            ) from None
        # ClickHouse parses the rows itself, with the GIL released: no Python per row here.
        self._run(
            f"INSERT INTO {quote_identifier(table)} SETTINGS {_STRICT_JSON} "
            f"FORMAT JSONCompactEachRow\n{text}"
        )

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
    try:
        from chdb._exceptions import ChdbError  # noqa: PLC0415
        from chdb.session import Session  # noqa: PLC0415
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] != "chdb":
            raise
        # the production image has no chdb: it is in the `demo` extra
        raise MissingExtra(
            "the embedded ClickHouse (LOYALTY_CLICKHOUSE_URL=chdb://...; a server is "
            "clickhouse://host:9000/db)",
            "demo",
            "chdb",
        ) from None

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
