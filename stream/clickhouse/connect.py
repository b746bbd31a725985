"""``connect(url)``: the engine named by ``LOYALTY_CLICKHOUSE_URL``."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from stream.clickhouse.chdb import ChdbClickHouse
from stream.clickhouse.engine import ClickHouse
from stream.clickhouse.params import quote_identifier
from stream.clickhouse.server import DEFAULT_SERVER_PORT, ServerClickHouse

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
