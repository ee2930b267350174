"""`ywm doctor` on its own registry: clean exits 0; each kind of drift is found and exits 1."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from tests.pgcluster import drop_everything
from ywmessaging.__main__ import build_parser
from ywmessaging.config import Settings
from ywmessaging.crypto import SecretBox
from ywmessaging.db import pg
from ywmessaging.db.dsn import PgTarget, quote_ident
from ywmessaging.ops.bootstrap import bootstrap
from ywmessaging.ops.doctor import KINDS, diagnose
from ywmessaging.tenants.provisioning import Provisioned, Provisioner

SECRET = "doctor-test-secret-" + "z" * 32


@pytest.fixture(scope="module")
async def deployment(settings: Settings, pg_admin: PgTarget,
                     ) -> AsyncIterator[tuple[Settings, list[Provisioned]]]:
    """A registry, template and four tenants of this module's own, dropped at the end."""
    prefix = settings.db_prefix + "d"
    s = Settings(database_url=pg_admin.with_db(f"{prefix}_registry").dsn(), secret_key=SECRET,
                 db_prefix=prefix, log_format="console", log_level="warning")
    try:
        await bootstrap(s)
        pool = await pg.create_pool(pg_admin.with_db(f"{prefix}_registry"), max_size=4)
        prov = Provisioner(pool, s, SecretBox(SECRET))
        try:
            made = await asyncio.gather(*(prov.provision(f"Doctor {i}") for i in range(4)))
        finally:
            await prov.close()
            await pool.close()
        yield s, list(made)
    finally:
        await drop_everything(pg_admin, prefix)


async def doctor(s: Settings, capsys: Any) -> tuple[int, dict[str, Any]]:
    """Run `ywm doctor --json` in-process; (exit code, parsed output)."""
    args = build_parser().parse_args(["doctor", "--json"])
    code = int(await args.func(args, s))
    return code, orjson.loads(capsys.readouterr().out)


async def test_clean_deployment_has_no_findings(deployment: Any, capsys: Any) -> None:
    s, _ = deployment
    assert await doctor(s, capsys) == (0, {"ok": True, "findings": []})


async def test_each_kind_of_drift_is_found(deployment: Any, pg_admin: PgTarget,
                                           capsys: Any) -> None:
    s, tenants = deployment
    gone, behind, lagging = tenants[0], tenants[1], tenants[2]
    orphan = f"{s.db_prefix}_t_{uuid.uuid4().hex}"
    orphan_role = f"{s.db_prefix}_r_{uuid.uuid4().hex}"
    admin = await pg.connect(pg_admin)
    registry = await pg.connect(PgTarget.parse(s.database_url or ""))
    try:
        await admin.execute(f"CREATE DATABASE {quote_ident(orphan)}")
        await admin.execute(f"CREATE ROLE {quote_ident(orphan_role)}")
        await pg.drop_database(admin, gone.db_name)
        await registry.execute("UPDATE tenants SET schema_version = 0 WHERE id = $1", behind.id)
        await registry.execute("UPDATE db_servers SET template_version = 0")
        await registry.execute(
            "INSERT INTO db_servers (name, host, port, admin_user, template_db, conn_budget, "
            "state) VALUES ('dead', '127.0.0.1', 1, 'postgres', $1, 10, 'draining')",
            f"{s.db_prefix}_template")
    finally:
        await admin.close()
        await registry.close()
    lag = await pg.connect(pg_admin.with_db(lagging.db_name))
    try:  # the database itself behind while the registry says current
        await lag.execute("DELETE FROM _yoyo_migration")
    finally:
        await lag.close()

    code, out = await doctor(s, capsys)
    assert code == 1 and out["ok"] is False
    found = {(f["kind"], f["database"]) for f in out["findings"]}
    assert any(f["kind"] == "orphan_role" and orphan_role in f["detail"]
               for f in out["findings"])
    found.discard(("orphan_role", None))
    assert found == {
        ("orphan_database", orphan),
        ("missing_database", gone.db_name),
        ("tenant_behind", behind.db_name),
        ("tenant_behind", lagging.db_name),
        ("stale_template", f"{s.db_prefix}_template"),
        ("server_unreachable", None),
    }
    assert all(f["hint"] and f["kind"] in KINDS for f in out["findings"])
    lines = [f.line() for f in await diagnose(s)]
    assert sorted(line.split()[0] for line in lines) == sorted(
        [k for k, _ in found] + ["orphan_role"])

    environ = {**os.environ, "DATABASE_URL": s.database_url or "", "YWM_SECRET_KEY": SECRET,
               "YWM_DB_PREFIX": s.db_prefix}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ywmessaging", "doctor", env=environ,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    stdout, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 1
    assert "orphan_database server primary database " + orphan in stdout.decode()
