"""The engine interface every ClickHouse backend implements (``ClickHouse``), and its errors."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, ClassVar, Self

from stream.clickhouse.params import quote_identifier
from stream.errors import ClickHouseError as ClickHouseError  # noqa: PLC0414 (re-exported: its old home)

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
    def insert_json_rows(self, table: str, body: bytes) -> None:
        """Insert rows that ClickHouse parses itself: ``JSONCompactEachRow``, one JSON array
        per line with a value for every column of ``table`` in its order, in one statement.

        Strict: a string must be a JSON string, a number a JSON number, no nulls. Raises
        :class:`ClickHouseDataError` if a row does not fit (or a view's check refuses it).
        """

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


# -- chdb (embedded) ----------------------------------------------------------------------

_chdb_lock = threading.Lock()
