"""`ywm servers`: adding a second real cluster, placement across two servers, listing, draining,
changing a server's tenant cap and connection budget."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import asyncpg
import orjson
import pytest

from ywmessaging.db import migrations, pg
from ywmessaging.db.dsn import PgTarget
from ywmessaging.errors import OperationError
from ywmessaging.ops.servers import add_server, set_sizing
from ywmessaging.registry.servers import budget_from_max_connections
from ywmessaging.sqlq import registry as rq
from ywmessaging.tenants.provisioning import Provisioner, ProvisioningError

if TYPE_CHECKING:
    from tests.second_cluster import TwoServers

# one second cluster and one two-server deployment per session, shared with test_move.py
pytest_plugins = ["tests.second_cluster"]


async def test_second_server_added_with_migrated_template(
    two_servers: TwoServers, two_pool: Any
) -> None:
    row = await rq(two_servers.settings.sql_dir).get_server(two_pool, two_servers.second_id)
    assert (row["name"], row["state"], row["max_tenants"]) == ("second", "active", 50)
    assert (row["conn_budget"], row["max_connections"]) == (12, 30)
    want = migrations.code_version(two_servers.settings.sql_dir, "tenant")
    assert row["template_version"] == want
    conn = await pg.connect(two_servers.second.target)
    try:
        assert await pg.database_exists(conn, row["template_db"])
    finally:
        await conn.close()


async def test_budget_beyond_max_connections_refused(
    two_servers: TwoServers, two_pool: Any
) -> None:
    before = await two_pool.fetchval("SELECT count(*) FROM db_servers")
    async with two_pool.acquire() as conn:
        # 30 max_connections - 3 superuser_reserved_connections = 27 usable
        with pytest.raises(OperationError, match="exceeds"):
            await add_server(conn, two_servers.settings, two_servers.box, name="toobig",
                             dsn=two_servers.second.target.dsn(), budget=28)
    assert await two_pool.fetchval("SELECT count(*) FROM db_servers") == before


async def test_add_unreachable_server_is_one_line_exit_1(
    two_servers: TwoServers, two_pool: Any
) -> None:
    out = two_servers.ywm("servers", "add", "--name", "ghost", "--dsn", two_servers.dead_dsn(),
               "--max-tenants", "5", "--budget", "4")
    assert out.returncode == 1, out.stderr
    assert out.stderr.startswith("ywm: ") and out.stderr.count("\n") == 1, out.stderr
    assert "cannot reach" in out.stderr
    assert await two_pool.fetchval("SELECT count(*) FROM db_servers WHERE name='ghost'") == 0


def _expected(servers: list[Any], counts: dict[int, int]) -> int | None:
    """The placement policy as specified: least tenants/max_tenants among active servers with
    room, then higher weight, then lower id."""
    room = [s for s in servers if s["state"] == "active" and counts[s["id"]] < s["max_tenants"]]
    if not room:
        return None
    best = min(room, key=lambda s: (counts[s["id"]] / s["max_tenants"], -s["weight"], s["id"]))
    return int(best["id"])


async def test_placement_spreads_respects_capacity_and_draining(
    two_servers: TwoServers, two_pool: Any
) -> None:
    q = rq(two_servers.settings.sql_dir)
    prov = Provisioner(two_pool, two_servers.settings, two_servers.box)
    ids = (two_servers.primary_id, two_servers.second_id)

    async def counts() -> dict[int, int]:
        return {int(r["id"]): int(r["tenant_count"]) for r in await q.list_servers(two_pool)}

    async def cap(sid: int, extra: int) -> None:  # what `ywm servers set ID --max-tenants`
        async with two_pool.acquire() as conn:
            await set_sizing(conn, two_servers.settings, two_servers.box, str(sid),
                             max_tenants=(await counts())[sid] + extra)

    try:
        for sid in ids:  # room for exactly one more on each
            await cap(sid, 1)
        landed: list[int] = []
        for i in range(2):
            before = await counts()
            want = _expected(list(await q.list_servers(two_pool)), before)
            made = await prov.provision(f"Spread {i}")
            assert made.server_id == want
            landed.append(made.server_id)
        assert sorted(landed) == sorted(ids)
        with pytest.raises(ProvisioningError,
                           match=r"no active database server has room.*ywm servers set"):
            await prov.provision("One Too Many")

        await cap(two_servers.primary_id, 2)  # nearly full: `second` is the least loaded
        await cap(two_servers.second_id, 1000)
        out = two_servers.ywm("servers", "drain", str(two_servers.second_id))
        assert out.returncode == 0, out.stderr
        assert "draining" in out.stdout
        assert (await prov.provision("While Draining")).server_id == two_servers.primary_id
        out = two_servers.ywm("servers", "activate", "second")
        assert out.returncode == 0, out.stderr
        assert (await prov.provision("Active Again")).server_id == two_servers.second_id
    finally:
        await prov.close()
        await two_pool.execute("UPDATE db_servers SET max_tenants = 500 WHERE id = $1", ids[0])
        await two_pool.execute("UPDATE db_servers SET max_tenants = 50 WHERE id = $1", ids[1])
        await q.set_server_state(two_pool, ids[1], "active")


async def test_tenant_on_second_server_reachable_as_its_role(
    two_servers: TwoServers, two_pool: Any, pg_admin: PgTarget
) -> None:
    t = await two_servers.provision_on(two_pool, two_servers.second_id, "Second Street Church")
    target = await two_servers.role_target(two_pool, t.id)
    assert target.port == two_servers.second.port
    conn = await pg.connect(target)
    try:
        await conn.execute("INSERT INTO groups (name) VALUES ('Ushers')")
        assert await conn.fetchval("SELECT count(*) FROM groups") == 1
        assert await conn.fetchval("SELECT church_name FROM settings") == "Second Street Church"
    finally:
        await conn.close()
    admin = await pg.connect(pg_admin)
    try:
        assert not await pg.database_exists(admin, t.db_name)
        assert not await pg.role_exists(admin, t.db_role)
    finally:
        await admin.close()
    with pytest.raises(asyncpg.InvalidAuthorizationSpecificationError):
        await pg.connect(pg_admin.as_user(t.db_role, target.password).with_db(t.db_name))


async def test_servers_list_counts_live_connections_and_unreachable(
    two_servers: TwoServers, two_pool: Any
) -> None:
    t = await two_servers.provision_on(two_pool, two_servers.second_id, "Busy Church")
    target = await two_servers.role_target(two_pool, t.id)
    held = [await pg.connect(target) for _ in range(3)]
    try:
        out = two_servers.ywm("servers", "list", "--json")
        assert out.returncode == 0, out.stderr
        rows = {r["name"]: r for r in orjson.loads(out.stdout)}
        counts = {int(r["id"]): int(r["tenant_count"])
                  for r in await rq(two_servers.settings.sql_dir).list_servers(two_pool)}
        second = rows["second"]
        assert second["open_connections"] == 3
        assert second["tenants"] == counts[two_servers.second_id]
        assert (second["max_tenants"], second["budget"], second["state"]) == (50, 12, "active")
        assert second["template_version"] == migrations.code_version(
            two_servers.settings.sql_dir, "tenant")
        assert isinstance(rows["primary"]["open_connections"], int)
        table = two_servers.ywm("servers", "list")
        assert table.returncode == 0, table.stderr
        header, *lines = table.stdout.splitlines()
        assert header.split() == ["ID", "NAME", "HOST:PORT", "STATE", "TENANTS", "MAX",
                                  "BUDGET", "OPEN", "TEMPLATE"]
        line = next(ln.split() for ln in lines if " second " in f" {ln} ")
        assert line[2] == f"127.0.0.1:{two_servers.second.port}" and line[7] == "3"
    finally:
        for c in held:
            await c.close()
    two_servers.second.stop()
    try:
        out = two_servers.ywm("servers", "list")
        assert out.returncode == 0, out.stderr
        line = next(ln.split() for ln in out.stdout.splitlines() if " second " in f" {ln} ")
        assert line[7] == "unreachable"
    finally:
        two_servers.second.start()


def _one_line_error(out: Any, code: int) -> str:
    assert out.returncode == code, (out.returncode, out.stdout, out.stderr)
    assert out.stderr.startswith("ywm: ") and out.stderr.count("\n") == 1, out.stderr
    return str(out.stderr)


async def test_servers_set_changes_cap_and_budget_within_what_the_server_allows(
    two_servers: TwoServers, two_pool: Any
) -> None:
    sid = two_servers.second_id

    async def sizing() -> tuple[int, int, int]:
        row = await rq(two_servers.settings.sql_dir).get_server(two_pool, sid)
        return row["max_tenants"], row["conn_budget"], row["max_connections"]

    try:
        out = two_servers.ywm("servers", "set", "second", "--max-tenants", "80",
                              "--budget", "20", "--json")
        assert out.returncode == 0, out.stderr
        printed = orjson.loads(out.stdout)
        assert (printed["max_tenants"], printed["conn_budget"]) == ("80", "20")
        assert printed["usable_connections"] == 27  # 30 max_connections - 3 for superusers
        assert await sizing() == (80, 20, 30)
        # Beyond max_connections - superuser_reserved_connections: refused, nothing written.
        assert "exceeds" in _one_line_error(
            two_servers.ywm("servers", "set", str(sid), "--budget", "28"), 1)
        assert await sizing() == (80, 20, 30)
        out = two_servers.ywm("servers", "set", str(sid), "--budget", "28", "--force")
        assert out.returncode == 0, out.stderr
        assert await sizing() == (80, 28, 30)
        out = two_servers.ywm("servers", "set", "second", "--budget", "auto")
        assert out.returncode == 0, out.stderr
        assert await sizing() == (80, budget_from_max_connections(30, 3), 30)
        assert "27 usable connections" in out.stdout
        # Bad input is one line and exit 2; an unknown server one line and exit 1.
        for bad in (["--max-tenants", "0"], ["--budget", "0"], ["--budget", "lots"], []):
            _one_line_error(two_servers.ywm("servers", "set", "second", *bad), 2)
        assert "no database server 'nope'" in _one_line_error(
            two_servers.ywm("servers", "set", "nope", "--max-tenants", "5"), 1)
        assert await sizing() == (80, budget_from_max_connections(30, 3), 30)
    finally:
        await two_pool.execute("UPDATE db_servers SET max_tenants = 50, conn_budget = 12"
                               " WHERE id = $1", sid)


async def test_servers_set_when_the_server_does_not_answer(
    two_servers: TwoServers, two_pool: Any
) -> None:
    sid = two_servers.second_id
    two_servers.second.stop()
    try:
        # A budget cannot be checked: refused unless forced; a tenant cap needs no check.
        assert "cannot read max_connections" in _one_line_error(
            two_servers.ywm("servers", "set", "second", "--budget", "10"), 1)
        _one_line_error(two_servers.ywm("servers", "set", "second", "--budget", "auto",
                                        "--force"), 1)
        out = two_servers.ywm("servers", "set", "second", "--budget", "10", "--force",
                              "--max-tenants", "60")
        assert out.returncode == 0, out.stderr
        row = await rq(two_servers.settings.sql_dir).get_server(two_pool, sid)
        assert (row["max_tenants"], row["conn_budget"], row["max_connections"]) == (60, 10, 30)
    finally:
        two_servers.second.start()
        await two_pool.execute("UPDATE db_servers SET max_tenants = 50, conn_budget = 12"
                               " WHERE id = $1", sid)
