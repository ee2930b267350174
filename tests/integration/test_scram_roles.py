"""Tenant roles get a client-computed SCRAM verifier that a real server accepts at login."""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncpg
import pytest

from ywmessaging.crypto import TENANT_SCRAM_ITERATIONS, scram_verifier
from ywmessaging.db import pg

if TYPE_CHECKING:
    from tests.second_cluster import SecondCluster

pytest_plugins = ["tests.second_cluster"]


@pytest.mark.parametrize("iterations", [4096, TENANT_SCRAM_ITERATIONS])
async def test_verifier_logs_in_under_scram_and_refuses_a_wrong_password(
    second_server: SecondCluster, iterations: int,
) -> None:
    role, password = "ywm_scram_probe", "correct horse battery staple"
    admin = await pg.connect(second_server.target)
    try:
        await admin.execute(f"DROP ROLE IF EXISTS {role}")
        verifier = scram_verifier(password, iterations)
        await admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{verifier}'")
        stored = await admin.fetchval("SELECT rolpassword FROM pg_authid WHERE rolname=$1", role)
        assert stored.startswith(f"SCRAM-SHA-256${iterations}:")
        # only this role authenticates with SCRAM; everyone else keeps trust
        hba = second_server.data / "pg_hba.conf"
        original = hba.read_text()
        hba.write_text(f"host all {role} 127.0.0.1/32 scram-sha-256\n" + original)
        await admin.execute("SELECT pg_reload_conf()")
        try:
            as_role = second_server.target.as_user(role, password)
            conn = await pg.connect(as_role)
            assert await conn.fetchval("SELECT current_user") == role
            await conn.close()
            with pytest.raises(asyncpg.InvalidPasswordError):
                await pg.connect(second_server.target.as_user(role, password + "x"))
        finally:
            hba.write_text(original)
            await admin.execute("SELECT pg_reload_conf()")
            await admin.execute(f"DROP ROLE IF EXISTS {role}")
    finally:
        await admin.close()
