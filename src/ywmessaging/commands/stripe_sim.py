"""`ywm stripe-sim`: the Stripe simulator, standalone or inside `ywm dev`."""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from ..billing.catalogue import load
from ..billing.simulator import RunningStripeSim, new_webhook_secret, start_stripe_sim
from ..billing.stripe_client import StripeBilling
from ..billing.sync import sync_catalogue
from ..config import ENV_VARS, Settings
from .sim_common import (
    CleanupCtx,
    add_bind_options,
    local_host,
    serve_until_signal,
    start_or_explain,
)

_DEFAULTS = {var.attr: var.default for var in ENV_VARS}


def say(line: str) -> None:
    """One line for the developer."""
    print(f"stripe-sim: {line}", flush=True)


def sim_url(settings: Settings) -> str:
    """Where the simulator listens, as a base URL."""
    return f"http://{settings.stripe_sim_host}:{settings.stripe_sim_port}"


def uses_default_simulator(settings: Settings) -> bool:
    """STRIPE_API_BASE left at its default: `ywm dev` runs the simulator on STRIPE_SIM_PORT."""
    return bool(settings.stripe_api_base.rstrip("/") == _DEFAULTS["stripe_api_base"])


def _secret(settings: Settings) -> str:
    secrets = settings.stripe_webhook_secrets()
    if secrets:
        return secrets[0]
    secret = new_webhook_secret()
    say(f"generated a webhook secret: STRIPE_WEBHOOK_SECRET={secret}")
    return secret


def dev_settings(settings: Settings, host: str, port: int) -> Settings:
    """`ywm dev`: with STRIPE_API_BASE at its default, the service talks to the in-process
    simulator on STRIPE_SIM_PORT and trusts its webhook secret; webhooks follow the dev
    server's address unless STRIPE_SIM_WEBHOOK_URL was changed. Otherwise nothing changes
    (a `ywm stripe-sim` elsewhere prints the STRIPE_WEBHOOK_SECRET to export)."""
    if not uses_default_simulator(settings):
        return settings
    webhook = settings.stripe_sim_webhook_url
    if webhook == _DEFAULTS["stripe_sim_webhook_url"]:
        webhook = f"http://{local_host(host)}:{port}/webhooks/stripe"
    secret = _secret(settings)
    secrets = (secret, *[s for s in settings.stripe_webhook_secrets() if s != secret])
    return settings.with_(stripe_api_base=sim_url(settings), stripe_sim_webhook_url=webhook,
                          stripe_webhook_secret=",".join(secrets))


async def _sync(settings: Settings) -> int:
    client = StripeBilling(settings)
    try:
        catalogue = load(settings.billing_catalogue)
        report = await sync_catalogue(client, catalogue.plans,
                                      setup_fee_cents=catalogue.number_setup_fee_cents)
    finally:
        await client.close()
    return len(report.prices)


def dev_ctx(settings: Settings) -> CleanupCtx:
    """A cleanup context running the simulator in-process (only when the service uses it), with
    the catalogue's prices made at start (its state is in memory)."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        if settings.stripe_api_base != sim_url(settings):
            yield
            return
        sim = await start_or_explain(
            "Stripe simulator", settings.stripe_sim_host, settings.stripe_sim_port,
            start_stripe_sim(host=settings.stripe_sim_host, port=settings.stripe_sim_port,
                             webhook_secret=_secret(settings),
                             webhook_url=settings.stripe_sim_webhook_url))
        say(f"listening on {sim.base_url}, webhooks to {settings.stripe_sim_webhook_url}")
        say(f"the catalogue's {await _sync(settings)} prices are on its account")
        yield
        await sim.stop()

    return ctx


async def run(args: argparse.Namespace, settings: Settings) -> int:
    """Serve the simulator until SIGINT/SIGTERM."""
    if args.port is not None:
        settings = settings.with_(stripe_sim_port=args.port)
    if args.host:
        settings = settings.with_(stripe_sim_host=args.host)
    if args.webhook_url:
        if urlsplit(args.webhook_url).scheme not in ("http", "https"):
            say("--webhook-url must be an http(s) URL")
            return 2
        settings = settings.with_(stripe_sim_webhook_url=args.webhook_url)
    sim: RunningStripeSim = await start_stripe_sim(
        host=settings.stripe_sim_host, port=settings.stripe_sim_port,
        webhook_secret=_secret(settings), webhook_url=settings.stripe_sim_webhook_url,
        api_key=args.api_key)
    say(f"listening on {sim.base_url}; webhooks to {settings.stripe_sim_webhook_url}")
    say(f"the service needs STRIPE_API_BASE={sim.base_url} "
        f"STRIPE_WEBHOOK_SECRET={sim.webhook_secret}; then `ywm billing sync-catalogue`")
    return await serve_until_signal(sim, say)


def register(sub: Any) -> None:
    """Add `ywm stripe-sim`."""
    p = sub.add_parser("stripe-sim", help="run the Stripe simulator (STRIPE_SIM_* settings)")
    add_bind_options(p, "STRIPE_SIM", 8082)
    p.add_argument("--webhook-url", help="where to send webhooks (default: "
                   "STRIPE_SIM_WEBHOOK_URL)")
    p.add_argument("--api-key", help="accept only this secret key (default: any sk_test_…)")
    p.set_defaults(func=run)
