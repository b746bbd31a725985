"""A ClickHouse server through clickhouse-driver (native protocol; tested on 18.16)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from stream.clickhouse.engine import ClickHouse, _insert_head
from stream.clickhouse.params import render
from stream.errors import ClickHouseError, ClickHouseUnavailable

DEFAULT_SERVER_PORT = 9000


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

    def _run(self, sql: str, *args: Any, **kwargs: Any) -> Any:
        from clickhouse_driver import errors  # noqa: PLC0415

        try:
            return self._client.execute(sql, *args, **kwargs)
        except (errors.NetworkError, errors.SocketTimeoutError, OSError, EOFError) as exc:
            raise ClickHouseUnavailable(self.address, f"{exc} (database {self.database})") from exc
        except errors.Error as exc:
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
