"""Security events: one row in the tenant's audit log and one JSON log line, never a secret."""

from __future__ import annotations

import ipaddress
import uuid
from typing import Any

import orjson
import structlog

from ..config import Settings
from ..sqlq import tenant as tq
from .state import Client

log = structlog.get_logger("ywm.security")


def clean_ip(ip: str | None) -> str | None:
    """The address if it is an IP address (a unix-socket peer has none)."""
    if not ip:
        return None
    try:
        return str(ipaddress.ip_address(ip))
    except ValueError:
        return None


def security_log(action: str, *, tenant_id: uuid.UUID | None, admin_id: uuid.UUID | None,
                 client: Client, **fields: Any) -> None:
    """The JSON log line of a security event (also used when no tenant is known)."""
    log.info("security_event", action=action,
             tenant_id=str(tenant_id) if tenant_id else None,
             admin_id=str(admin_id) if admin_id else None, ip=clean_ip(client.ip), **fields)


async def record(conn: Any, settings: Settings, action: str, *, tenant_id: uuid.UUID,
                 admin_id: uuid.UUID | None, client: Client, target_id: uuid.UUID | None = None,
                 detail: dict[str, Any] | None = None, actor_kind: str = "admin") -> None:
    """Write the event to the tenant's audit log and to the JSON log."""
    await tq(settings.sql_dir).insert_audit(
        conn, admin_id, actor_kind, action, "admin" if target_id else None,
        str(target_id) if target_id else None, orjson.dumps(detail or {}).decode(),
        clean_ip(client.ip), client.request_id[:100] if client.request_id else None,
    )
    security_log(action, tenant_id=tenant_id, admin_id=admin_id, client=client,
                 **({"target_id": str(target_id)} if target_id else {}), **(detail or {}))
