"""Each server's template database: created once, migrated first, never pooled."""

from __future__ import annotations

import asyncio
from typing import Any

from ..config import Settings
from ..crypto import SecretBox
from ..db import migrations, pg
from ..registry.servers import admin_target
from ..sqlq import registry as rq


async def ensure_template(conn: Any, settings: Settings, box: SecretBox, server: Any) -> int:
    """Create the server's template database if missing, migrate it, record its version.

    The yoyo connection to the template is closed before this returns: a session on the
    template makes `CREATE DATABASE ... TEMPLATE` wait and fail.
    """
    admin = admin_target(server, box)
    await pg.ensure_database(admin, server["template_db"])
    await pg.restrict_connect(admin.with_db(server["template_db"]))
    result = await asyncio.to_thread(
        migrations.apply, admin.with_db(server["template_db"]), settings.sql_dir, "tenant"
    )
    await rq(settings.sql_dir).set_server_template_version(conn, server["id"], result.to_version)
    return result.to_version
