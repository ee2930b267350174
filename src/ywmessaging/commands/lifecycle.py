"""`ywm tenants suspend|resume|delete|history`: a church's life, by an operator
(ops/runbook-lifecycle.md)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from datetime import UTC, datetime
from typing import Any

from ..billing.stripe_client import StripeBilling
from ..config import Settings
from ..errors import ConfigError
from ..messaging import queue
from ..messaging.telnyx import carrier_from_settings
from ..ops.teardown import Teardown
from ..tenants import lifecycle
from .common import parse_id, print_table, registry_pool, secret_box


def operator(args: argparse.Namespace) -> str:
    """`operator:<name>` for the transitions table (--by, else the login name)."""
    name = args.by or getpass.getuser() or "unknown"
    return f"operator:{name}"[:100]


async def suspend(args: argparse.Namespace, settings: Settings) -> int:
    """Suspend a church: 423 everywhere but billing, export and deletion; nothing is sent."""
    tenant_id = parse_id(args.tenant, "tenant")
    async with registry_pool(settings, max_size=1) as pool:
        changed = await lifecycle.suspend(pool, settings, tenant_id, by="operator",
                                          actor=operator(args), reason=args.reason)
    print(f"tenant {tenant_id} suspended" if changed else
          f"tenant {tenant_id} was already suspended by an operator")
    return 0


async def resume(args: argparse.Namespace, settings: Settings) -> int:
    """Resume a suspended church (whoever suspended it) and put it back on the work queue."""
    tenant_id = parse_id(args.tenant, "tenant")
    async with registry_pool(settings, max_size=1) as pool:
        changed = await lifecycle.resume(pool, settings, tenant_id, actor=operator(args),
                                         reason=args.reason)
        if changed:
            await queue.enqueue(pool, settings, tenant_id, datetime.now(UTC))
    print(f"tenant {tenant_id} resumed" if changed else f"tenant {tenant_id} was not suspended")
    return 0


async def delete(args: argparse.Namespace, settings: Settings) -> int:
    """Tear a church down now (or finish an interrupted teardown), after confirmation."""
    tenant_id = parse_id(args.tenant, "tenant")
    if not args.now:
        raise ConfigError("say --now: an operator's deletion has no grace period (the owner "
                          "schedules one with POST /api/v1/account/deletion)")
    if not args.yes:
        if not sys.stdin.isatty():
            raise ConfigError("refusing to delete without confirmation; pass --yes in scripts")
        prompt = (f"Delete church {tenant_id} for good (numbers released, subscription "
                  "canceled, database dropped)? Type its id to confirm: ")
        answer = await asyncio.to_thread(input, prompt)
        if answer.strip() != str(tenant_id):
            print("not deleted")
            return 1
    box = secret_box(settings)
    carrier = carrier_from_settings(settings)
    stripe = StripeBilling(settings)
    try:
        async with registry_pool(settings, max_size=2) as pool:
            steps = await Teardown(pool, settings, box, carrier, stripe,
                                   _progress).run(tenant_id, actor=operator(args))
    finally:
        await stripe.close()
        closer = getattr(carrier, "close", None)
        if closer is not None:
            await closer()
    print(f"tenant {tenant_id} deleted" if steps else f"tenant {tenant_id} was already deleted")
    return 0


async def _progress(tenant_id: Any, step: str) -> None:
    print(f"  {step}: done", flush=True)


async def history(args: argparse.Namespace, settings: Settings) -> int:
    """Print a church's lifecycle transitions."""
    tenant_id = parse_id(args.tenant, "tenant")
    async with registry_pool(settings, max_size=1) as pool:
        rows = await lifecycle.transitions(pool, settings, tenant_id)
    print_table(["WHEN", "ACTION", "FROM", "TO", "WHO", "WHY"],
                [[r["created_at"].strftime("%Y-%m-%d %H:%M:%S"), r["action"], r["old_status"],
                  r["new_status"], r["actor"], r["reason"]] for r in rows])
    return 0


def register(tsub: Any) -> None:
    """Add the lifecycle subcommands to `ywm tenants`."""
    s = tsub.add_parser("suspend", help="suspend a church (423 except billing, export, "
                        "deletion; nothing sent; STOP/START/HELP still honoured)")
    s.add_argument("tenant", metavar="TENANT", help="tenant id")
    s.add_argument("--reason", required=True, help="why (recorded)")
    s.add_argument("--by", help="operator name recorded (default: your login name)")
    s.set_defaults(func=suspend)
    r = tsub.add_parser("resume", help="resume a suspended church")
    r.add_argument("tenant", metavar="TENANT", help="tenant id")
    r.add_argument("--reason", help="why (recorded)")
    r.add_argument("--by", help="operator name recorded (default: your login name)")
    r.set_defaults(func=resume)
    d = tsub.add_parser("delete", help="tear a church down now (resumes an interrupted "
                        "teardown)")
    d.add_argument("tenant", metavar="TENANT", help="tenant id")
    d.add_argument("--now", action="store_true",
                   help="delete now, without the owner's 30-day grace")
    d.add_argument("--yes", action="store_true", help="do not ask for confirmation (scripts)")
    d.add_argument("--by", help="operator name recorded (default: your login name)")
    d.set_defaults(func=delete)
    h = tsub.add_parser("history", help="a church's suspensions, resumptions and deletion")
    h.add_argument("tenant", metavar="TENANT", help="tenant id")
    h.set_defaults(func=history)
