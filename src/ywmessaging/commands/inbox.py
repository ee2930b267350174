"""`ywm inbox list|retry`: see stored webhook events, and replay failed ones."""

from __future__ import annotations

import argparse
from typing import Any

import orjson

from ..config import Settings
from ..errors import OperationError
from ..ops.inbox import list_events, replay
from .common import print_table, registry_pool, secret_box


def _when(value: Any) -> str:
    return value.isoformat(timespec="seconds") if value is not None else ""


async def list_(args: argparse.Namespace, settings: Settings) -> int:
    """Print the newest stored events (only failed ones with --failed)."""
    async with registry_pool(settings, max_size=1) as pool:
        rows = await list_events(pool, settings, failed=args.failed, limit=args.limit)
    if args.json:
        print(orjson.dumps([{
            "id": r["id"], "provider": r["provider"], "event_id": r["event_id"],
            "event_type": r["event_type"], "tenant_id": r["tenant_id"], "state": r["state"],
            "attempts": r["attempts"], "next_attempt_at": r["next_attempt_at"],
            "last_error": r["last_error"], "received_at": r["received_at"],
            "processed_at": r["processed_at"]} for r in rows]).decode())
        return 0
    print_table(
        ["ID", "EVENT TYPE", "STATE", "ATTEMPTS", "RECEIVED", "NEXT ATTEMPT", "CHURCH",
         "RESULT / ERROR", "EVENT ID"],
        [[r["id"], r["event_type"], r["state"], r["attempts"], _when(r["received_at"]),
          _when(r["next_attempt_at"]) if r["state"] in ("received", "failed") else "",
          r["tenant_id"], (r["last_error"] or "")[:60], r["event_id"]] for r in rows],
    )
    print(f"{len(rows)} event(s)" + (" failed" if args.failed else ""))
    return 0


async def retry(args: argparse.Namespace, settings: Settings) -> int:
    """Replay failed events now; exit 1 if one could not be replayed or failed again."""
    if bool(args.ids) == bool(args.all_failed):
        raise OperationError("give event ids (from `ywm inbox list`) or --all-failed")
    async with registry_pool(settings, max_size=4) as pool:
        done = await replay(pool, settings, secret_box(settings), ids=args.ids,
                            all_failed=args.all_failed)
    found = {d.id for d in done}
    missing = [i for i in args.ids if i not in found]
    for d in done:
        outcome = d.outcome
        state = "taken by another process" if outcome is None else outcome.state
        reason = f" ({outcome.reason})" if outcome is not None and outcome.reason else ""
        print(f"{d.id}  {d.event_type}  {state}{reason}")
    for i in missing:
        print(f"{i}  not replayed: no such event, or it is not failed or ignored")
    again = [d for d in done if d.outcome is not None and d.outcome.state == "retry"]
    print(f"{len(done)} event(s) replayed, {len(again)} failed again")
    return 1 if missing or again else 0


def register(sub: Any) -> None:
    """Add `ywm inbox ...`."""
    p = sub.add_parser("inbox", help="stored webhook events: list them, replay failed ones")
    isub = p.add_subparsers(dest="inbox_command", metavar="SUBCOMMAND")
    isub.required = True
    ls = isub.add_parser("list", help="the newest stored events, newest first")
    ls.add_argument("--failed", action="store_true",
                    help="only events whose processing failed (waiting for a retry, or given up)")
    ls.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(func=list_)
    r = isub.add_parser("retry", help="replay events now (failed or ignored ones)")
    r.add_argument("ids", metavar="ID", type=int, nargs="*", help="inbox event ids")
    r.add_argument("--all-failed", action="store_true",
                   help="every failed event (waiting for a retry, or given up)")
    r.set_defaults(func=retry)
