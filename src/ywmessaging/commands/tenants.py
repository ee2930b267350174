"""`ywm tenants create|list|move`: provision, inspect and move tenants."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import orjson

from ..config import Settings
from ..errors import ConfigError, ValidationFailed
from ..ops.move import move_tenant
from ..sqlq import registry as rq
from ..tenants.provisioning import Provisioner
from . import lifecycle
from .common import parse_id, print_table, registry_pool, secret_box

STATUSES = ("provisioning", "active", "suspended", "deleting", "deleted")


async def create(args: argparse.Namespace, settings: Settings) -> int:
    """Provision one tenant and print its id."""
    box = secret_box(settings)
    async with registry_pool(settings) as pool:
        prov = Provisioner(pool, settings, box)
        try:
            t = await prov.provision(args.name, time_zone=args.timezone)
        except ValidationFailed as exc:
            raise ConfigError(str(exc)) from None
        finally:
            await prov.close()
    if args.json:
        print(orjson.dumps({"id": str(t.id), "name": t.name, "server": t.server_name,
                            "database": t.db_name, "schema_version": t.schema_version}).decode())
    else:
        print(f"created tenant {t.id} ({t.name}) on server {t.server_name}, "
              f"database {t.db_name}, schema version {t.schema_version}, "
              f"{t.timings_ms['activate']:.0f} ms")
    return 0


async def list_(args: argparse.Namespace, settings: Settings) -> int:
    """Print tenants with status, server and schema version."""
    async with registry_pool(settings, max_size=1) as pool:
        rows: list[Any] = await rq(settings.sql_dir).list_tenants(pool, args.status, None)
    if args.json:
        print(orjson.dumps([
            {"id": str(r["id"]), "name": r["name"], "status": r["status"],
             "server": r["server_name"], "schema_version": r["schema_version"],
             "plan": r["plan"], "created_at": r["created_at"].isoformat()} for r in rows
        ]).decode())
        return 0
    print_table(
        ["ID", "NAME", "STATUS", "SERVER", "SCHEMA", "PLAN", "CREATED"],
        [[r["id"], r["name"], r["status"], r["server_name"], r["schema_version"], r["plan"],
          r["created_at"].strftime("%Y-%m-%d %H:%M")] for r in rows],
    )
    print(f"{len(rows)} tenant(s)")
    return 0


async def move(args: argparse.Namespace, settings: Settings) -> int:
    """Move one tenant to another database server, printing a line per step."""
    tenant_id = parse_id(args.tenant, "tenant")
    if args.grace < 0 or args.timeout <= 0:
        raise ConfigError("--grace must be >= 0 and --timeout > 0")
    box = secret_box(settings)
    async with registry_pool(settings, max_size=2) as pool:
        result = await move_tenant(pool, settings, box, tenant_id, args.to, grace=args.grace,
                                   copy_timeout=args.timeout,
                                   progress=lambda line: print(line, flush=True))
    for leftover in result.leftovers:
        print(f"ywm: warning: left behind {leftover}; drop it by hand", file=sys.stderr)
    print(f"moved tenant {result.tenant_id} from {result.source} to {result.target}: schema "
          f"version {result.schema_version}, {result.tables} tables, {result.rows} rows, "
          f"{result.seconds:.1f} s")
    return 0


def register(sub: Any) -> None:
    """Add `ywm tenants ...`."""
    p = sub.add_parser("tenants", help="provision and inspect tenants")
    tsub = p.add_subparsers(dest="tenants_command", metavar="SUBCOMMAND")
    tsub.required = True
    c = tsub.add_parser("create", help="provision a tenant (role, database, migrations)")
    c.add_argument("--name", required=True, help="church name (1-100 characters)")
    c.add_argument("--timezone", default="America/New_York", help="IANA time zone")
    c.add_argument("--json", action="store_true", help="print the result as JSON")
    c.set_defaults(func=create)
    ls = tsub.add_parser("list", help="list tenants with status, server and schema version")
    ls.add_argument("--status", choices=STATUSES, help="only tenants in this status")
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(func=list_)
    mv = tsub.add_parser("move", help="move a tenant to another database server (dump/restore)")
    mv.add_argument("tenant", metavar="TENANT", help="tenant id")
    mv.add_argument("--to", required=True, metavar="SERVER", help="target server id or name")
    mv.add_argument("--grace", type=float, default=5.0,
                    help="seconds the tenant's sessions get to end before they are terminated")
    mv.add_argument("--timeout", type=float, default=1800.0,
                    help="seconds pg_dump and pg_restore may each take")
    mv.set_defaults(func=move)
    lifecycle.register(tsub)
