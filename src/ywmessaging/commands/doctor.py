"""`ywm doctor`: find drift between the registry and the database servers (ops/doctor.py)."""

from __future__ import annotations

import argparse
from typing import Any

import orjson

from ..config import Settings
from ..ops.doctor import diagnose


async def run(args: argparse.Namespace, settings: Settings) -> int:
    """Print one line (or a JSON object) per finding; 1 when there is any."""
    findings = await diagnose(settings)
    if args.json:
        print(orjson.dumps({"ok": not findings,
                            "findings": [f.as_dict() for f in findings]}).decode())
    else:
        for f in findings:
            print(f.line())
        print(f"doctor: {len(findings)} finding(s)" if findings else "doctor: no findings")
    return 1 if findings else 0


def register(sub: Any) -> None:
    """Add `ywm doctor`."""
    p = sub.add_parser(
        "doctor", help="find orphan or missing tenant databases, stale schemas, dead servers",
        description="Compare the registry with every database server. Finding kinds: "
                    "orphan_database, missing_database, tenant_behind, stale_template, "
                    "server_unreachable. Exits 1 when there is any finding.",
    )
    p.add_argument("--json", action="store_true", help="print the findings as JSON")
    p.set_defaults(func=run)
