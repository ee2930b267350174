"""`ywm pco-sim`: the Planning Center simulator, standalone or inside `ywm dev`."""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from ..config import ENV_VARS, Settings
from ..integrations.pco_sim import start_pco_sim
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
    print(f"pco-sim: {line}", flush=True)


def sim_url(settings: Settings) -> str:
    """Where the simulator listens, as a base URL."""
    return f"http://{settings.pco_sim_host}:{settings.pco_sim_port}"


def uses_default_simulator(settings: Settings) -> bool:
    """PCO_API_BASE left at its default: `ywm dev` runs the simulator on PCO_SIM_PORT."""
    return bool(settings.pco_api_base.rstrip("/") == _DEFAULTS["pco_api_base"])


def dev_settings(settings: Settings, host: str, port: int) -> Settings:
    """`ywm dev`: with PCO_API_BASE at its default, the service talks to the in-process
    simulator on PCO_SIM_PORT; the OAuth redirect and the webhook URL follow the dev server's
    address unless they were changed."""
    if not uses_default_simulator(settings):
        return settings
    local = local_host(host)
    redirect, webhook = settings.pco_redirect_url, settings.pco_webhook_url
    if redirect == _DEFAULTS["pco_redirect_url"]:
        redirect = f"http://{local}:{port}/api/v1/integrations/planning-center/callback"
    if webhook == _DEFAULTS["pco_webhook_url"]:
        webhook = f"http://{local}:{port}/webhooks/planning-center"
    return settings.with_(pco_api_base=sim_url(settings), pco_redirect_url=redirect,
                          pco_webhook_url=webhook)


def dev_ctx(settings: Settings) -> CleanupCtx:
    """A cleanup context running the simulator in-process (only when the service uses it)."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        if settings.pco_api_base.rstrip("/") != sim_url(settings):
            yield
            return
        sim = await start_or_explain(
            "Planning Center simulator", settings.pco_sim_host, settings.pco_sim_port,
            start_pco_sim(host=settings.pco_sim_host, port=settings.pco_sim_port,
                          client_id=settings.pco_client_id,
                          client_secret=settings.pco_client_secret))
        say(f"listening on {sim.base_url} (OAuth, People v2, webhooks; /sim/people to add "
            f"people)")
        yield
        await sim.stop()

    return ctx


async def run(args: argparse.Namespace, settings: Settings) -> int:
    """Serve the simulator until SIGINT/SIGTERM."""
    host = args.host or settings.pco_sim_host
    port = settings.pco_sim_port if args.port is None else args.port
    sim = await start_pco_sim(host=host, port=port, client_id=settings.pco_client_id,
                              client_secret=settings.pco_client_secret)
    say(f"listening on {sim.base_url}; the service needs PCO_API_BASE={sim.base_url} "
        f"(client {settings.pco_client_id}, PCO_CLIENT_ID/PCO_CLIENT_SECRET as set here)")
    if args.people:
        for i in range(args.people):
            sim.state.add_person({"first_name": f"Person{i}", "last_name": "Sim",
                                  "phone": f"+1212{2000000 + i:07d}",
                                  "email": f"p{i}@example.org"})
        say(f"{args.people} people added")
    return await serve_until_signal(sim, say)


def register(sub: Any) -> None:
    """Add `ywm pco-sim`."""
    p = sub.add_parser("pco-sim", help="run the Planning Center simulator (PCO_SIM_* settings)")
    add_bind_options(p, "PCO_SIM", 8083)
    p.add_argument("--people", type=int, default=0, help="start with this many people")
    p.set_defaults(func=run)
