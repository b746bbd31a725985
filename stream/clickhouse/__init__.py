"""ClickHouse: one small client over two engines, plus the versioned migrations.

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
