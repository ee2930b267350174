"""Roles, the permission table, and the per-route markers the auth middleware consults.

The route table (routes.py) marks every `/api/v1` route `public` or `requires(Permission.X)`;
the auth middleware refuses (deny by default) any route that carries neither marker.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

OWNER = "owner"
ADMIN = "admin"
ROLES = (OWNER, ADMIN)
_MARK = "__ywm_permission__"
PUBLIC = "public"


class Permission(StrEnum):
    """What a route needs; roles are sets of these."""

    SELF = "self"                        # own profile, password, MFA, sessions
    ADMINS_READ = "admins.read"
    ADMINS_MANAGE = "admins.manage"      # invite, remove, change roles
    CHURCH_READ = "church.read"
    CHURCH_MANAGE = "church.manage"      # settings, quiet hours, replies
    BRANCHES_WRITE = "branches.write"
    MEMBERS_READ = "members.read"
    MEMBERS_WRITE = "members.write"
    MESSAGES_READ = "messages.read"
    MESSAGES_SEND = "messages.send"
    TEMPLATES_WRITE = "templates.write"
    TEMPLATES_READ = "templates.read"
    MEMBERS_EXPORT = "members.export"    # download every member as CSV
    ANALYTICS_READ = "analytics.read"    # analytics and the NPS summary
    NPS_SUBMIT = "nps.submit"
    AUDIT_READ = "audit.read"
    NUMBERS_MANAGE = "numbers.manage"    # buy and release numbers, 10DLC registration (cost)
    BILLING_MANAGE = "billing.manage"
    CHURCH_CLOSE = "church.close"        # delete the church's account and data
    ACCOUNT_EXPORT = "account.export"    # export and download all of the church's data


OWNER_ONLY = frozenset({
    Permission.ADMINS_MANAGE, Permission.NUMBERS_MANAGE, Permission.BILLING_MANAGE,
    Permission.CHURCH_CLOSE, Permission.ACCOUNT_EXPORT,
})

ROLE_PERMISSIONS: dict[str, frozenset[Permission]] = {
    OWNER: frozenset(Permission),
    ADMIN: frozenset(Permission) - OWNER_ONLY,
}


def allowed(role: str, permission: Permission) -> bool:
    """Whether `role` holds `permission` (an unknown role holds nothing)."""
    return permission in ROLE_PERMISSIONS.get(role, frozenset())


def requires(permission: Permission) -> Callable[[F], F]:
    """Mark a handler as needing an authenticated admin whose role holds `permission`."""

    def mark(handler: F) -> F:
        setattr(handler, _MARK, permission)
        return handler

    return mark


def public(handler: F) -> F:
    """Mark a handler as reachable without an access token."""
    setattr(handler, _MARK, PUBLIC)
    return handler


def route_permission(handler: object) -> Permission | str | None:
    """`PUBLIC`, the Permission a handler needs, or None when it is unmarked."""
    mark = getattr(handler, _MARK, None)
    return mark if isinstance(mark, str) else None
