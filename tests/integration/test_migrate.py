"""`ywm migrate` over 50 real tenant databases: failures, retry, --tenant, resume, dry run,
concurrent runs and the command's exit codes.

The module has its own registry and template (another db prefix) because its migrations move
the template past the code's version. Each test adds the migrations it needs to this module's
copy of the sql folder, numbered after the newest one there, and starts from a deployment
brought current by the `env` fixture, so the tests pass in any order and alone.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.pgcluster import drop_everything
from ywmessaging.__main__ import build_parser
from ywmessaging.config import Settings
from ywmessaging.crypto import SecretBox
from ywmessaging.db import migrations, pg
from ywmessaging.db.dsn import PgTarget
from ywmessaging.errors import ConfigError
from ywmessaging.ops.bootstrap import bootstrap
from ywmessaging.ops.doctor import plan, probe_versions
from ywmessaging.ops.fanout import MigrateOptions, TenantResult, migrate
from ywmessaging.tenants.provisioning import Provisioned, Provisioner

SECRET = "migrate-test-secret-" + "y" * 32
N = 50
# The migrations these tests add are numbered 9001+ so that new product migrations never collide
# with them.
FIRST_TEST_MIGRATION = 9001


@dataclass
class Env:
    """This module's deployment: settings on its own registry, the sql copy, the tenants."""

    settings: Settings
    admin: PgTarget
    tenants: list[Provisioned]

    @property
    def sql(self) -> Path:
        return self.settings.sql_dir

    def version(self) -> int:
        """The newest tenant migration in this module's sql folder."""
        return migrations.code_version(self.sql, "tenant")

    def add(self, slug: str, sql: str) -> str:
        """Add the next tenant migration to this module's sql folder; its name."""
        name = f"{max(self.version() + 1, FIRST_TEST_MIGRATION)}_{slug}"
        (self.sql / "tenant" / "migrations" / f"{name}.sql").write_text(sql)
        migrations.clear_cache()
        return name

    def remove(self, name: str) -> None:
        """Take back a migration `add` made (one that was never applied)."""
        (self.sql / "tenant" / "migrations" / f"{name}.sql").unlink()
        migrations.clear_cache()

    async def admin_sql(self, t: Provisioned, sql: str) -> None:
        conn = await pg.connect(self.admin.with_db(t.db_name))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        assert self.settings.database_url
        conn = await pg.connect(PgTarget.parse(self.settings.database_url))
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    async def registry_versions(self) -> dict[uuid.UUID, int]:
        rows = await self.fetch("SELECT id, schema_version FROM tenants")
        return {r["id"]: r["schema_version"] for r in rows}

    async def actual_versions(self) -> dict[uuid.UUID, int | str]:
        rows = [{"id": t.id, "db_name": t.db_name} for t in self.tenants]
        return await probe_versions(self.admin, rows, 8)

    async def results(self, run_id: int | None) -> list[Any]:
        return await self.fetch("SELECT * FROM migration_results WHERE run_id = $1", run_id)


@pytest.fixture(scope="module")
async def deployment(settings: Settings, pg_admin: PgTarget,
                     tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Env]:
    """A registry, template and 50 tenants of this module's own, dropped at the end."""
    # not tests/second_cluster.py's "m": its deployment lives for the whole session
    prefix = settings.db_prefix + "mig"
    sql = tmp_path_factory.mktemp("migrate") / "sql"
    shutil.copytree(settings.sql_dir, sql)
    s = Settings(database_url=pg_admin.with_db(f"{prefix}_registry").dsn(), secret_key=SECRET,
                 db_prefix=prefix, sql_dir=sql, log_format="console", log_level="warning")
    try:
        await bootstrap(s)
        pool = await pg.create_pool(pg_admin.with_db(f"{prefix}_registry"), max_size=8)
        prov = Provisioner(pool, s, SecretBox(SECRET))
        try:
            made = await asyncio.gather(*(prov.provision(f"Migrate {i}") for i in range(N)))
        finally:
            await prov.close()
            await pool.close()
        yield Env(settings=s, admin=pg_admin, tenants=sorted(made, key=lambda t: str(t.id)))
    finally:
        migrations.clear_cache()
        await drop_everything(pg_admin, prefix)


@pytest.fixture
async def env(deployment: Env) -> Env:
    """The deployment with the template and every tenant at the sql folder's newest migration,
    whichever tests ran before (one left tenants behind on purpose, one may have failed)."""
    report = await migrate(deployment.settings, MigrateOptions(concurrency=8))
    assert report.status == "done" and report.count("failed") == 0, report
    assert set((await deployment.registry_versions()).values()) == {deployment.version()}
    return deployment


async def cli(settings: Settings, *argv: str) -> int:
    """Run a `ywm` command in-process (argument parsing as the real entry point does)."""
    args = build_parser().parse_args(list(argv))
    return int(await args.func(args, settings))


async def tenant_role_can_read(env: Env, t: Provisioned, table: str) -> bool:
    """Whether the tenant's own role may SELECT from `table` (grant_tenant_role ran)."""
    sealed = (await env.fetch("SELECT db_password_enc FROM tenants WHERE id = $1", t.id))[0][0]
    password = SecretBox(SECRET).open(bytes(sealed), f"tenant-role:{t.id}")
    conn = await pg.connect(env.admin.with_db(t.db_name).as_user(t.db_role, password))
    try:
        await conn.fetch(f"SELECT * FROM {table}")
        return True
    except Exception:
        return False
    finally:
        await conn.close()


async def test_dry_run_lists_pending_and_changes_nothing(env: Env, capsys: Any,
                                                        tmp_path: Path) -> None:
    base = env.version()
    name = env.add("add_dry_column", "ALTER TABLE members ADD COLUMN dry_col text;\n"
                   "CREATE TABLE dry_notes (id int);\n")
    try:
        runs = await env.fetch("SELECT count(*) FROM migration_runs")
        template = await env.fetch("SELECT template_version FROM db_servers")
        before = await env.registry_versions()

        p = await plan(env.settings, MigrateOptions(concurrency=4))
        assert p.registry_pending == []
        assert [(e.version, e.pending) for e in p.entries] == [(base, [name])] * N
        assert p.templates[0][1:] == (base, [name])
        assert await cli(env.settings, "migrate", "--dry-run") == 0
        out = capsys.readouterr().out
        assert out.count(f"would apply {name}") == N + 1  # tenants and the template
        assert "50 tenant(s): 50 to migrate" in out

        behind = tmp_path / "behind"
        shutil.copytree(env.sql, behind)
        (behind / "registry" / "migrations" / "0999_probe_registry.sql").write_text(
            "CREATE TABLE dry_run_probe (id int);\n")
        migrations.clear_cache()
        assert await cli(env.settings.with_(sql_dir=behind), "migrate", "--dry-run") == 0
        assert "registry: BEHIND" in capsys.readouterr().out

        assert await env.fetch("SELECT count(*) FROM migration_runs") == runs
        assert await env.fetch("SELECT template_version FROM db_servers") == template
        assert await env.registry_versions() == before
        assert set((await env.actual_versions()).values()) == {base}
        assert await env.fetch("SELECT to_regclass('dry_run_probe')") == [(None,)]
    finally:
        env.remove(name)  # never applied: the next test's deployment does not get it


async def test_failed_tenant_reported_and_retried_alone(env: Env, capsys: Any) -> None:
    base = env.version()
    env.add("add_test_column",
            "ALTER TABLE members ADD COLUMN test_col text;\nCREATE TABLE test_notes (id int);\n")
    new = env.version()
    victim = env.tenants[7]
    await env.admin_sql(victim, "ALTER TABLE members ADD COLUMN test_col text")

    assert await cli(env.settings, "migrate", "--concurrency", "4") == 1
    out = capsys.readouterr().out
    assert "49 ok, 1 failed" in out and str(victim.id) in out and "test_col" in out
    assert "ywm migrate --retry-failed" in out
    run = (await env.fetch("SELECT * FROM migration_runs ORDER BY id DESC LIMIT 1"))[0]
    assert (run["status"], run["tenants_total"], run["tenants_ok"], run["tenants_failed"]) == \
        ("failed", N, N - 1, 1)
    rows = {r["tenant_id"]: r for r in await env.results(run["id"])}
    assert rows[victim.id]["status"] == "failed" and "test_col" in rows[victim.id]["error"]
    assert (rows[victim.id]["from_version"], rows[victim.id]["to_version"]) == (base, base)
    others = [r for tid, r in rows.items() if tid != victim.id]
    assert {(r["status"], r["from_version"], r["to_version"]) for r in others} == {
        ("ok", base, new)}
    assert all(r["duration_ms"] is not None for r in rows.values())
    versions = await env.registry_versions()
    assert versions[victim.id] == base and sum(v == new for v in versions.values()) == N - 1
    assert (await env.actual_versions())[env.tenants[0].id] == new
    assert await tenant_role_can_read(env, env.tenants[0], "test_notes")
    assert (await env.fetch("SELECT template_version FROM db_servers"))[0][0] == new

    await env.admin_sql(victim, "ALTER TABLE members DROP COLUMN test_col")
    assert await cli(env.settings, "migrate", "--retry-failed") == 0
    again = (await env.fetch("SELECT * FROM migration_runs ORDER BY id DESC LIMIT 1"))[0]
    assert again["resumed_from"] == run["id"] and again["status"] == "done"
    retried = await env.results(again["id"])
    assert [(r["tenant_id"], r["status"], r["to_version"]) for r in retried] == \
        [(victim.id, "ok", new)]
    assert (await env.registry_versions())[victim.id] == new
    assert await tenant_role_can_read(env, victim, "test_notes")


async def test_tenant_option_limits_the_run_to_that_tenant(env: Env) -> None:
    base = env.version()
    env.add("add_second_column", "ALTER TABLE members ADD COLUMN test_col3 text;\n")
    new = env.version()
    one, other = env.tenants[0], env.tenants[1]
    report = await migrate(env.settings, MigrateOptions(concurrency=4, tenant_ids=(one.id,)))
    assert [r["tenant_id"] for r in await env.results(report.run_id)] == [one.id]
    versions, actual = await env.registry_versions(), await env.actual_versions()
    assert (versions[one.id], actual[one.id]) == (new, new)
    assert (versions[other.id], actual[other.id]) == (base, base)  # the env fixture migrates it
    with pytest.raises(ConfigError):
        await migrate(env.settings, MigrateOptions(concurrency=4, tenant_ids=(uuid.uuid4(),)))


class CancelAfter:
    """An observer that cancels the run's task after `n` tenants (an operator's Ctrl-C)."""

    def __init__(self, n: int) -> None:
        self.n, self.seen = n, 0
        self.task: asyncio.Task[Any] | None = None

    def started(self, run_id: int, total: int) -> None:
        pass

    def finished_one(self, result: TenantResult) -> None:
        self.seen += 1
        if self.seen == self.n and self.task is not None:
            self.task.cancel()


async def test_interrupted_run_is_marked_and_resume_continues_it(env: Env) -> None:
    env.add("add_resumed_notes", "CREATE TABLE test_resumed (id int);\n")
    new = env.version()
    stopper = CancelAfter(5)
    stopper.task = asyncio.create_task(
        migrate(env.settings, MigrateOptions(concurrency=2), stopper))
    with pytest.raises(asyncio.CancelledError):
        await stopper.task
    run = (await env.fetch("SELECT * FROM migration_runs ORDER BY id DESC LIMIT 1"))[0]
    assert run["status"] == "interrupted"
    rows = await env.results(run["id"])
    left = {r["tenant_id"] for r in rows if r["status"] != "ok"}
    assert 5 <= N - len(left) < N

    with pytest.raises(ConfigError):
        await migrate(env.settings, MigrateOptions(concurrency=4, resume=10**9))
    report = await migrate(env.settings, MigrateOptions(concurrency=4, resume=run["id"]))
    assert report.status == "done"
    assert {r["tenant_id"] for r in await env.results(report.run_id)} == left
    assert set((await env.registry_versions()).values()) == {new}
    assert set((await env.actual_versions()).values()) == {new}


async def test_two_concurrent_runs_both_finish(env: Env) -> None:
    env.add("add_more_notes", "CREATE TABLE test_more (id int);\n")
    new = env.version()
    a, b = await asyncio.gather(
        migrate(env.settings, MigrateOptions(concurrency=4)),
        migrate(env.settings, MigrateOptions(concurrency=4)),
    )
    assert (a.status, b.status) == ("done", "done")
    assert a.count("ok") == b.count("ok") == N
    assert set((await env.registry_versions()).values()) == {new}
    assert set((await env.actual_versions()).values()) == {new}
    assert await tenant_role_can_read(env, env.tenants[3], "test_more")


async def ywm(env: Env, *argv: str, **extra: str) -> tuple[int, str, str]:
    """Run the real `ywm` entry point in a subprocess."""
    assert env.settings.database_url
    environ = {**os.environ, "DATABASE_URL": env.settings.database_url,
               "YWM_SECRET_KEY": SECRET, "YWM_DB_PREFIX": env.settings.db_prefix,
               "YWM_SQL_DIR": str(env.sql), "YWM_LOG_LEVEL": "warning", **extra}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ywmessaging", *argv, env=environ,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return int(proc.returncode or 0), out.decode(), err.decode()


async def test_command_exit_codes_and_output(env: Env) -> None:
    victim = env.tenants[11]
    env.add("add_fifth_column", "ALTER TABLE members ADD COLUMN test_col5 text;\n")
    await env.admin_sql(victim, "ALTER TABLE members ADD COLUMN test_col5 text")

    rc, out, err = await ywm(env, "migrate")
    assert rc == 1
    assert "49 ok, 1 failed" in out and str(victim.id) in out and "--retry-failed" in out
    assert "migrate: 50/50 ok=49 failed=1" in err  # plain progress: stderr is not a terminal

    await env.admin_sql(victim, "ALTER TABLE members DROP COLUMN test_col5")
    rc, out, _ = await ywm(env, "migrate", "--retry-failed")
    assert rc == 0 and "1 tenant(s), 1 ok, 0 failed" in out

    rc, _, err = await ywm(env, "migrate", "--resume", "999999999")
    assert rc == 2 and err.strip().count("\n") == 0 and err.startswith("ywm: --resume")
    rc, _, err = await ywm(env, "migrate", "--no-such-option")
    assert rc == 2
    rc, _, err = await ywm(env, "migrate", DATABASE_URL="")
    assert rc != 0 and err.strip().count("\n") == 0 and "DATABASE_URL" in err
    rc, _, err = await ywm(env, "migrate", DATABASE_URL="postgresql://nobody@127.0.0.1:1/x")
    assert rc == 1 and err.strip().count("\n") == 0 and "does not answer" in err


async def test_broken_migration_file_fails_every_tenant_with_its_error(env: Env,
                                                                      capsys: Any) -> None:
    base = env.version()
    name = env.add("broken_statement", "ALTER TABLEX members ADD COLUMN nope text;\n")
    try:
        assert await cli(env.settings, "migrate") == 1
        out = capsys.readouterr().out
        assert "0 ok, 50 failed" in out and name in out
        assert "syntax error" in out
        assert set((await env.registry_versions()).values()) == {base}
    finally:
        env.remove(name)
