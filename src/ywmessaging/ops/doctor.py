"""Read-only views of the fleet: `ywm doctor`'s findings and `ywm migrate --dry-run`'s plan.

Nothing here changes a database. Versions are read with asyncpg from `_yoyo_migration` (yoyo
itself would create its lock table on connect), and templates are judged from the registry and
pg_database without connecting to them: a session on a template makes provisioning wait.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

import asyncpg

from ..config import Settings
from ..crypto import SecretBox
from ..db import migrations, pg
from ..db.dsn import PgTarget
from ..errors import OperationError
from ..registry.servers import admin_target
from ..sqlq import registry as rq
from ..tenants.naming import is_tenant_db, is_tenant_role
from ..tenants.provisioning import applied_version
from .bootstrap import registry_target
from .fanout import (
    CONNECT_ERRORS,
    MigrateOptions,
    check_requested,
    first_line,
    select_source,
    tenant_filter,
)

KINDS = ("orphan_database", "orphan_role", "missing_database", "tenant_behind",
         "stale_template", "server_unreachable")
LIVE = ("active", "suspended")
DATABASES_SQL = "SELECT datname FROM pg_database"
ROLES_SQL = "SELECT rolname FROM pg_roles"
PROBE_TIMEOUT = 5.0
HINTS = {
    "orphan_database": "a leftover of a failed provisioning or deletion: check it holds nothing "
                       "needed, then DROP DATABASE it as the server admin",
    "orphan_role": "a tenant role left by a failed provisioning, move or deletion: check no "
                   "database grants it anything, then DROP ROLE it as the server admin",
    "missing_database": "restore the database from backup, or set the tenant's status to "
                        "deleted; until then its church gets errors",
    "tenant_behind": "run `ywm migrate` (or `ywm migrate --tenant ID` for this one)",
    "stale_template": "run `ywm migrate`: it creates and migrates every template first",
    "server_unreachable": "check the server is up and its db_servers host, port and admin "
                          "credentials; set its state to down if it is retired",
}


@dataclass(frozen=True)
class Finding:
    """One thing wrong, with a stable kind and what to do about it."""

    kind: str
    server: str
    detail: str
    tenant_id: str | None = None
    database: str | None = None

    @property
    def hint(self) -> str:
        """What an operator does about this kind of finding."""
        return HINTS[self.kind]

    def line(self) -> str:
        """One line for the terminal; the kind comes first so scripts can grep it."""
        subject = f"server {self.server}"
        if self.database:
            subject += f" database {self.database}"
        if self.tenant_id:
            subject += f" tenant {self.tenant_id}"
        return f"{self.kind} {subject}: {self.detail} (hint: {self.hint})"

    def as_dict(self) -> dict[str, Any]:
        """The finding as JSON-ready fields."""
        return {**asdict(self), "hint": self.hint}


async def diagnose(settings: Settings) -> list[Finding]:
    """Every finding across the registry and all database servers."""
    settings.require_database_url()
    box = SecretBox(settings.require_secret_key())
    need = migrations.code_version(settings.sql_dir, "tenant")
    servers, tenants = await _registry_view(settings)
    per_server = await asyncio.gather(*(
        _check_server(settings, box, s, [t for t in tenants if t["server_id"] == s["id"]], need)
        for s in servers
    ))
    return [f for found in per_server for f in found]


async def _registry_view(settings: Settings) -> tuple[list[Any], list[Any]]:
    target = registry_target(settings)
    try:
        conn = await pg.connect(target)
    except CONNECT_ERRORS as exc:
        raise OperationError(f"registry database {target.describe()} does not answer: "
                             f"{first_line(exc)}") from exc
    try:
        q = rq(settings.sql_dir)
        return list(await q.list_servers(conn)), list(await q.list_tenants(conn, None, None))
    finally:
        await conn.close()


async def _check_server(settings: Settings, box: SecretBox, server: Any, tenants: list[Any],
                        need: int) -> list[Finding]:
    live = [t for t in tenants if t["status"] in LIVE]
    admin = admin_target(server, box)
    try:
        names, roles = await _database_names(admin)
    except CONNECT_ERRORS as exc:
        out = [] if server["state"] == "down" else [Finding(
            "server_unreachable", server["name"],
            f"{admin.describe()} does not answer: {first_line(exc)}")]
        return out + _all_behind(server, live, need, {})
    out = _template_findings(server, names, need)
    owned = {t["db_name"] for t in tenants if t["status"] != "deleted"}
    out += [Finding("orphan_database", server["name"], "tenant database with no registry row",
                    database=name)
            for name in sorted(names) if is_tenant_db(settings, name) and name not in owned]
    owned_roles = {t["db_role"] for t in tenants if t["status"] != "deleted"}
    out += [Finding("orphan_role", server["name"], f"tenant role {name} has no registry row")
            for name in sorted(roles) if is_tenant_role(settings, name)
            and name not in owned_roles]
    out += [Finding("missing_database", server["name"],
                    f"{t['status']} tenant {t['name']!r} has no database", str(t["id"]),
                    t["db_name"]) for t in live if t["db_name"] not in names]
    present = [t for t in live if t["db_name"] in names]
    versions = await probe_versions(admin, present, settings.migrate_concurrency)
    return out + _all_behind(server, present, need, versions)


def _template_findings(server: Any, names: set[str], need: int) -> list[Finding]:
    if server["template_db"] not in names:
        return [Finding("stale_template", server["name"], "template database is missing",
                        database=server["template_db"])]
    if server["template_version"] < need:
        return [Finding("stale_template", server["name"],
                        f"template at version {server['template_version']}, code needs {need}",
                        database=server["template_db"])]
    return []


def _all_behind(server: Any, tenants: list[Any], need: int,
                actual: dict[uuid.UUID, int | str]) -> list[Finding]:
    """tenant_behind findings: the registry's version, or the database's own, is below `need`."""
    out = []
    for t in tenants:
        registry, seen = int(t["schema_version"]), actual.get(t["id"], "not read")
        if registry >= need and (not isinstance(seen, int) or seen >= need):
            continue
        shown = f"at {seen}" if isinstance(seen, int) else f"unreadable ({seen})"
        out.append(Finding(
            "tenant_behind", server["name"],
            f"registry says version {registry}, database {shown}, code needs {need}",
            str(t["id"]), t["db_name"]))
    return out


async def _database_names(admin: PgTarget) -> tuple[set[str], set[str]]:
    """(database names, role names) on a server."""
    conn = await pg.connect(admin, timeout=PROBE_TIMEOUT)
    try:
        return ({r["datname"] for r in await conn.fetch(DATABASES_SQL)},
                {r["rolname"] for r in await conn.fetch(ROLES_SQL)})
    finally:
        await conn.close()


async def probe_versions(admin: PgTarget, tenants: list[Any],
                         concurrency: int) -> dict[uuid.UUID, int | str]:
    """Each tenant database's yoyo version, or the error that kept it from being read."""
    limit = asyncio.Semaphore(concurrency)

    async def one(t: Any) -> tuple[uuid.UUID, int | str]:
        async with limit:
            try:
                conn = await pg.connect(admin.with_db(t["db_name"]), timeout=PROBE_TIMEOUT)
                try:
                    return t["id"], await applied_version(conn)
                finally:
                    await conn.close()
            except CONNECT_ERRORS as exc:
                return t["id"], first_line(exc)

    return dict(await asyncio.gather(*(one(t) for t in tenants)))


@dataclass
class PlanEntry:
    """What a migrate would do to one tenant."""

    tenant_id: uuid.UUID
    name: str
    server: str
    version: int | None
    pending: list[str]
    error: str | None = None


@dataclass
class Plan:
    """What `ywm migrate` would do, read without changing anything."""

    registry_version: int | None  # None: the registry database does not exist yet
    registry_pending: list[str]
    templates: list[tuple[str, int, list[str]]] = field(default_factory=list)
    entries: list[PlanEntry] = field(default_factory=list)


def after(ids: list[str], version: int) -> list[str]:
    """The migration ids numbered above `version` (applied in order, so: the pending ones)."""
    return [m for m in ids if migrations.version_of([m]) > version]


async def plan(settings: Settings, options: MigrateOptions) -> Plan:
    """The dry run: per tenant its version and pending migrations; no run row, no writes."""
    settings.require_database_url()
    box = SecretBox(settings.require_secret_key())
    reg_ids = migrations.migration_ids(settings.sql_dir, "registry")
    ten_ids = migrations.migration_ids(settings.sql_dir, "tenant")
    target = registry_target(settings)
    try:
        conn = await pg.connect(target)
    except asyncpg.InvalidCatalogNameError:
        return Plan(registry_version=None, registry_pending=reg_ids)
    except CONNECT_ERRORS as exc:
        raise OperationError(f"registry database {target.describe()} does not answer: "
                             f"{first_line(exc)}") from exc
    try:
        have = await applied_version(conn)
        result = Plan(registry_version=have, registry_pending=after(reg_ids, have))
        if have == 0:
            return result
        q = rq(settings.sql_dir)
        servers = list(await q.list_servers(conn))
        source, statuses = await select_source(conn, q, options)
        chosen = await q.tenants_to_migrate(conn, tenant_filter(options), source, statuses)
        check_requested(options, chosen, source)
    finally:
        await conn.close()
    result.templates = [(s["name"], s["template_version"], after(ten_ids, s["template_version"]))
                        for s in servers]
    for s in servers:
        mine = [t for t in chosen if t["server_id"] == s["id"]]
        versions: dict[uuid.UUID, int | str] = {}
        if mine and s["state"] != "down":
            versions = await probe_versions(admin_target(s, box), mine, options.concurrency)
        for t in mine:
            v = versions.get(t["id"], "server is marked down")
            result.entries.append(PlanEntry(
                t["id"], t["name"], s["name"], v if isinstance(v, int) else None,
                after(ten_ids, v) if isinstance(v, int) else [],
                None if isinstance(v, int) else v))
    return result
