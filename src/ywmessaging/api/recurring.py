"""`/api/v1/recurring`: daily / weekly / monthly messages at a local time, pause and resume."""

from __future__ import annotations

from datetime import time
from typing import Any

from aiohttp import web

from ..auth.state import principal, registry_pool
from ..church import rows_json
from ..errors import ValidationFailed
from ..messaging import recurring as data
from ..messaging.broadcasts import Target
from ..messaging.schedule import FREQUENCIES, MISSED_POLICIES, zone
from ..tenants.middleware import tenant_conn
from ..values import Check, choice, integer, message_body, text
from .context import actor_of, settings_of, utc_now
from .responses import json_response
from .validation import fields, json_body, uuid_path

_UUIDS = ("id", "created_by")


def local_time() -> Check:
    """A wall-clock time `HH:MM` (or `HH:MM:SS`)."""

    def check(name: str, value: Any) -> time:
        try:
            if not isinstance(value, str) or len(value) not in (5, 8):
                raise ValueError
            return time.fromisoformat(value)
        except ValueError:
            raise ValidationFailed(f"{name} must be HH:MM", field=name) from None

    return check


def time_zone() -> Check:
    """An IANA time zone name."""

    def check(name: str, value: Any) -> str:
        if not isinstance(value, str) or not 1 <= len(value) <= 64:
            raise ValidationFailed(f"{name} must be an IANA time zone", field=name)
        try:
            zone(value)
        except ValueError:
            raise ValidationFailed(f"{name} must be an IANA time zone", field=name,
                                   error_code="unknown_time_zone") from None
        return value

    return check


# Weekdays by name, Monday first: `0` means Sunday to some clients and Monday to others, so the
# API takes and shows names only (the database keeps 0 = Monday .. 6 = Sunday).
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def days_of_week() -> Check:
    """Distinct weekday names (`monday` .. `sunday`), as their numbers 0 = Monday .. 6."""

    def check(name: str, value: Any) -> tuple[int, ...]:
        if (not isinstance(value, list) or not 1 <= len(value) <= 7
                or not all(isinstance(d, str) and d in WEEKDAYS for d in value)):
            raise ValidationFailed(f"{name} must list weekday names: {', '.join(WEEKDAYS)}",
                                   field=name)
        return tuple(sorted({WEEKDAYS.index(d) for d in value}))

    return check


def day_of_month() -> Check:
    """1..31 (months without that day use their last day; the spec bounds it)."""
    return integer()


CHECKS: dict[str, Check] = {
    "name": text(100), "body": message_body(), "target": Target.parse,
    "frequency": choice(*FREQUENCIES), "local_time": local_time(), "time_zone": time_zone(),
    "days_of_week": days_of_week(), "day_of_month": day_of_month(),
    "missed_policy": choice(*MISSED_POLICIES),
}
REQUIRED = ("name", "body", "target", "frequency", "local_time")


def recurring_json(row: Any) -> dict[str, Any]:
    """A rule as the API shows it."""
    out = rows_json(row, _UUIDS)
    out["target"] = Target.from_row(row["target_kind"], row["target"]).as_json()
    out["days_of_week"] = [WEEKDAYS[d] for d in row["days_of_week"] or []]
    out["local_time"] = row["local_time"].strftime("%H:%M")
    del out["target_kind"]
    return out


async def list_rules(request: web.Request) -> web.Response:
    """Every recurring message of the church."""
    rows = await data.list_all(tenant_conn(request), settings_of(request))
    return json_response({"items": [recurring_json(r) for r in rows]})


async def create(request: web.Request) -> web.Response:
    """Create a rule (time zone: the church's unless given); first occurrence is the next
    one from now; 201."""
    got = fields(await json_body(request),
                 required={k: CHECKS[k] for k in REQUIRED},
                 optional={k: v for k, v in CHECKS.items() if k not in REQUIRED})
    spec = data.Spec(got["name"], got["body"], got["target"], got["frequency"],
                     got["local_time"], got["time_zone"] or "", got["days_of_week"] or (),
                     got["day_of_month"], got["missed_policy"] or "send_late")
    row = await data.create(tenant_conn(request), registry_pool(request), settings_of(request),
                            principal(request).tenant_id, actor_of(request), spec, utc_now())
    return json_response(recurring_json(row), status=201)


async def get(request: web.Request) -> web.Response:
    """One rule."""
    row = await data.get(tenant_conn(request), settings_of(request), uuid_path(request, "id"))
    return json_response(recurring_json(row))


async def update(request: web.Request) -> web.Response:
    """Change some fields; a schedule change moves the next occurrence."""
    rule_id = uuid_path(request, "id")
    got = fields(await json_body(request), optional=CHECKS)
    changes = {k: v for k, v in got.items() if v is not None}
    if not changes:
        raise ValidationFailed("give at least one field to change", field="name")
    row = await data.update(tenant_conn(request), registry_pool(request), settings_of(request),
                            principal(request).tenant_id, actor_of(request), rule_id, changes,
                            utc_now())
    return json_response(recurring_json(row))


async def delete(request: web.Request) -> web.Response:
    """Delete a rule; the broadcasts it sent stay; 204."""
    await data.delete(tenant_conn(request), settings_of(request), actor_of(request),
                      uuid_path(request, "id"))
    return web.Response(status=204)


async def _status(request: web.Request, status: str) -> web.Response:
    row = await data.set_status(tenant_conn(request), registry_pool(request),
                                settings_of(request), principal(request).tenant_id,
                                actor_of(request), uuid_path(request, "id"), status, utc_now())
    return json_response(recurring_json(row))


async def pause(request: web.Request) -> web.Response:
    """Stop sending until resumed."""
    return await _status(request, "paused")


async def resume(request: web.Request) -> web.Response:
    """Send again from the next occurrence (nothing missed while paused is sent)."""
    return await _status(request, "active")
