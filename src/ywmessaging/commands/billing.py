"""`ywm billing sync-catalogue`: the plan catalogue's products and prices at Stripe."""

from __future__ import annotations

import argparse
from typing import Any

from ..billing.catalogue import load
from ..billing.stripe_client import StripeBilling
from ..billing.sync import sync_catalogue
from ..config import Settings
from ..errors import AppError, OperationError


async def sync(args: argparse.Namespace, settings: Settings) -> int:
    """Create what the catalogue needs at STRIPE_API_BASE; print one line per price."""
    client = StripeBilling(settings)
    try:
        catalogue = load(settings.billing_catalogue)  # the deployment's own, if it has one
        report = await sync_catalogue(client, catalogue.plans, dry_run=args.dry_run,
                                      setup_fee_cents=catalogue.number_setup_fee_cents)
    except AppError as exc:
        raise OperationError(f"sync-catalogue at {settings.stripe_api_base}: {exc.code}: "
                             f"{exc}") from exc
    finally:
        await client.close()
    for key, (what, price_id) in report.prices.items():
        verb = f"would be {what}" if args.dry_run and what != "kept" else what
        print(f"{key}\t{verb}\t{price_id}".rstrip())
    for product in report.products_created:
        print(f"{product}\tproduct created")
    if not report.changed:
        print("sync-catalogue: nothing to do, Stripe has the catalogue")
    return 0


def register(sub: Any) -> None:
    """Add `ywm billing …`."""
    p = sub.add_parser("billing", help="billing operations at Stripe")
    billing = p.add_subparsers(dest="billing_command", metavar="SUBCOMMAND")
    billing.required = True
    s = billing.add_parser("sync-catalogue", help="create the plan catalogue's products and "
                           "prices at Stripe (idempotent: found again by lookup key)")
    s.add_argument("--dry-run", action="store_true", help="say what would be made, make nothing")
    s.set_defaults(func=sync)
