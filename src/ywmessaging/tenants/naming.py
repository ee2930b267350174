"""Names of the databases and roles the service creates for a tenant."""

from __future__ import annotations

import uuid

from ..config import Settings


def tenant_db_name(settings: Settings, tenant_id: uuid.UUID) -> str:
    """The tenant's database name: `<prefix>_t_<32 hex>`."""
    return f"{settings.db_prefix}_t_{tenant_id.hex}"


def tenant_role_name(settings: Settings, tenant_id: uuid.UUID) -> str:
    """The tenant's own login role: `<prefix>_r_<32 hex>`."""
    return f"{settings.db_prefix}_r_{tenant_id.hex}"


def is_tenant_db(settings: Settings, name: str) -> bool:
    """Whether a database name has the form this deployment gives tenant databases."""
    return _has_form(name, f"{settings.db_prefix}_t_")


def is_tenant_role(settings: Settings, name: str) -> bool:
    """Whether a role name has the form this deployment gives tenant roles."""
    return _has_form(name, f"{settings.db_prefix}_r_")


def _has_form(name: str, prefix: str) -> bool:
    rest = name[len(prefix):]
    return name.startswith(prefix) and len(rest) == 32 and all(
        c in "0123456789abcdef" for c in rest
    )
