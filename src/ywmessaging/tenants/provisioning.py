"""Provisioning: place a tenant, create its role and database from the template, then activate.

Every step that makes something is undone if a later step fails: the database is dropped,
the role dropped, the registry row deleted. Placement is serialized by an advisory lock held
only while the registry row is inserted, so concurrent sign-ups never overfill a server.
"""

from __future__ import annotations

import asyncio
import time
import unicodedata
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import asyncpg
import structlog

from ..billing import state as billing
from ..config import Settings
from ..crypto import TENANT_SCRAM_ITERATIONS, SecretBox, new_password, scram_verifier
from ..db import migrations, pg
from ..db.dsn import quote_ident
from ..errors import OperationError, ValidationFailed
from ..registry.servers import admin_target
from ..sqlq import registry as rq
from ..sqlq import tenant as tq
from .naming import tenant_db_name, tenant_role_name

log = structlog.get_logger("ywm.provisioning")

UNDO_TIMEOUT = 60.0  # a DROP DATABASE waits for a checkpoint; generous but bounded
PLACEMENT_LOCK = "ywm_placement"
FaultHook = Callable[[str], Awaitable[None]]
# Runs inside the placement transaction on the registry (e.g. reserve the owner's login email:
# a unique violation there stops a duplicate sign-up before any database is made).
PlacedHook = Callable[[Any, uuid.UUID], Awaitable[None]]
# Runs on an admin connection to the new, migrated tenant database before it turns active
# (e.g. insert the owner admin). A failure undoes the whole provisioning.
CreatedHook = Callable[[Any, uuid.UUID], Awaitable[None]]


class ProvisioningError(OperationError):
    """Provisioning failed; what was made has been removed."""


@dataclass
class Provisioned:
    """A tenant that is now active."""

    id: uuid.UUID
    name: str
    server_id: int
    server_name: str
    db_name: str
    db_role: str
    schema_version: int
    used_template: bool
    timings_ms: dict[str, float] = field(default_factory=dict)


def validate_name(name: str) -> str:
    """A church name: trimmed, 1–100 characters, no control characters."""
    if not isinstance(name, str):
        raise ValidationFailed("name must be a string", field="name")
    cleaned = " ".join(name.split())
    if not cleaned:
        raise ValidationFailed("name must not be empty", field="name")
    if len(cleaned) > 100:
        raise ValidationFailed("name must be at most 100 characters", field="name")
    if any(unicodedata.category(c) == "Cc" for c in cleaned):
        raise ValidationFailed("name must not contain control characters", field="name")
    return cleaned


def validate_time_zone(tz: str) -> str:
    """An IANA time zone name."""
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationFailed(f"unknown time zone {tz!r}", field="timezone",
                               error_code="unknown_time_zone") from None
    return tz


class Provisioner:
    """Creates tenants; keeps one small admin pool per database server."""

    def __init__(self, registry: Any, settings: Settings, box: SecretBox) -> None:
        self.registry = registry  # asyncpg pool on the registry
        self.settings = settings
        self.box = box
        self._admin_pools: dict[int, Any] = {}
        self._lock = asyncio.Lock()
        self.q = rq(settings.sql_dir)

    async def close(self) -> None:
        """Close the admin pools."""
        pools, self._admin_pools = list(self._admin_pools.values()), {}
        for p in pools:
            await p.close()

    async def _admin_pool(self, server: Any) -> Any:
        async with self._lock:
            pool = self._admin_pools.get(server["id"])
            if pool is None:
                pool = await pg.create_pool(admin_target(server, self.box), max_size=4)
                self._admin_pools[server["id"]] = pool
            return pool

    async def provision(
        self, name: str, *, time_zone: str = "America/New_York",
        tenant_id: uuid.UUID | None = None, fault: FaultHook | None = None,
        on_placed: PlacedHook | None = None, on_created: CreatedHook | None = None,
    ) -> Provisioned:
        """Create one tenant end to end; on failure remove what was made and raise."""
        name = validate_name(name)
        time_zone = validate_time_zone(time_zone)
        tid = tenant_id or uuid.uuid4()
        db_name, role = tenant_db_name(self.settings, tid), tenant_role_name(self.settings, tid)
        password = new_password()
        made: list[str] = []
        timings: dict[str, float] = {}
        step = "placement"
        server: Any = None
        t0 = time.perf_counter()
        # Each thing is recorded as made BEFORE the statement that makes it: a cancellation
        # can land after the server did the work but before the reply, and every undo step
        # tolerates a thing that does not exist. A name someone else already holds is
        # taken off the list again, so it is never dropped.
        try:
            made.append("row")
            server = await self._place_and_insert(tid, name, db_name, role, password, time_zone,
                                                  on_placed)
            timings["placement"] = _ms(t0)
            if fault:
                await fault(step)
            admin = await self._admin_pool(server)
            step = "role"
            made.append("role")
            try:
                await admin.execute(
                    f"CREATE ROLE {quote_ident(role)} LOGIN PASSWORD "
                    f"{_literal(scram_verifier(password, TENANT_SCRAM_ITERATIONS))}"
                )
            except asyncpg.DuplicateObjectError:
                made.remove("role")
                raise
            if fault:
                await fault(step)
            step = "database"
            made.append("database")
            try:
                used_template = await self._create_database(admin, server, db_name)
            except asyncpg.DuplicateDatabaseError:
                made.remove("database")
                raise
            await admin.execute(
                f"REVOKE ALL ON DATABASE {quote_ident(db_name)} FROM PUBLIC;"
                f"GRANT CONNECT, TEMPORARY ON DATABASE {quote_ident(db_name)} "
                f"TO {quote_ident(role)}"
            )
            timings["database"] = _ms(t0)
            if fault:
                await fault(step)
            step = "migrate"
            version = await self._migrate_and_grant(server, db_name, role, name, time_zone,
                                                    tid, on_created)
            timings["migrate"] = _ms(t0)
            if fault:
                await fault(step)
            step = "activate"
            row = await self.q.activate_tenant(self.registry, tid, version)
            if row is None:
                raise ProvisioningError(f"tenant {tid} left provisioning state during creation")
            timings["activate"] = _ms(t0)
        except BaseException as exc:
            # shielded: a second cancellation must not stop the clean-up half-way
            left = await asyncio.shield(self._undo(tid, server, db_name, role, made))
            what = ", ".join(m for m in reversed(made) if m not in left) or "nothing"
            log.warning("tenant_provision_failed", tenant_id=str(tid), step=step,
                        error=_first_line(exc), removed=what, left=", ".join(left) or None)
            if isinstance(exc, (ValidationFailed, ProvisioningError)):
                raise
            if not isinstance(exc, Exception):
                raise
            raise ProvisioningError(
                f"provisioning {name!r} failed at step {step}: {_first_line(exc)} "
                f"(removed: {what}{'; left for `ywm doctor`: ' + ', '.join(left) if left else ''})"
            ) from exc
        log.info("tenant_provisioned", tenant_id=str(tid), server=server["name"],
                 ms=round(timings["activate"], 1), template=used_template)
        return Provisioned(
            id=tid, name=name, server_id=server["id"], server_name=server["name"],
            db_name=db_name, db_role=role, schema_version=version,
            used_template=used_template, timings_ms=timings,
        )

    async def _place_and_insert(self, tid: uuid.UUID, name: str, db_name: str, role: str,
                                password: str, time_zone: str,
                                on_placed: PlacedHook | None) -> Any:
        sealed = self.box.seal(password, f"tenant-role:{tid}")
        trial_end = billing.trial_end(self.settings, datetime.now(UTC))
        trial_plan = billing.catalogue_of(self.settings).trial_plan
        async with self.registry.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", PLACEMENT_LOCK)
            server = await self.q.pick_server_for_tenant(conn)
            if server is None:
                raise ProvisioningError(
                    "no active database server has room for another tenant (add one with "
                    "`ywm servers add`, or raise a server's cap with "
                    "`ywm servers set SERVER --max-tenants N`)"
                )
            row = await self.q.insert_tenant(conn, tid, name, server["id"], db_name, role,
                                             sealed, time_zone, trial_end, trial_plan)
            # the trial's first history row; a rollback (_undo) deletes it with the tenant
            await billing.record(conn, self.settings, tid, row["billing_version"],
                                 source="signup", old=None,
                                 new=billing.BillingState.from_row(row))
            if on_placed is not None:
                await on_placed(conn, tid)
        return server

    async def _create_database(self, admin: Any, server: Any, db_name: str) -> bool:
        """CREATE DATABASE from the server's template; template0 if the template is busy."""
        template = server["template_db"]
        try:
            await admin.execute(
                f"CREATE DATABASE {quote_ident(db_name)} TEMPLATE {quote_ident(template)}"
            )
            return True
        except (asyncpg.ObjectInUseError, asyncpg.InvalidCatalogNameError) as exc:
            log.warning("tenant_template_unusable", template=template, error=_first_line(exc))
            await admin.execute(f"CREATE DATABASE {quote_ident(db_name)} TEMPLATE template0")
            return False

    async def _migrate_and_grant(self, server: Any, db_name: str, role: str, name: str,
                                 time_zone: str, tid: uuid.UUID,
                                 on_created: CreatedHook | None) -> int:
        """Bring the new database current (a no-op from a current template), grant DML to
        the tenant's role and write the church's first settings."""
        target = admin_target(server, self.box).with_db(db_name)
        need = migrations.code_version(self.settings.sql_dir, "tenant")
        conn = await pg.connect(target)
        try:
            have = await applied_version(conn)
            if have < need:
                await conn.close()
                result = await asyncio.to_thread(
                    migrations.apply, target, self.settings.sql_dir, "tenant"
                )
                have = result.to_version
                conn = await pg.connect(target)
            await grant_tenant_role(conn, role)
            await tq(self.settings.sql_dir).init_settings(conn, name, time_zone)
            if on_created is not None:
                await on_created(conn, tid)
            return have
        finally:
            await conn.close()

    async def _undo(self, tid: uuid.UUID, server: Any, db_name: str, role: str,
                    made: list[str]) -> list[str]:
        """Remove what a failed provisioning made, newest first; each step on its own, so one
        failed drop does not keep the others from running. Never raises; what is left."""
        steps: list[tuple[str, Callable[[], Awaitable[Any]]]] = []
        if server is not None and "database" in made:
            steps.append(("database", lambda: self._drop(server, db_name, pg.drop_database)))
        if server is not None and "role" in made:
            steps.append(("role", lambda: self._drop(server, role, pg.drop_role)))
        if "row" in made:
            steps.append(("row", lambda: self.q.delete_tenant_row(self.registry, tid)))
        left = []
        for what, undo in steps:
            try:
                await asyncio.wait_for(undo(), UNDO_TIMEOUT)
            except Exception as exc:  # leave a trace for `ywm doctor`
                left.append(what)
                log.error("tenant_provision_undo_failed", tenant_id=str(tid), what=what,
                          error=_first_line(exc))
        return left

    async def _drop(self, server: Any, name: str,
                    drop: Callable[[Any, str], Awaitable[None]]) -> None:
        admin = await self._admin_pool(server)
        async with admin.acquire() as conn:
            await drop(conn, name)


async def applied_version(conn: Any) -> int:
    """The tenant schema version recorded by yoyo in the connected database (0 if none)."""
    exists = await conn.fetchval("SELECT to_regclass('public._yoyo_migration') IS NOT NULL")
    if not exists:
        return 0
    ids = await conn.fetch("SELECT migration_id FROM _yoyo_migration")
    return migrations.version_of({r["migration_id"] for r in ids})


async def grant_tenant_role(conn: Any, role: str) -> None:
    """Give the tenant's role DML on the product tables of the connected database."""
    r = quote_ident(role)
    await conn.execute(
        f"GRANT USAGE ON SCHEMA public TO {r};"
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {r};"
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {r};"
        f"REVOKE ALL ON TABLE _yoyo_migration, _yoyo_log, _yoyo_version, yoyo_lock FROM {r}"
    )


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
