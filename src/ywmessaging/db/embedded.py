"""The embedded PostgreSQL (the `pgserver` wheel) for `ywm dev` and tests without a server."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from .dsn import PgTarget


def start(pgdata: Path, cleanup_mode: str | None = "stop") -> tuple[PgTarget, Any]:
    """Start (or reuse) an embedded cluster in `pgdata`; returns its target and handle.

    `cleanup_mode`: "stop" stops it when the process exits, "delete" also removes `pgdata`,
    None leaves it running.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

        pgdata.mkdir(parents=True, exist_ok=True)
        server = pgserver.get_server(pgdata, cleanup_mode=cleanup_mode)  # type: ignore[attr-defined]
    target = PgTarget.parse(server.get_uri())
    return target, server


def bin_dir() -> Path:
    """Where the wheel keeps its PostgreSQL programs (pg_dump, initdb, ...)."""
    import pgserver

    return Path(pgserver.__file__).parent / "pginstall" / "bin"
