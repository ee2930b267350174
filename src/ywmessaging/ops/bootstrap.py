"""Registry first: create and migrate the registry, register the first server, migrate templates."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from ..config import Settings
from ..crypto import SecretBox
from ..db import migrations, pg
from ..db.dsn import PgTarget
from ..sqlq import registry as rq
from ..tenants.template import ensure_template


@dataclass
class BootstrapResult:
    """What preparing the registry did."""

    registry_from: int
    registry_to: int
    registered_server: str | None = None
    templates: dict[str, int] = field(default_factory=dict)


def registry_target(settings: Settings) -> PgTarget:
    """The registry database from DATABASE_URL."""
    return PgTarget.parse(settings.require_database_url())


async def migrate_registry(settings: Settings) -> migrations.ApplyResult:
    """Create the registry database if missing and apply the registry migrations."""
    target = registry_target(settings)
    await pg.ensure_database(target.with_db("postgres"), target.database)
    await pg.restrict_connect(target)
    return await asyncio.to_thread(migrations.apply, target, settings.sql_dir, "registry")


async def bootstrap(settings: Settings, *, templates: bool = True) -> BootstrapResult:
    """Registry migrations, the first `db_servers` row, then every active server's template."""
    reg = await migrate_registry(settings)
    box = SecretBox(settings.require_secret_key())
    result = BootstrapResult(registry_from=reg.from_version, registry_to=reg.to_version)
    conn = await pg.connect(registry_target(settings))
    try:
        # one bootstrap at a time per registry (two operators running `ywm migrate`)
        await conn.execute("SELECT pg_advisory_lock(hashtext('ywm_bootstrap'))")
        try:
            from ..registry.servers import ensure_registry_server

            row = await ensure_registry_server(conn, settings, box)
            if row is not None:
                result.registered_server = row["name"]
            if templates:
                for server in await rq(settings.sql_dir).list_servers(conn):
                    if server["state"] == "down":
                        continue
                    result.templates[server["name"]] = await ensure_template(
                        conn, settings, box, server
                    )
        finally:
            await conn.execute("SELECT pg_advisory_unlock(hashtext('ywm_bootstrap'))")
    finally:
        await conn.close()
    return result
