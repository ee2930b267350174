"""`ywm migrate`: the registry, then each server's template, then every tenant, recorded durably.

A run is one `migration_runs` row plus one `migration_results` row per tenant, all inserted
by one statement at the start and each updated once when its tenant ends, so `--resume` and
`--retry-failed` know exactly what is left even after a crash. Concurrency is bounded per
database server (one semaphore each); yoyo, being synchronous, runs in a thread pool sized to
the total concurrency. yoyo's lock table (`yoyo_lock`) in each database keeps two runs from
applying to one tenant at once; the grant that follows is serialized by an advisory lock,
because two concurrent GRANTs on one table fail with "tuple concurrently updated".
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import asyncpg
import orjson

from ..config import Settings
from ..crypto import SecretBox
from ..db import migrations, pg
from ..db.dsn import PgTarget
from ..errors import ConfigError, OperationError
from ..registry.servers import admin_target
from ..sqlq import registry as rq
from ..tenants.provisioning import applied_version, grant_tenant_role
from ..tenants.template import ensure_template
from .bootstrap import BootstrapResult, bootstrap, registry_target

GRANT_LOCK = "SELECT pg_advisory_xact_lock(hashtext('ywm_tenant_grant'))"
NOT_OK = ["pending", "running", "failed", "skipped"]
CONNECT_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


@dataclass(frozen=True)
class MigrateOptions:
    """Which tenants a run takes and how many at once per server."""

    concurrency: int
    tenant_ids: tuple[uuid.UUID, ...] = ()
    resume: int | None = None
    retry_failed: bool = False

    def as_json(self) -> str:
        """The options as stored in `migration_runs.options`."""
        return orjson.dumps({
            "concurrency": self.concurrency, "tenants": [str(t) for t in self.tenant_ids],
            "resume": self.resume, "retry_failed": self.retry_failed,
        }).decode()


@dataclass(frozen=True)
class TenantResult:
    """How one tenant's migration ended."""

    tenant_id: uuid.UUID
    name: str
    server: str
    status: str  # ok, failed or skipped
    from_version: int | None
    to_version: int | None
    error: str | None
    duration_ms: int


@dataclass
class RunReport:
    """What one `migrate` did."""

    run_id: int | None
    status: str
    target_version: int
    registry: BootstrapResult
    templates: dict[str, str] = field(default_factory=dict)
    results: list[TenantResult] = field(default_factory=list)

    def count(self, status: str) -> int:
        """How many tenants ended in `status`."""
        return sum(1 for r in self.results if r.status == status)


class Observer(Protocol):
    """Told when a run starts and as each tenant ends (progress display)."""

    def started(self, run_id: int, total: int) -> None: ...
    def finished_one(self, result: TenantResult) -> None: ...


class Quiet:
    """An observer that shows nothing."""

    def started(self, run_id: int, total: int) -> None:
        """Ignore the start."""

    def finished_one(self, result: TenantResult) -> None:
        """Ignore the result."""


@dataclass
class _Run:
    """Everything a run's tenant tasks share."""

    settings: Settings
    pool: Any
    run_id: int
    need: int
    observer: Observer
    servers: dict[int, Any]
    admins: dict[int, PgTarget]
    blocked: dict[int, tuple[str, str]]  # server id -> (status, reason) for all its tenants
    limits: dict[int, asyncio.Semaphore]
    executor: ThreadPoolExecutor
    results: list[TenantResult] = field(default_factory=list)


async def migrate(settings: Settings, options: MigrateOptions,
                  observer: Observer | None = None) -> RunReport:
    """Registry, templates, then every selected tenant; one result row per tenant."""
    settings.require_database_url()
    box = SecretBox(settings.require_secret_key())
    registry = await _prepare_registry(settings)
    need = migrations.code_version(settings.sql_dir, "tenant")
    report = RunReport(run_id=None, status="done", target_version=need, registry=registry)
    q = rq(settings.sql_dir)
    async with registry_pool(settings) as pool:
        source, statuses = await select_source(pool, q, options)
        chosen = await q.tenants_to_migrate(pool, tenant_filter(options), source, statuses)
        check_requested(options, chosen, source)
        servers = {s["id"]: s for s in await q.list_servers(pool)}
        blocked = await _migrate_templates(pool, settings, box, servers.values(), report)
        if not chosen:
            return report
        run = await q.insert_migration_run(pool, need, options.as_json(), source,
                                           socket.gethostname(), os.getpid())
        added = {r["tenant_id"] for r in await q.insert_run_results(
            pool, run["id"], [t["id"] for t in chosen])}
        tenants = [t for t in chosen if t["id"] in added]
        report.run_id = run["id"]
        (observer or Quiet()).started(run["id"], len(tenants))
        used = {t["server_id"] for t in tenants}
        ctx = _Run(
            settings=settings, pool=pool, run_id=run["id"], need=need,
            observer=observer or Quiet(), servers=servers,
            admins={sid: admin_target(servers[sid], box) for sid in used if sid not in blocked},
            blocked=blocked,
            limits={sid: asyncio.Semaphore(options.concurrency) for sid in used},
            executor=ThreadPoolExecutor(max(1, options.concurrency * len(used)),
                                        thread_name_prefix="ywm-migrate"),
        )
        report.status = await _run_tracked(ctx, tenants)
        report.results = ctx.results
    return report


async def _prepare_registry(settings: Settings) -> BootstrapResult:
    """Create and migrate the registry and register the first server (templates come next)."""
    where = registry_target(settings).describe()
    try:
        return await bootstrap(settings, templates=False)
    except (OSError, TimeoutError) as exc:
        raise OperationError(f"registry database {where} does not answer: {first_line(exc)}"
                             ) from exc
    except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise OperationError(f"registry database {where} cannot be prepared: "
                             f"{first_line(exc)}") from exc


@asynccontextmanager
async def registry_pool(settings: Settings, max_size: int = 4) -> AsyncIterator[Any]:
    """A small registry pool for one run; a clear error when the registry does not answer."""
    target = registry_target(settings)
    try:
        pool = await pg.create_pool(target, max_size=max_size)
    except CONNECT_ERRORS as exc:
        raise OperationError(f"registry database {target.describe()} does not answer: "
                             f"{first_line(exc)}") from exc
    try:
        yield pool
    finally:
        await pool.close()


async def select_source(conn: Any, q: Any, options: MigrateOptions,
                        ) -> tuple[int | None, list[str] | None]:
    """The earlier run and result statuses a run draws its tenants from (None: all tenants)."""
    if options.resume is not None:
        if await q.get_migration_run(conn, options.resume) is None:
            raise ConfigError(f"--resume {options.resume}: no migration run has that id")
        return options.resume, NOT_OK
    if options.retry_failed:
        last = await q.latest_migration_run(conn)
        if last is None:
            raise ConfigError("--retry-failed: there is no migration run yet")
        return int(last["id"]), ["failed"]
    return None, None


def check_requested(options: MigrateOptions, chosen: list[Any], source: int | None) -> None:
    """Refuse `--tenant` ids that are not migratable tenants (unless drawn from a run)."""
    if source is not None or not options.tenant_ids:
        return
    found = {t["id"] for t in chosen}
    missing = [str(t) for t in options.tenant_ids if t not in found]
    if missing:
        raise ConfigError(f"--tenant {', '.join(missing)}: no active or suspended tenant "
                          "has that id")


def tenant_filter(options: MigrateOptions) -> list[uuid.UUID] | None:
    """The `--tenant` ids as the `tenants_to_migrate` filter (None: every tenant)."""
    return list(options.tenant_ids) or None


async def _migrate_templates(pool: Any, settings: Settings, box: SecretBox,
                             servers: Iterable[Any], report: RunReport,
                             ) -> dict[int, tuple[str, str]]:
    """Migrate each server's template first; a server whose template fails (or that is down)
    gets no tenant migrations: its tenants are recorded failed (or skipped) with the reason."""
    blocked: dict[int, tuple[str, str]] = {}
    async with pool.acquire() as conn:
        for s in servers:
            if s["state"] == "down":
                blocked[s["id"]] = ("skipped", f"server {s['name']} is marked down")
                report.templates[s["name"]] = "skipped: server is marked down"
                continue
            try:
                version = await ensure_template(conn, settings, box, s)
            except Exception as exc:  # any failure blocks only this server's tenants
                why = f"template {s['template_db']} failed: {first_line(exc)}"
                blocked[s["id"]] = ("failed", f"not attempted: {why}")
                report.templates[s["name"]] = why
                continue
            report.templates[s["name"]] = f"template {s['template_db']} at version {version}"
    return blocked


async def _run_tracked(ctx: _Run, tenants: list[Any]) -> str:
    """Fan out; mark the run done, failed or interrupted however it ends."""
    finish = rq(ctx.settings.sql_dir).finish_migration_run
    try:
        async with asyncio.TaskGroup() as tg:
            for t in tenants:
                tg.create_task(_tenant_task(ctx, t), name=f"migrate-{t['id']}")
    except BaseException as exc:
        stopped = isinstance(exc, (asyncio.CancelledError, KeyboardInterrupt))
        # threads already inside yoyo finish their migration (each is one transaction)
        ctx.executor.shutdown(wait=False, cancel_futures=True)
        with contextlib.suppress(Exception):  # never hide the error that ended the run
            await finish(ctx.pool, ctx.run_id, "interrupted" if stopped else "failed")
        if stopped or not isinstance(exc, Exception):
            raise
        while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
            exc = exc.exceptions[0]
        raise OperationError(f"run {ctx.run_id} stopped: {first_line(exc)} "
                             f"(continue it with `ywm migrate --resume {ctx.run_id}`)") from exc
    ctx.executor.shutdown(wait=False)
    status = "failed" if any(r.status == "failed" for r in ctx.results) else "done"
    await finish(ctx.pool, ctx.run_id, status)
    return status


async def _tenant_task(ctx: _Run, t: Any) -> None:
    async with ctx.limits[t["server_id"]]:
        started = datetime.now(UTC)
        result = await _migrate_tenant(ctx, t)
        await rq(ctx.settings.sql_dir).finish_tenant_result(
            ctx.pool, ctx.run_id, t["id"], result.status, result.from_version,
            result.to_version, result.error, started, result.duration_ms,
        )
    ctx.results.append(result)
    ctx.observer.finished_one(result)


async def _migrate_tenant(ctx: _Run, t: Any) -> TenantResult:
    """Bring one tenant current; every failure becomes a `failed` result, never an exception."""
    t0 = time.perf_counter()
    server = ctx.servers[t["server_id"]]
    have: int | None = None
    to: int | None = None
    status, error = ctx.blocked.get(t["server_id"], ("ok", None))
    if error is None:
        try:
            have, to, error = await _bring_current(ctx, t)
            if to != t["schema_version"]:
                await rq(ctx.settings.sql_dir).set_tenant_schema_version(ctx.pool, t["id"], to)
        except Exception as exc:  # one tenant's failure never stops the run
            error = first_line(exc)
        status = "failed" if error else "ok"
    return TenantResult(
        tenant_id=t["id"], name=t["name"], server=server["name"], status=status,
        from_version=have, to_version=to, error=error,
        duration_ms=int((time.perf_counter() - t0) * 1000),
    )


async def _bring_current(ctx: _Run, t: Any) -> tuple[int, int, str | None]:
    """(from, to, error): read the version with asyncpg and run yoyo only when behind; grant
    the tenant's role on what changed (or what an earlier, interrupted run left ungranted)."""
    target = ctx.admins[t["server_id"]].with_db(t["db_name"])
    conn = await pg.connect(target)
    try:
        have = await applied_version(conn)
        to, error = have, None
        if have < ctx.need:
            loop = asyncio.get_running_loop()
            try:
                done = await loop.run_in_executor(
                    ctx.executor, migrations.apply, target, ctx.settings.sql_dir, "tenant")
                to = done.to_version
            except Exception as exc:  # MigrationError, or yoyo's LockTimeout
                error = first_line(exc)
                to = await applied_version(conn)
        if to != have or to != t["schema_version"]:
            async with conn.transaction():
                await conn.execute(GRANT_LOCK)
                await grant_tenant_role(conn, t["db_role"])
        return have, to, error
    finally:
        await conn.close()


def first_line(exc: BaseException) -> str:
    """The first line of an error's text (what the results table and summary show)."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
