"""Branches: a church's campuses, each member in at most one; deleting frees the members."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg

from ..billing import limits
from ..billing.state import Entitlement
from ..config import Settings
from ..errors import Conflict, NotFound
from ..sqlq import tenant as tq
from . import Actor, audit, rows_json
from .phones import to_e164


class BranchExists(Conflict):
    code, title = "branch_exists", "A branch already has this name"


@dataclass(frozen=True)
class BranchFields:
    """A branch's fields for create, or a PATCH: None leaves a field alone; `clear` names
    nullable fields set to null."""

    name: str | None = None
    address: str | None = None
    phone: str | None = None
    description: str | None = None
    is_active: bool | None = None
    clear: frozenset[str] = frozenset()

    def sets(self, field: str) -> bool:
        """Whether the change sets or clears a nullable field."""
        return getattr(self, field) is not None or field in self.clear


def branch_json(row: Any) -> dict[str, Any]:
    """A branch as the API shows it."""
    return rows_json(row)


async def list_branches(conn: Any, settings: Settings) -> str:
    """Every live branch with its member count, as a JSON array PostgreSQL wrote (text)."""
    items: str = await tq(settings.sql_dir).list_branches(conn)
    return items


async def get_branch(conn: Any, settings: Settings, branch_id: uuid.UUID) -> dict[str, Any]:
    """One live branch (404 when this church has none with that id)."""
    row = await tq(settings.sql_dir).get_branch(conn, branch_id)
    if row is None:
        raise NotFound("no such branch")
    return branch_json(row)


async def create_branch(conn: Any, settings: Settings, actor: Actor, ent: Entitlement,
                        data: BranchFields) -> dict[str, Any]:
    """Create a branch (409 `branch_exists` when a live one has the name, whatever its case;
    402 `plan_limit_reached` at the plan's branches limit)."""
    q = tq(settings.sql_dir)
    phone = await to_e164(conn, settings, data.phone) if data.phone is not None else None
    async with conn.transaction():
        await limits.reserve(conn, settings, ent, "branches")
        branch_id = await q.insert_branch(conn, data.name, data.address, phone,
                                          data.description, data.is_active)
        if branch_id is None:
            raise BranchExists(field="name")
        await audit(conn, settings, actor, "branch.create", "branch", branch_id)
        row = await q.get_branch(conn, branch_id)
    return branch_json(row)


async def update_branch(conn: Any, settings: Settings, actor: Actor, branch_id: uuid.UUID,
                        changes: BranchFields) -> dict[str, Any]:
    """Change a live branch."""
    q = tq(settings.sql_dir)
    phone = await to_e164(conn, settings, changes.phone) if changes.phone is not None else None
    try:
        async with conn.transaction():
            found = await q.update_branch(
                conn, branch_id, changes.name, changes.sets("address"), changes.address,
                changes.sets("phone"), phone, changes.sets("description"),
                changes.description, changes.is_active)
            if found is None:
                raise NotFound("no such branch")
            await audit(conn, settings, actor, "branch.update", "branch", branch_id)
            row = await q.get_branch(conn, branch_id)
    except asyncpg.UniqueViolationError:
        raise BranchExists(field="name") from None
    return branch_json(row)


async def delete_branch(conn: Any, settings: Settings, actor: Actor,
                        branch_id: uuid.UUID) -> None:
    """Delete a branch (its name is free again); its members stay, in no branch."""
    q = tq(settings.sql_dir)
    async with conn.transaction():
        if await q.soft_delete_branch(conn, branch_id) is None:
            raise NotFound("no such branch")
        moved = await q.clear_branch_members(conn, branch_id)
        await audit(conn, settings, actor, "branch.delete", "branch", branch_id,
                    {"members_unassigned": moved})
