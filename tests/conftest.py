"""Shared fixtures: one PostgreSQL server, one migrated registry and template per session."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.pgcluster import drop_everything, find_server
from ywmessaging.config import Settings
from ywmessaging.crypto import SecretBox
from ywmessaging.db import pg
from ywmessaging.db.dsn import PgTarget
from ywmessaging.ops.bootstrap import bootstrap

TEST_SECRET = "test-secret-key-" + "x" * 32
# Plans with room for tests that are not about plans (see the file).
ROOMY_CATALOGUE = Path(__file__).with_name("billing_roomy.toml")


@pytest.fixture(scope="session")
async def pg_admin() -> AsyncIterator[PgTarget]:
    """Admin access to the test server (maintenance database)."""
    target, handle = await find_server()
    yield target
    if handle is not None:
        handle.cleanup()


@pytest.fixture(scope="session")
def db_prefix() -> str:
    """A prefix unique to this test session, so parallel runs never collide."""
    return f"ywmt{os.getpid() % 10000}{secrets.token_hex(2)}"


@pytest.fixture(scope="session")
async def settings(pg_admin: PgTarget, db_prefix: str) -> AsyncIterator[Settings]:
    """Settings pointing at this session's registry, migrated, with its template ready."""
    registry = pg_admin.with_db(f"{db_prefix}_registry")
    s = Settings(
        database_url=registry.dsn(), secret_key=TEST_SECRET, db_prefix=db_prefix,
        log_format="console", log_level=os.environ.get("YWM_TEST_LOG_LEVEL", "warning"),
        billing_catalogue=ROOMY_CATALOGUE,
    )
    try:
        await bootstrap(s)
        # The suite signs up hundreds of churches on this one server, more when pytest sets a
        # module's fixtures up again (a shuffled order): the default cap of 500 tenants would
        # make sign-ups fail for a reason no test is about. Tests of the cap use their own
        # registry (tests/second_cluster.py).
        conn = await pg.connect(registry)
        try:
            await conn.execute("UPDATE db_servers SET max_tenants = 100000")
        finally:
            await conn.close()
        yield s
    finally:
        await drop_everything(pg_admin, db_prefix)


@pytest.fixture(scope="session")
def box() -> SecretBox:
    """The secret box matching `settings`."""
    return SecretBox(TEST_SECRET)


@pytest.fixture
async def registry_conn(settings: Settings) -> AsyncIterator[Any]:
    """A connection to this session's registry database."""
    assert settings.database_url
    conn = await pg.connect(PgTarget.parse(settings.database_url))
    yield conn
    await conn.close()
