"""A Debian ``clickhouse-server`` (18.16) as a child process, for tests and development."""

from __future__ import annotations

import os
import uuid
from typing import ClassVar

from stream.clickhouse.params import quote_identifier
from stream.devstack.processes import ManagedProcess

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
        from stream.devstack.processes import free_port  # noqa: PLC0415

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
