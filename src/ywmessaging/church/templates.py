"""Message templates: reusable texts with a category; every church starts with a default set
(sql/tenant/migrations/0002_seed_default_templates.sql) that it may edit or delete.

`is_default` is read-only (only the seed sets it). Every write runs in one transaction with
its audit row.
"""

from __future__ import annotations

import unicodedata
import uuid
from typing import Any

from ..config import Settings
from ..errors import Conflict, NotFound, ValidationFailed
from ..messaging.segments import count_segments
from ..sqlq import tenant as tq
from . import Actor, audit, rows_json

CATEGORIES = ("service_reminder", "event", "prayer", "thank_you", "welcome", "offering",
              "general")
MAX_TEMPLATES = 500
MAX_BODY = 1600
MAX_NAME = 100


class TooManyTemplates(Conflict):
    code, title = "too_many_templates", "The church has as many templates as it may keep"


def message_text(name: str, value: Any, max_len: int) -> str:
    """A message text: 1..max_len characters after trimming; line breaks (CRLF, CR or LF, kept
    as LF) allowed, other control characters refused (422)."""
    if not isinstance(value, str):
        raise ValidationFailed(f"{name} must be a string", field=name)
    text = value.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not 1 <= len(text) <= max_len:
        raise ValidationFailed(f"{name} must be 1 to {max_len} characters", field=name)
    if any(unicodedata.category(c) == "Cc" and c != "\n" for c in text):
        raise ValidationFailed(f"{name} must not contain control characters", field=name)
    return text


def template_json(row: Any) -> dict[str, Any]:
    """A template as the API shows it, with how many SMS segments its text takes."""
    out = rows_json(row, ("id", "created_by"))
    info = count_segments(row["body"])
    out["segments"] = info.segments
    out["encoding"] = "gsm7" if info.encoding == "GSM-7" else "ucs2"
    return out


async def list_templates(conn: Any, settings: Settings,
                         category: str | None) -> list[dict[str, Any]]:
    """Every template (of one category): defaults first, then newest."""
    rows = await tq(settings.sql_dir).list_templates(conn, category)
    return [template_json(r) for r in rows]


async def get_template(conn: Any, settings: Settings, template_id: uuid.UUID) -> dict[str, Any]:
    """One template (404 if the church has none with this id)."""
    row = await tq(settings.sql_dir).get_template(conn, template_id)
    if row is None:
        raise NotFound("no template with this id")
    return template_json(row)


async def create_template(conn: Any, settings: Settings, actor: Actor, *, name: str, body: str,
                          category: str) -> dict[str, Any]:
    """A new template (409 `too_many_templates` past MAX_TEMPLATES)."""
    q = tq(settings.sql_dir)
    async with conn.transaction():
        if await q.count_templates(conn) >= MAX_TEMPLATES:
            raise TooManyTemplates(f"at most {MAX_TEMPLATES} templates per church")
        row = await q.insert_template(conn, name, body, category, actor.admin_id)
        await audit(conn, settings, actor, "template.create", "template", row["id"],
                    {"name": name, "category": category})
    return template_json(row)


async def update_template(conn: Any, settings: Settings, actor: Actor,
                          template_id: uuid.UUID, *, name: str | None, body: str | None,
                          category: str | None) -> dict[str, Any]:
    """Change a template's name, text or category (404 if it does not exist)."""
    async with conn.transaction():
        row = await tq(settings.sql_dir).update_template(conn, template_id, name, body,
                                                          category)
        if row is None:
            raise NotFound("no template with this id")
        changed = [n for n, v in (("name", name), ("body", body), ("category", category))
                   if v is not None]
        await audit(conn, settings, actor, "template.update", "template", template_id,
                    {"fields": changed})
    return template_json(row)


async def delete_template(conn: Any, settings: Settings, actor: Actor,
                          template_id: uuid.UUID) -> None:
    """Delete a template (404 if it does not exist); broadcasts keep their own text."""
    async with conn.transaction():
        gone = await tq(settings.sql_dir).delete_template(conn, template_id)
        if gone is None:
            raise NotFound("no template with this id")
        await audit(conn, settings, actor, "template.delete", "template", template_id)
