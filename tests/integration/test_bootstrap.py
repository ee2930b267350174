"""The registry and template come up migrated and the registry's server is registered."""

from __future__ import annotations

from typing import Any

from ywmessaging.config import Settings
from ywmessaging.db import migrations
from ywmessaging.ops.bootstrap import bootstrap


async def test_first_server_registered_with_budget(settings: Settings, registry_conn: Any) -> None:
    rows = await registry_conn.fetch("SELECT * FROM db_servers")
    assert len(rows) == 1
    server = rows[0]
    assert server["name"] == "primary"
    assert server["state"] == "active"
    assert 0 < server["conn_budget"] < server["max_connections"]
    assert server["template_version"] == migrations.code_version(settings.sql_dir, "tenant")


async def test_bootstrap_is_idempotent(settings: Settings, registry_conn: Any) -> None:
    again = await bootstrap(settings)
    assert again.registered_server is None
    assert again.registry_from == again.registry_to
    assert await registry_conn.fetchval("SELECT count(*) FROM db_servers") == 1
