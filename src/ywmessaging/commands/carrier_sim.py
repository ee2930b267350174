"""`ywm carrier-sim`: the Telnyx-compatible carrier simulator, standalone or inside `ywm dev`."""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from ..config import ENV_VARS, Settings
from ..keys import REGISTRY_POOL
from ..messaging.signature import generate_seed, private_key, public_key_b64
from ..messaging.simulator import RunningSimulator, start_simulator
from ..sqlq import registry as rq

CleanupCtx = Callable[[web.Application], AsyncIterator[None]]
_DEFAULTS = {attr: default for _n, attr, _k, default, _m in ENV_VARS}


def say(line: str) -> None:
    """One line for the developer."""
    print(f"carrier-sim: {line}", flush=True)


def _seed(settings: Settings) -> str:
    if settings.carrier_sim_signing_key:
        return settings.carrier_sim_signing_key
    seed = generate_seed()
    say(f"generated a signing key: CARRIER_SIM_SIGNING_KEY={seed}")
    return seed


def sim_url(settings: Settings) -> str:
    """Where the simulator listens, as a base URL."""
    return f"http://{settings.carrier_sim_host}:{settings.carrier_sim_port}"


def dev_settings(settings: Settings, host: str, port: int) -> Settings:
    """`ywm dev`: point the service at the simulator and trust its key.

    Left alone when TELNYX_API_BASE was changed from its default (a real carrier in dev). The
    webhook URL follows the dev server's address unless CARRIER_SIM_WEBHOOK_URL was changed.
    """
    if settings.telnyx_api_base != _DEFAULTS["telnyx_api_base"]:
        return settings
    seed = _seed(settings)
    webhook = settings.carrier_sim_webhook_url
    if webhook == _DEFAULTS["carrier_sim_webhook_url"]:
        local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        webhook = f"http://{local}:{port}/webhooks/telnyx"
    return settings.with_(carrier_sim_signing_key=seed, carrier_sim_webhook_url=webhook,
                          telnyx_api_base=sim_url(settings),
                          telnyx_public_key=public_key_b64(private_key(seed)))


async def adopt_registry_numbers(sim: RunningSimulator, registry_pool: Any,
                                 settings: Settings) -> int:
    """Put the registry's numbers on the simulator's account (its state is in memory, so a
    restarted `ywm dev` would otherwise refuse to send from them, and not know a pending
    number's order); how many."""
    rows = await rq(settings.sql_dir).all_numbers(registry_pool, timeout=5.0)
    for row in rows:
        if row["status"] == "pending" and row["carrier_order_id"]:
            sim.state.adopt_order(row["carrier_order_id"], row["e164"])
        else:
            sim.state.add_number(row["e164"])
    return len(rows)


def dev_ctx(settings: Settings) -> CleanupCtx:
    """A cleanup context running the simulator in-process (only when the service uses it)."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        if settings.telnyx_api_base != sim_url(settings):
            yield
            return
        sim = await start_simulator(host=settings.carrier_sim_host,
                                    port=settings.carrier_sim_port,
                                    signing_key=settings.carrier_sim_signing_key,
                                    webhook_url=settings.carrier_sim_webhook_url,
                                    order_delay=settings.carrier_sim_order_delay)
        say(f"listening on {sim.base_url}, webhooks to {settings.carrier_sim_webhook_url}")
        adopted = await adopt_registry_numbers(sim, app[REGISTRY_POOL], settings)
        if adopted:
            say(f"the account owns the registry's {adopted} number(s)")
        yield
        await sim.stop()

    return ctx


async def run(args: argparse.Namespace, settings: Settings) -> int:
    """Serve the simulator until SIGINT/SIGTERM."""
    if args.port is not None:
        settings = settings.with_(carrier_sim_port=args.port)
    if args.host:
        settings = settings.with_(carrier_sim_host=args.host)
    if args.webhook_url:
        if urlsplit(args.webhook_url).scheme not in ("http", "https"):
            say("--webhook-url must be an http(s) URL")
            return 2
        settings = settings.with_(carrier_sim_webhook_url=args.webhook_url)
    sim = await start_simulator(host=settings.carrier_sim_host, port=settings.carrier_sim_port,
                                signing_key=_seed(settings),
                                webhook_url=settings.carrier_sim_webhook_url,
                                api_key=args.api_key,
                                order_delay=settings.carrier_sim_order_delay)
    say(f"listening on {sim.base_url}; webhooks to {settings.carrier_sim_webhook_url}")
    say(f"the service needs TELNYX_API_BASE={sim.base_url} TELNYX_PUBLIC_KEY={sim.public_key}")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await sim.stop()
        say("stopped")
    return 0


def register(sub: Any) -> None:
    """Add `ywm carrier-sim`."""
    p = sub.add_parser("carrier-sim", help="run the Telnyx-compatible carrier simulator "
                       "(CARRIER_SIM_* settings)")
    p.add_argument("--host", help="address to bind (default: CARRIER_SIM_HOST)")
    p.add_argument("--port", type=int, help="port to bind (default: CARRIER_SIM_PORT, 8081)")
    p.add_argument("--webhook-url", help="where to send webhooks (default: "
                   "CARRIER_SIM_WEBHOOK_URL)")
    p.add_argument("--api-key", help="accept only this Bearer key (default: any non-empty)")
    p.set_defaults(func=run)
