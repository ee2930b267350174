"""Moving a tenant to another database server: suspend, drain, dump/restore, verify, flip, drop.

Invariant: until the flip (one registry UPDATE) the source database is the tenant's only truth,
so any failure before it removes what was made on the target and reactivates the tenant where it
was. After the flip the target is the truth; the source is then only dropped. While the copy
runs the tenant's role has no CONNECT on the source database, so no write can slip in after the
dump's snapshot (the supervisor of every process also evicts the tenant on the NOTIFY that the
suspension sends).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from ..config import Settings
from ..crypto import TENANT_SCRAM_ITERATIONS, SecretBox, scram_verifier
from ..db import pg
from ..db.dsn import PgTarget, quote_ident
from ..db.pg_tools import PgToolError, find_tool, run_tool
from ..errors import OperationError
from ..registry.servers import admin_target
from ..sqlq import registry as rq
from ..tenants.provisioning import applied_version, grant_tenant_role
from .servers import resolve_server

log = structlog.get_logger("ywm.move")

Progress = Callable[[str], None]
FaultHook = Callable[[str], Awaitable[None]]
STEPS = ("check", "suspend", "drain", "copy", "verify", "flip", "cleanup")
ADMIN_COMMAND_TIMEOUT = 120.0  # any one admin statement (CREATE/DROP DATABASE included)
CONNECT_TIMEOUT = 10.0
POLL = 0.1


class MoveError(OperationError):
    """A move failed; the message says at which step and what was undone."""


@dataclass
class MoveResult:
    """A tenant that now lives on its new server."""

    tenant_id: uuid.UUID
    source: str
    target: str
    db_name: str
    schema_version: int
    tables: int
    rows: int
    seconds: float
    leftovers: list[str] = field(default_factory=list)  # source objects that could not be dropped


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


async def _row_counts(conn: Any, q: Any) -> dict[str, int]:
    """Exact row count of every public table (names from the catalog, quoted; a query per
    table rather than query_to_xml, which builds without libxml lack)."""
    counts: dict[str, int] = {}
    for row in await q.table_names(conn):
        name = row["table_name"]
        counts[name] = int(await conn.fetchval(f"SELECT count(*) FROM public.{quote_ident(name)}"))
    return counts


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


async def _admin_conn(target: PgTarget, what: str) -> Any:
    try:
        return await pg.connect(target, timeout=CONNECT_TIMEOUT,
                                command_timeout=ADMIN_COMMAND_TIMEOUT)
    except Exception as exc:
        raise MoveError(f"cannot reach {what} ({target.describe()}): {_first_line(exc)}"
                        ) from exc


async def _close(conn: Any) -> None:
    """Close a connection; abort it if it cannot close cleanly (its server went away)."""
    try:
        await conn.close(timeout=CONNECT_TIMEOUT)
    except Exception:
        conn.terminate()


class _Move:
    """One move's state: what has been made, so that a failure can undo exactly that."""

    def __init__(self, registry: Any, settings: Settings, box: SecretBox, *, grace: float,
                 copy_timeout: float, progress: Progress, fault: FaultHook | None) -> None:
        self.registry, self.settings, self.box = registry, settings, box
        self.q = rq(settings.sql_dir)
        self.grace, self.copy_timeout = grace, copy_timeout
        self.progress, self.fault = progress, fault
        self.made: list[str] = []
        self.step = "check"
        self.t0 = time.perf_counter()

    def say(self, text: str) -> None:
        self.progress(f"move {STEPS.index(self.step) + 1}/{len(STEPS)} {self.step}: {text}")

    async def enter(self, step: str) -> None:
        self.step = step
        if self.fault:
            await self.fault(step)

    async def run(self, tenant_id: uuid.UUID, to: str) -> MoveResult:
        await self.check(tenant_id, to)
        try:
            try:
                await self.enter("suspend")
                await self.suspend()
                await self.enter("drain")
                await self.drain()
                await self.enter("copy")
                await self.copy()
                await self.enter("verify")
                version, tables, rows = await self.verify()
                await self.enter("flip")
                await self.flip()
            except BaseException as exc:
                await self.fail(exc)
                raise  # unreachable for Exception: fail() raises MoveError
            self.step = "cleanup"
            leftovers = await self.cleanup()
        finally:
            await _close(self.src)
            await _close(self.dst)
        log.info("tenant_moved", tenant_id=str(tenant_id), source=self.source["name"],
                 target=self.target["name"], seconds=round(time.perf_counter() - self.t0, 2),
                 leftovers=len(leftovers))
        return MoveResult(
            tenant_id=tenant_id, source=self.source["name"], target=self.target["name"],
            db_name=self.db, schema_version=version, tables=tables, rows=rows,
            seconds=time.perf_counter() - self.t0, leftovers=leftovers,
        )

    async def check(self, tenant_id: uuid.UUID, to: str) -> None:
        """Refuse what cannot work before anything changes; open both admin connections."""
        t = await self.q.get_tenant(self.registry, tenant_id)
        if t is None:
            raise MoveError(f"no tenant {tenant_id}")
        if t["status"] != "active":
            why = f" ({t['status_reason']})" if t["status_reason"] else ""
            raise MoveError(f"tenant {tenant_id} is {t['status']}{why}: only an active tenant "
                            "can be moved")
        target = await resolve_server(self.registry, self.settings, to)
        if target["id"] == t["server_id"]:
            raise MoveError(f"tenant {tenant_id} is already on server {target['name']}")
        if target["state"] != "active":
            raise MoveError(f"server {target['name']} is {target['state']}: only an active "
                            "server takes tenants")
        if target["tenant_count"] >= target["max_tenants"]:
            raise MoveError(f"server {target['name']} is full ({target['tenant_count']} of "
                            f"{target['max_tenants']} tenants; raise it with `ywm servers set "
                            f"{target['name']} --max-tenants N`)")
        self.tenant, self.target = t, target
        self.source = await self.q.get_server(self.registry, t["server_id"])
        self.db, self.role = t["db_name"], t["db_role"]
        try:
            self.password = self.box.open(bytes(t["db_password_enc"]),
                                          f"tenant-role:{tenant_id}")
            self.src_admin = admin_target(self.source, self.box)
            self.dst_admin = admin_target(target, self.box)
        except Exception as exc:  # InvalidTag: another YWM_SECRET_KEY sealed them
            raise MoveError("cannot decrypt the tenant's or a server's password: is "
                            "YWM_SECRET_KEY the deployment's key?") from exc
        self.src = await _admin_conn(self.src_admin, f"source server {self.source['name']}")
        try:
            self.dst = await _admin_conn(self.dst_admin, f"target server {target['name']}")
        except BaseException:
            await _close(self.src)
            raise
        try:
            await self._preflight()
        except BaseException:
            await _close(self.src)
            await _close(self.dst)
            raise

    async def _preflight(self) -> None:
        src_id = await self._system_id(self.src)
        if src_id is not None and src_id == await self._system_id(self.dst):
            raise MoveError(f"servers {self.source['name']} and {self.target['name']} are the "
                            "same PostgreSQL cluster")
        if not await pg.database_exists(self.src, self.db):
            raise MoveError(f"database {self.db} is missing on {self.source['name']}")
        if await pg.database_exists(self.dst, self.db):
            raise MoveError(f"database {self.db} already exists on {self.target['name']}: "
                            "a leftover of an earlier move? (see ops/runbook-servers.md)")
        if await pg.role_exists(self.dst, self.role):
            raise MoveError(f"role {self.role} already exists on {self.target['name']}: "
                            "a leftover of an earlier move? (see ops/runbook-servers.md)")
        await self._check_extensions()
        need = max(await self.q.server_version_num(self.src),
                   await self.q.server_version_num(self.dst)) // 10000
        try:
            self.pg_dump = await find_tool("pg_dump", need)
            self.pg_restore = await find_tool("pg_restore", need)
        except PgToolError as exc:  # before anything changed: nothing to undo
            raise MoveError(str(exc)) from exc
        self.say(f"tenant {self.tenant['id']} ({self.tenant['name']}) from "
                 f"{self.source['name']} to {self.target['name']}, database {self.db}")

    async def _check_extensions(self) -> None:
        """Refuse before anything changes when the target cannot install an extension the
        tenant's database uses (pg_restore would fail half-way through the copy)."""
        conn = await _admin_conn(self.src_admin.with_db(self.db), "the source database")
        try:
            used = {r["extname"] for r in await self.q.database_extensions(conn)}
        finally:
            await _close(conn)
        available = {r["name"] for r in await self.q.available_extensions(self.dst)}
        missing = sorted(used - available)
        if missing:
            raise MoveError(f"server {self.target['name']} cannot install extension(s) "
                            f"{', '.join(missing)} that database {self.db} uses")

    async def _system_id(self, conn: Any) -> int | None:
        try:
            return int(await self.q.server_system_identifier(conn))
        except Exception:  # not allowed for a non-superuser admin: skip the check
            return None

    async def suspend(self) -> None:
        row = await self.q.suspend_tenant_for_move(self.registry, self.tenant["id"],
                                                   self.source["id"])
        if row is None:
            raise MoveError("the tenant changed while the move started")
        self.made.append("suspended")
        self.say("tenant suspended (reason: moving); every process evicts it")

    async def drain(self) -> None:
        """Take CONNECT away from the tenant's role, wait for its sessions, then end them."""
        db, role = quote_ident(self.db), quote_ident(self.role)
        await self.src.execute(f"REVOKE CONNECT ON DATABASE {db} FROM {role}")
        self.made.append("revoked")
        t0 = time.perf_counter()
        left = await self._wait_sessions(self.grace)
        ended = 0
        if left:
            ended = int(await self.q.terminate_role_sessions(self.src, self.db, self.role))
            left = await self._wait_sessions(5.0)
            if left:
                raise MoveError(f"{left} session(s) of {self.role} would not end")
        waited = time.perf_counter() - t0
        self.say(f"{ended} session(s) terminated after the {self.grace:g} s grace" if ended
                 else f"no sessions left after {waited:.1f} s")

    async def _wait_sessions(self, seconds: float) -> int:
        deadline = time.monotonic() + seconds
        while True:
            left = int(await self.q.count_role_sessions(self.src, self.db, self.role))
            if left == 0 or time.monotonic() >= deadline:
                return left
            await asyncio.sleep(POLL)

    async def copy(self) -> None:
        """pg_dump -Fc from the source to a temp file, pg_restore into a new target database."""
        db, role = quote_ident(self.db), quote_ident(self.role)
        with tempfile.TemporaryDirectory(prefix="ywm-move-") as tmp:
            dump = Path(tmp) / f"{self.db}.dump"
            t0 = time.perf_counter()
            await run_tool(self.pg_dump, self.src_admin.with_db(self.db), self.copy_timeout,
                           "-Fc", "--lock-wait-timeout=30s", "-f", str(dump))
            size, dumped = dump.stat().st_size, time.perf_counter() - t0
            await self.dst.execute(
                f"CREATE ROLE {role} LOGIN PASSWORD "
                f"{_literal(scram_verifier(self.password, TENANT_SCRAM_ITERATIONS))}")
            self.made.append("target_role")
            encoding = await self.q.database_encoding(self.src, self.db)
            await self.dst.execute(f"CREATE DATABASE {db} TEMPLATE template0 "
                                   f"ENCODING {_literal(str(encoding))}")
            self.made.append("target_db")
            await self.dst.execute(f"REVOKE ALL ON DATABASE {db} FROM PUBLIC")
            t1 = time.perf_counter()
            await run_tool(self.pg_restore, self.dst_admin.with_db(self.db), self.copy_timeout,
                           "--no-owner", "--no-acl", "--exit-on-error", "--single-transaction",
                           str(dump))
        conn = await _admin_conn(self.dst_admin.with_db(self.db), "the copied database")
        try:
            await grant_tenant_role(conn, self.role)
        finally:
            await _close(conn)
        await self.dst.execute(f"GRANT CONNECT, TEMPORARY ON DATABASE {db} TO {role}")
        self.say(f"dumped {size / 1024:.0f} KiB in {dumped:.1f} s, restored on "
                 f"{self.target['name']} in {time.perf_counter() - t1:.1f} s")

    async def verify(self) -> tuple[int, int, int]:
        """Same yoyo schema version and the same row count in every table on both sides."""
        seen: list[tuple[int, dict[str, int]]] = []
        for admin, what in ((self.src_admin, "source"), (self.dst_admin, "target")):
            conn = await _admin_conn(admin.with_db(self.db), f"the {what} database")
            try:
                seen.append((await applied_version(conn), await _row_counts(conn, self.q)))
            finally:
                await _close(conn)
        (v_src, c_src), (v_dst, c_dst) = seen
        if v_src != v_dst:
            raise MoveError(f"schema version {v_dst} on the copy, {v_src} on the source")
        if c_src != c_dst:
            diff = sorted(k for k in c_src.keys() | c_dst.keys() if c_src.get(k) != c_dst.get(k))
            raise MoveError(f"row counts differ in {len(diff)} table(s): {', '.join(diff[:3])}")
        as_tenant = self.dst_admin.as_user(self.role, self.password).with_db(self.db)
        conn = await _admin_conn(as_tenant, "the copy as the tenant's role")
        await _close(conn)
        rows_total = sum(c_src.values())
        self.say(f"schema version {v_src} on both sides; {len(c_src)} tables, {rows_total} rows "
                 "match; the tenant's role connects")
        return v_src, len(c_src), rows_total

    async def flip(self) -> None:
        row = await self.q.finish_tenant_move(self.registry, self.tenant["id"],
                                              self.source["id"], self.target["id"])
        if row is None:
            raise MoveError("the tenant row changed during the move; not flipped")
        self.made = []  # nothing to undo from here on: the copy is the tenant's database now
        self.say(f"tenant active on {self.target['name']} (row version {row['row_version']})")

    async def cleanup(self) -> list[str]:
        """Drop the source database and role; what cannot be dropped is reported, not raised."""
        leftovers: list[str] = []
        for kind, name, drop in (("database", self.db, pg.drop_database),
                                 ("role", self.role, pg.drop_role)):
            try:
                await drop(self.src, name)
            except Exception as exc:
                leftovers.append(f"{kind} {name} on {self.source['name']}: {_first_line(exc)}")
        self.say("dropped the source database and role" if not leftovers
                 else f"could not drop {len(leftovers)} object(s) on {self.source['name']}")
        return leftovers

    async def fail(self, exc: BaseException) -> None:
        """Undo what was made, newest first, then raise one clear MoveError (never for
        KeyboardInterrupt/cancellation, which propagate after the undo)."""
        step, undone, stuck = self.step, list(reversed(self.made)), []
        for what in undone:
            try:
                await self._undo_one(what)
            except Exception as undo_exc:
                label = {"target_db": f"the database on {self.target['name']}",
                         "target_role": f"the role on {self.target['name']}",
                         "revoked": f"the role's CONNECT on {self.source['name']}",
                         "suspended": "the tenant's status"}[what]
                stuck.append(f"{label} ({_first_line(undo_exc)})")
        self.made = []
        log.warning("tenant_move_failed", tenant_id=str(self.tenant["id"]), step=step,
                    source=self.source["name"], target=self.target["name"],
                    error=_first_line(exc), not_undone=len(stuck))
        if not isinstance(exc, Exception):
            return
        tail = (f"; could NOT undo {', '.join(stuck)}: see ops/runbook-servers.md" if stuck
                else f"; tenant active on {self.source['name']} again, nothing left on "
                     f"{self.target['name']}")
        raise MoveError(f"moving tenant {self.tenant['id']} to {self.target['name']} failed at "
                        f"step {step}: {_first_line(exc)}{tail}") from exc

    async def _undo_one(self, what: str) -> None:
        db, role = quote_ident(self.db), quote_ident(self.role)
        if what in ("target_db", "target_role"):
            conn = await _admin_conn(self.dst_admin, f"target server {self.target['name']}")
            try:
                if what == "target_db":
                    await pg.drop_database(conn, self.db)
                else:
                    await pg.drop_role(conn, self.role)
            finally:
                await _close(conn)
        elif what == "revoked":
            conn = await _admin_conn(self.src_admin, f"source server {self.source['name']}")
            try:
                await conn.execute(f"GRANT CONNECT ON DATABASE {db} TO {role}")
            finally:
                await _close(conn)
        elif what == "suspended":
            await self.q.abort_tenant_move(self.registry, self.tenant["id"], self.source["id"])


async def move_tenant(
    registry: Any, settings: Settings, box: SecretBox, tenant_id: uuid.UUID, to: str, *,
    grace: float = 5.0, copy_timeout: float = 1800.0, progress: Progress | None = None,
    fault: FaultHook | None = None,
) -> MoveResult:
    """Move one active tenant to server `to` (id or name); MoveError with one line on failure.

    `fault(step)` is called before each step after `check` (tests inject failures there).
    """
    move = _Move(registry, settings, box, grace=grace, copy_timeout=copy_timeout,
                 progress=progress or (lambda _line: None), fault=fault)
    return await move.run(tenant_id, to)
