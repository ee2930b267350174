"""Members: list (search, filters, keyset pages), create, change, delete, consent.

Every write runs in one transaction with its audit row: a member created with groups is
created with all of them or not at all.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson

from ..billing import limits
from ..billing.state import Entitlement
from ..config import Settings
from ..errors import Conflict, NotFound, ValidationFailed
from ..sqlq import tenant as tq
from . import Actor, audit, rows_json
from .pagination import decode_cursor, encode_cursor, page
from .phones import digits_fragment, to_e164

OPT_STATES = ("opted_in", "opted_out")
SORTS = ("name", "created")
ORDERS = ("asc", "desc")
_CURSOR_TYPES = {"name": ("text", "text", "uuid"), "created": ("timestamp", "uuid")}
_SORT_KEYS: dict[str, Callable[[Any], Sequence[Any]]] = {
    "name": lambda r: (r["last_name"], r["first_name"], r["id"]),
    "created": lambda r: (r["created_at"], r["id"]),
}


class MemberExists(Conflict):
    code, title = "member_exists", "A member already has this phone number"


@dataclass(frozen=True)
class MemberQuery:
    """What GET /members asks for."""

    search: str | None = None
    group_id: uuid.UUID | None = None
    branch_id: uuid.UUID | None = None
    opt_in: str | None = None
    sort: str = "name"
    order: str = "asc"
    cursor: str | None = None
    limit: int = 50


@dataclass(frozen=True)
class MemberChanges:
    """A PATCH: None leaves a field alone; `clear` names nullable fields set to null."""

    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    email: str | None = None
    branch_id: uuid.UUID | None = None
    group_ids: tuple[uuid.UUID, ...] | None = None
    clear: frozenset[str] = frozenset()

    def given(self) -> list[str]:
        """The names of the fields this change sets or clears."""
        names = [n for n in ("first_name", "last_name", "phone", "email", "branch_id",
                             "group_ids") if getattr(self, n) is not None]
        return sorted(set(names) | self.clear)


def escape_like(text: str) -> str:
    """`text` with LIKE's wildcards and escape character taken literally."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def member_json(row: Any) -> dict[str, Any]:
    """A member as the API shows it."""
    out = rows_json(row, ("id", "branch_id"))
    out["group_ids"] = [str(g) for g in row["group_ids"]]
    return out


async def list_members(conn: Any, settings: Settings,
                       query: MemberQuery) -> tuple[str, str | None]:
    """One page of members as a JSON array (text, built by PostgreSQL in the statement) and
    the cursor of the next page (None on the last)."""
    kind = f"members:{query.sort}:{query.order}"
    types = _CURSOR_TYPES[query.sort]
    after: tuple[Any, ...] = (decode_cursor(query.cursor, kind, types) if query.cursor
                              else (None,) * len(types))
    q = tq(settings.sql_dir)
    if query.search or query.group_id or query.branch_id or query.opt_in:
        name_part = escape_like(query.search) if query.search else None
        digits = digits_fragment(query.search) if query.search else None
        run = getattr(q, f"filter_members_{query.sort}_{query.order}")
        row = await run(conn, name_part, digits, query.group_id, query.branch_id, query.opt_in,
                        *after, query.limit)
    else:  # the plain list: statements whose generic plans start at the cursor
        row = await getattr(q, f"list_members_{query.sort}_{query.order}")(
            conn, *after, query.limit)
    next_cursor = encode_cursor(kind, _SORT_KEYS[query.sort](row)) if row["more"] else None
    return row["items"], next_cursor


async def get_member(conn: Any, settings: Settings, member_id: uuid.UUID) -> dict[str, Any]:
    """One member (404 when this church has none with that id)."""
    row = await tq(settings.sql_dir).get_member(conn, member_id)
    if row is None:
        raise NotFound("no such member")
    return member_json(row)


async def _existing(conn: Any, settings: Settings, phone: str) -> MemberExists:
    found = await tq(settings.sql_dir).member_id_by_phone(conn, phone)
    return MemberExists(member_id=str(found) if found else None)


async def _check_branch(conn: Any, settings: Settings, branch_id: uuid.UUID) -> None:
    if await tq(settings.sql_dir).lock_live_branch(conn, branch_id) is None:
        raise ValidationFailed("no such branch", field="branch_id", error_code="not_found")


async def _set_groups(conn: Any, settings: Settings, member_id: uuid.UUID,
                      group_ids: Sequence[uuid.UUID], *, replace: bool) -> None:
    q = tq(settings.sql_dir)
    wanted = sorted(set(group_ids))
    if replace:
        await q.remove_member_from_other_groups(conn, member_id, wanted)
    if wanted and await q.add_member_to_groups(conn, wanted, member_id) != len(wanted):
        raise ValidationFailed("no such group", field="group_ids",
                               error_code="not_found")


async def create_member(conn: Any, settings: Settings, actor: Actor, ent: Entitlement, *,
                        first_name: str, last_name: str, phone: str, email: str | None,
                        branch_id: uuid.UUID | None,
                        group_ids: Sequence[uuid.UUID]) -> dict[str, Any]:
    """Create a member with its groups and branch, all or nothing (409 on a taken phone, 402
    `plan_limit_reached` at the plan's members limit)."""
    q = tq(settings.sql_dir)
    e164 = await to_e164(conn, settings, phone)
    try:
        async with conn.transaction():
            await limits.reserve(conn, settings, ent, "members")
            if branch_id is not None:
                await _check_branch(conn, settings, branch_id)
            member_id = await q.insert_member(conn, first_name, last_name, e164, email, branch_id)
            if member_id is None:
                raise await _existing(conn, settings, e164)
            await _set_groups(conn, settings, member_id, group_ids, replace=False)
            await audit(conn, settings, actor, "member.create", "member", member_id)
            row = await q.get_member(conn, member_id)
    except asyncpg.ForeignKeyViolationError:  # a group deleted at the same moment
        raise ValidationFailed("no such group", field="group_ids",
                               error_code="not_found") from None
    return member_json(row)


async def update_member(conn: Any, settings: Settings, actor: Actor, member_id: uuid.UUID,
                        changes: MemberChanges) -> dict[str, Any]:
    """Change a member's fields (and replace its groups when given)."""
    q = tq(settings.sql_dir)
    e164 = await to_e164(conn, settings, changes.phone) if changes.phone is not None else None
    try:
        async with conn.transaction():
            if changes.branch_id is not None:
                await _check_branch(conn, settings, changes.branch_id)
            found = await q.update_member(
                conn, member_id, changes.first_name, changes.last_name, e164,
                changes.email is not None or "email" in changes.clear, changes.email,
                changes.branch_id is not None or "branch_id" in changes.clear, changes.branch_id)
            if found is None:
                raise NotFound("no such member")
            if changes.group_ids is not None:
                await _set_groups(conn, settings, member_id, changes.group_ids, replace=True)
            await audit(conn, settings, actor, "member.update", "member", member_id,
                        {"fields": changes.given()})
            row = await q.get_member(conn, member_id)
    except asyncpg.UniqueViolationError:
        if e164 is None:  # only the phone is unique; anything else is a bug to surface
            raise
        raise await _existing(conn, settings, e164) from None
    except asyncpg.ForeignKeyViolationError:
        raise ValidationFailed("no such group", field="group_ids",
                               error_code="not_found") from None
    return member_json(row)


async def delete_member(conn: Any, settings: Settings, actor: Actor,
                        member_id: uuid.UUID) -> None:
    """Delete a member for good (its consent history, memberships and threads go with it)."""
    async with conn.transaction():
        if await tq(settings.sql_dir).delete_member(conn, member_id) is None:
            raise NotFound("no such member")
        await audit(conn, settings, actor, "member.delete", "member", member_id)


async def set_consent(conn: Any, settings: Settings, actor: Actor, member_id: uuid.UUID, *,
                      opt_in: bool, reason: str | None) -> dict[str, Any]:
    """Record an admin's opt-in or opt-out as a consent event and apply it if it is newest."""
    q = tq(settings.sql_dir)
    kind, state = ("opt_in", "opted_in") if opt_in else ("opt_out", "opted_out")
    detail = orjson.dumps({"reason": reason} if reason else {}).decode()
    async with conn.transaction():
        if await q.lock_member(conn, member_id) is None:
            raise NotFound("no such member")
        occurred_at = await q.insert_consent_event(conn, member_id, kind, "admin",
                                                   actor.admin_id, detail)
        await q.apply_consent(conn, member_id, state, occurred_at, reason)
        await audit(conn, settings, actor, f"member.{kind}", "member", member_id)
        row = await q.get_member(conn, member_id)
    return member_json(row)


def consent_json(row: Any) -> dict[str, Any]:
    """A consent event as the API shows it."""
    out = rows_json(row, ("id", "admin_id"))
    detail = out["detail"]
    out["detail"] = orjson.loads(detail) if isinstance(detail, str | bytes) else detail
    return out


async def list_consent(conn: Any, settings: Settings, member_id: uuid.UUID, *,
                       cursor: str | None, limit: int) -> tuple[list[dict[str, Any]], str | None]:
    """A page of a member's consent events, newest first (404 for an unknown member)."""
    q = tq(settings.sql_dir)
    kind = f"consent:{member_id}"
    after = (decode_cursor(cursor, kind, ("timestamp", "uuid")) if cursor
             else (None, None))
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        if await q.get_member(conn, member_id) is None:
            raise NotFound("no such member")
        rows = await q.list_consent_events(conn, member_id, *after, limit + 1)
    items, next_cursor = page(rows, limit, kind, lambda r: (r["occurred_at"], r["id"]))
    return [consent_json(r) for r in items], next_cursor
