"""`ywm servers add|list|set|drain|activate`: the PostgreSQL servers tenants live on."""

from __future__ import annotations

import argparse
from typing import Any

import orjson

from ..config import Settings
from ..errors import ConfigError
from ..ops.servers import add_server, describe_row, server_statuses, set_sizing, set_state
from .common import print_table, registry_pool, secret_box


def _print_row(row: Any, as_json: bool) -> None:
    pairs = describe_row(row)
    if as_json:
        print(orjson.dumps(dict(pairs)).decode())
        return
    width = max(len(k) for k, _ in pairs)
    for key, value in pairs:
        print(f"{key.ljust(width)}  {value}")


async def add(args: argparse.Namespace, settings: Settings) -> int:
    """Register a server, make its template and print its row."""
    box = secret_box(settings)
    async with registry_pool(settings, max_size=1) as pool, pool.acquire() as conn:
        row = await add_server(conn, settings, box, name=args.name, dsn=args.dsn,
                               max_tenants=args.max_tenants, budget=args.budget)
    _print_row(row, args.json)
    return 0


async def list_(args: argparse.Namespace, settings: Settings) -> int:
    """Print every server with its load and live connection count."""
    box = secret_box(settings)
    async with registry_pool(settings, max_size=1) as pool, pool.acquire() as conn:
        statuses = await server_statuses(conn, settings, box)
    if args.json:
        print(orjson.dumps([
            {"id": s.row["id"], "name": s.row["name"], "host": s.row["host"],
             "port": s.row["port"], "state": s.row["state"], "tenants": s.row["tenant_count"],
             "max_tenants": s.row["max_tenants"], "budget": s.row["conn_budget"],
             "open_connections": s.open_connections,
             "template_version": s.row["template_version"]} for s in statuses
        ]).decode())
        return 0
    print_table(
        ["ID", "NAME", "HOST:PORT", "STATE", "TENANTS", "MAX", "BUDGET", "OPEN", "TEMPLATE"],
        [[s.row["id"], s.row["name"], f"{s.row['host']}:{s.row['port']}", s.row["state"],
          s.row["tenant_count"], s.row["max_tenants"], s.row["conn_budget"], s.open_text,
          s.row["template_version"]] for s in statuses],
    )
    print(f"{len(statuses)} server(s)")
    return 0


def _budget(raw: str) -> int | str:
    """`--budget`: a number of connections, or `auto` (from the server's max_connections)."""
    if raw.strip().lower() == "auto":
        return "auto"
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"--budget must be a number of connections or `auto`, got {raw!r}"
                          ) from None


async def set_(args: argparse.Namespace, settings: Settings) -> int:
    """Change a server's tenant cap and/or connection budget; print the row."""
    box = secret_box(settings)
    budget = None if args.budget is None else _budget(args.budget)
    async with registry_pool(settings, max_size=1) as pool, pool.acquire() as conn:
        done = await set_sizing(conn, settings, box, args.server, max_tenants=args.max_tenants,
                                budget=budget, force=args.force)
    row = done.row
    if args.json:
        print(orjson.dumps({**dict(describe_row(row)),
                            "usable_connections": done.usable}).decode())
        return 0
    _print_row(row, False)
    if done.usable is not None:
        print(f"budget {row['conn_budget']} of {done.usable} usable connections "
              f"(max_connections {done.max_connections} - {done.superuser_reserved} "
              "reserved for superusers); running processes were notified")
    if row["tenant_count"] > row["max_tenants"]:
        print(f"it holds {row['tenant_count']} tenants, more than max_tenants: no new tenant "
              "is placed there; existing ones stay")
    return 0


async def _set_state(args: argparse.Namespace, settings: Settings, state: str) -> int:
    async with registry_pool(settings, max_size=1) as pool, pool.acquire() as conn:
        row = await set_state(conn, settings, args.server, state)
    note = ("no new tenants are placed there" if state == "draining"
            else "new tenants may be placed there")
    print(f"server {row['id']} ({row['name']}) is {row['state']}: {note}")
    return 0


async def drain(args: argparse.Namespace, settings: Settings) -> int:
    """Stop placing new tenants on a server."""
    return await _set_state(args, settings, "draining")


async def activate(args: argparse.Namespace, settings: Settings) -> int:
    """Place new tenants on a server again."""
    return await _set_state(args, settings, "active")


def register(sub: Any) -> None:
    """Add `ywm servers ...`."""
    p = sub.add_parser("servers", help="the PostgreSQL servers tenants live on")
    ssub = p.add_subparsers(dest="servers_command", metavar="SUBCOMMAND")
    ssub.required = True
    a = ssub.add_parser("add", help="register a server and create its template database")
    a.add_argument("--name", required=True, help="short name (a-z 0-9 _ . -)")
    a.add_argument("--dsn", required=True,
                   help="admin DSN, postgresql://user:pass@host:port/postgres (password is "
                        "stored encrypted)")
    a.add_argument("--max-tenants", type=int, default=500, help="tenants it may hold")
    a.add_argument("--budget", type=int, default=None,
                   help="connections all app processes may open there (default: from its "
                        "max_connections)")
    a.add_argument("--json", action="store_true", help="print the row as JSON")
    a.set_defaults(func=add)
    ls = ssub.add_parser("list", help="servers with load, live connections, template version")
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(func=list_)
    st = ssub.add_parser("set", help="change a server's tenant cap or connection budget")
    st.add_argument("server", metavar="SERVER", help="server id or name")
    st.add_argument("--max-tenants", type=int, default=None, help="tenants it may hold")
    st.add_argument("--budget", default=None, metavar="N|auto",
                    help="connections all app processes may open there, at most its "
                         "max_connections - superuser_reserved_connections (auto: derived "
                         "from max_connections as at `add`)")
    st.add_argument("--force", action="store_true",
                    help="set the budget without checking it against the server (or when it "
                         "does not answer)")
    st.add_argument("--json", action="store_true", help="print the row as JSON")
    st.set_defaults(func=set_)
    d = ssub.add_parser("drain", help="stop placing new tenants on a server")
    d.add_argument("server", metavar="ID", help="server id or name")
    d.set_defaults(func=drain)
    ac = ssub.add_parser("activate", help="place new tenants on a server again")
    ac.add_argument("server", metavar="ID", help="server id or name")
    ac.set_defaults(func=activate)
