"""The development deployment under YWM_DATA_DIR, found by operator commands by themselves.

`ywm dev` keeps an embedded PostgreSQL in `<data_dir>/pg` and its key in
`<data_dir>/secret_key`. When neither DATABASE_URL nor YWM_SECRET_KEY is set and that
deployment exists, `ywm tenants list`, `doctor`, `servers list`, … attach to it (starting its
PostgreSQL when `ywm dev` is not running, and stopping it again when they end, unless `ywm dev`
still uses it) and say so in one line on stderr. `ywm serve` never does: a deployment states
its settings.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from ..config import Settings
from ..db import embedded
from ..db.dsn import PgTarget

# Commands that reach the registry and may use the development deployment.
DEV_AWARE_COMMANDS = frozenset({"migrate", "tenants", "servers", "sessions", "inbox", "doctor",
                                "worker"})


def pgdata(settings: Settings) -> Path:
    """Where `ywm dev` keeps its embedded cluster."""
    return settings.data_dir / "pg"


def key_file(settings: Settings) -> Path:
    """Where `ywm dev` keeps its secret key."""
    return settings.data_dir / "secret_key"


def exists(settings: Settings) -> bool:
    """Whether `ywm dev` has made a deployment under YWM_DATA_DIR."""
    return (pgdata(settings) / "PG_VERSION").is_file() and key_file(settings).is_file()


def registry_target(server: PgTarget, settings: Settings) -> PgTarget:
    """The registry database on the embedded server."""
    return server.with_db(f"{settings.db_prefix}_registry")


def attach(settings: Settings) -> tuple[Settings, Any] | None:
    """The settings of the development deployment and a handle to release (None: there is
    none, or DATABASE_URL or YWM_SECRET_KEY is set)."""
    if settings.database_url or settings.secret_key or not exists(settings):
        return None
    server, handle = embedded.start(pgdata(settings), cleanup_mode="stop")
    target = registry_target(server, settings)
    key = key_file(settings).read_text().strip()
    return settings.with_(database_url=target.dsn(), secret_key=key), handle


def exports(settings: Settings, target: PgTarget) -> str:
    """Shell lines that point other programs at this deployment (the key stays in its file)."""
    return (f"export DATABASE_URL={shlex.quote(target.dsn())} "
            f"YWM_SECRET_KEY=\"$(cat {shlex.quote(str(key_file(settings)))})\"")
