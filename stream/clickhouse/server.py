"""A ClickHouse server through clickhouse-driver (native protocol; tested on 18.16)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from itertools import chain, islice
from typing import Any, ClassVar

import orjson

from stream.clickhouse.engine import ClickHouse, _insert_head
from stream.clickhouse.params import quote_identifier, render
from stream.errors import (
    CLICKHOUSE_DATA_ERROR_CODES,
    ClickHouseDataError,
    ClickHouseError,
    ClickHouseUnavailable,
)

DEFAULT_SERVER_PORT = 9000
_INT_RANGE = re.compile(r"^(U?)Int(8|16|32|64)$")
_DECIMAL = re.compile(r"^Decimal\((\d+),\s*(\d+)\)$")


def native_column(values: list[Any], ch_type: str, name: str) -> list[Any]:
    """A column of JSON values (``orjson.loads``) as clickhouse-driver takes it for
    ``ch_type``, checked as strictly as :meth:`ChdbClickHouse.insert_json_rows` parses
    (``ClickHouseDataError``). Whole-column passes (``map``, ``min``/``max``), not Python
    per value, except the decimals' conversion."""
    if not values:
        return values
    types = set(map(type, values))
    if ch_type == "String":
        if types == {str}:
            return values
    elif m := _INT_RANGE.match(ch_type):
        bits = int(m.group(2))
        low, high = (0, 2**bits) if m.group(1) else (-(2 ** (bits - 1)), 2 ** (bits - 1))
        if types == {int} and low <= min(values) and max(values) < high:
            return values
    elif m := _DECIMAL.match(ch_type):
        if types <= {int, float, str}:
            try:
                numbers = list(map(Decimal, map(str, values)))
            except InvalidOperation:
                numbers = [Decimal("NaN")]
            limit = Decimal(10) ** (int(m.group(1)) - int(m.group(2)))
            if all(map(Decimal.is_finite, numbers)) and max(map(abs, numbers)) < limit:
                return numbers
    elif ch_type.startswith("Array(") and ch_type.endswith(")"):
        if types == {list}:
            inner = list(chain.from_iterable(values))
            flat = native_column(inner, ch_type[6:-1], name)
            if flat is inner:  # the values as they are
                return values
            items = iter(flat)
            return [list(islice(items, n)) for n in map(len, values)]
    else:
        raise ValueError(f"{name}: type {ch_type} is not supported here")
    bad = next((v for v in values if type(v) not in (str, int, float, list)), values[0])
    raise ClickHouseDataError(f"{name} ({ch_type}): a value does not fit, e.g. {bad!r:.80}")


# -- server (clickhouse-driver) -----------------------------------------------------------


class ServerClickHouse(ClickHouse):
    """A ClickHouse server over the native protocol (clickhouse-driver)."""

    engine: ClassVar[str] = "server"

    def __init__(
        self, url: str, host: str, port: int, *, database: str, user: str, password: str
    ) -> None:
        from clickhouse_driver import Client  # noqa: PLC0415 (only the server engine needs it)

        super().__init__(url, database)
        self.address = f"{host}:{port}"
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
        self._types: dict[str, list[tuple[str, str]]] = {}

    def _run(self, sql: str, *args: Any, **kwargs: Any) -> Any:
        from clickhouse_driver import errors  # noqa: PLC0415

        try:
            return self._client.execute(sql, *args, **kwargs)
        except (errors.NetworkError, errors.SocketTimeoutError, OSError, EOFError) as exc:
            raise ClickHouseUnavailable(self.address, f"{exc} (database {self.database})") from exc
        except errors.Error as exc:
            if getattr(exc, "code", None) in CLICKHOUSE_DATA_ERROR_CODES:
                raise ClickHouseDataError(f"ClickHouse server ({self.database}): {exc}") from exc
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

    def insert_json_rows(self, table: str, body: bytes) -> None:
        # The Native protocol carries no inline text data (and 18.16 times out on inline
        # VALUES): the rows are parsed here and sent as columns. Python per row, on the
        # secondary engine; the checks follow the column types as ClickHouse's would.
        types = self._types.get(table)
        if types is None:
            described = self._run(f"DESCRIBE TABLE {quote_identifier(table)}")
            types = self._types[table] = [(str(row[0]), str(row[1])) for row in described]
        try:
            rows = list(map(orjson.loads, filter(bytes.strip, body.splitlines())))
        except orjson.JSONDecodeError as exc:
            raise ClickHouseDataError(f"ClickHouse server: a row is not JSON: {exc}") from None
        if not rows:
            return
        if set(map(type, rows)) != {list} or set(map(len, rows)) != {len(types)}:
            raise ClickHouseDataError(
                f"ClickHouse server: a row of {table} must be a JSON array of {len(types)}"
            )
        columns = [
            native_column(list(column), ch_type, name)
            for column, (name, ch_type) in zip(zip(*rows, strict=True), types, strict=True)
        ]
        head = _insert_head(table, [name for name, _ in types])
        self._run(f"{head} VALUES", columns, columnar=True)

    def close(self) -> None:
        self._client.disconnect()
