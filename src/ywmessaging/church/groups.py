"""Groups: create, rename, delete, and put members in or out (a member may be in many)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from ..config import Settings
from ..errors import Conflict, NotFound, ValidationFailed
from ..sqlq import tenant as tq
from . import Actor, audit, rows_json


class GroupExists(Conflict):
    code, title = "group_exists", "A group already has this name"


@dataclass(frozen=True)
class GroupChanges:
    """A PATCH: None leaves a field alone; `clear` names nullable fields set to null."""

    name: str | None = None
    description: str | None = None
    color: str | None = None
    clear: frozenset[str] = frozenset()

    def sets(self, field: str) -> bool:
        """Whether the change sets or clears a nullable field."""
        return getattr(self, field) is not None or field in self.clear


def group_json(row: Any) -> dict[str, Any]:
    """A group as the API shows it."""
    return rows_json(row)


async def list_groups(conn: Any, settings: Settings) -> str:
    """Every group with its member count, as a JSON array PostgreSQL wrote (text)."""
    items: str = await tq(settings.sql_dir).list_groups(conn)
    return items


async def get_group(conn: Any, settings: Settings, group_id: uuid.UUID) -> dict[str, Any]:
    """One group (404 when this church has none with that id)."""
    row = await tq(settings.sql_dir).get_group(conn, group_id)
    if row is None:
        raise NotFound("no such group")
    return group_json(row)


async def create_group(conn: Any, settings: Settings, actor: Actor, *, name: str,
                       description: str | None, color: str | None) -> dict[str, Any]:
    """Create a group (409 `group_exists` when the name is taken, whatever its case)."""
    q = tq(settings.sql_dir)
    async with conn.transaction():
        group_id = await q.insert_group(conn, name, description, color)
        if group_id is None:
            raise GroupExists(field="name")
        await audit(conn, settings, actor, "group.create", "group", group_id)
        row = await q.get_group(conn, group_id)
    return group_json(row)


async def update_group(conn: Any, settings: Settings, actor: Actor, group_id: uuid.UUID,
                       changes: GroupChanges) -> dict[str, Any]:
    """Rename or describe a group."""
    q = tq(settings.sql_dir)
    try:
        async with conn.transaction():
            found = await q.update_group(conn, group_id, changes.name,
                                         changes.sets("description"), changes.description,
                                         changes.sets("color"), changes.color)
            if found is None:
                raise NotFound("no such group")
            await audit(conn, settings, actor, "group.update", "group", group_id)
            row = await q.get_group(conn, group_id)
    except asyncpg.UniqueViolationError:
        raise GroupExists(field="name") from None
    return group_json(row)


async def delete_group(conn: Any, settings: Settings, actor: Actor,
                       group_id: uuid.UUID) -> None:
    """Delete a group; its members stay, out of it."""
    async with conn.transaction():
        if await tq(settings.sql_dir).delete_group(conn, group_id) is None:
            raise NotFound("no such group")
        await audit(conn, settings, actor, "group.delete", "group", group_id)


async def change_members(conn: Any, settings: Settings, actor: Actor, group_id: uuid.UUID,
                         member_ids: Sequence[uuid.UUID], *, add: bool) -> dict[str, Any]:
    """Put members in a group (every id must be a member: else 422, nothing changed) or take
    them out (ids not in the group are ignored); the group as it is now."""
    q = tq(settings.sql_dir)
    ids = sorted(set(member_ids))
    try:
        async with conn.transaction():
            if await q.lock_group(conn, group_id) is None:
                raise NotFound("no such group")
            if add:
                if await q.count_members(conn, ids) != len(ids):
                    raise ValidationFailed("no such member", field="member_ids",
                               error_code="not_found")
                changed = await q.add_group_members(conn, group_id, ids)
            else:
                changed = await q.remove_group_members(conn, group_id, ids)
            action = "group.members_add" if add else "group.members_remove"
            await audit(conn, settings, actor, action, "group", group_id,
                        {"member_ids": [str(i) for i in ids], "changed": changed})
            row = await q.get_group(conn, group_id)
    except asyncpg.ForeignKeyViolationError:  # a member deleted at the same moment
        raise ValidationFailed("no such member", field="member_ids",
                               error_code="not_found") from None
    return group_json(row)
