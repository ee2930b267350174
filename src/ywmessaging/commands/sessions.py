"""`ywm sessions revoke`: end a church's login sessions and refuse their tokens everywhere."""

from __future__ import annotations

import argparse
from typing import Any

from ..auth.operator import revoke_sessions
from ..config import Settings
from ..errors import ConfigError
from .common import parse_id, registry_pool, secret_box


async def revoke(args: argparse.Namespace, settings: Settings) -> int:
    """Revoke the sessions of one admin, or of every admin of the church."""
    tenant_id = parse_id(args.tenant, "tenant")
    admin_id = parse_id(args.admin, "admin") if args.admin else None
    if not args.admin and not args.all:
        raise ConfigError("name an admin with --admin ID, or every admin with --all")
    async with registry_pool(settings, max_size=2) as pool:
        done = await revoke_sessions(pool, settings, secret_box(settings), tenant_id,
                                     admin_id=admin_id, ticket=args.ticket)
    print(f"revoked {done.sessions} session(s) of {len(done.admins)} admin(s) of tenant "
          f"{tenant_id}; their access tokens are refused by every API process now")
    return 0


def register(sub: Any) -> None:
    """Add `ywm sessions ...`."""
    p = sub.add_parser("sessions", help="end admins' login sessions")
    ssub = p.add_subparsers(dest="sessions_command", metavar="SUBCOMMAND")
    ssub.required = True
    r = ssub.add_parser("revoke", help="revoke sessions and refuse their access tokens at once")
    r.add_argument("tenant", metavar="TENANT", help="tenant id")
    who = r.add_mutually_exclusive_group()
    who.add_argument("--admin", metavar="ID", help="only this admin's sessions")
    who.add_argument("--all", action="store_true", help="every admin of the church")
    r.add_argument("--ticket", help="a reference recorded in the church's audit log")
    r.set_defaults(func=revoke)
