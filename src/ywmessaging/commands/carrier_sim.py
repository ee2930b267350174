"""`ywm carrier-sim`: the Telnyx-compatible carrier simulator, standalone or inside `ywm dev`."""

from __future__ import annotations

import argparse
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlsplit
from urllib.request import urlopen

import orjson
from aiohttp import web

from ..config import ENV_VARS, Settings
from ..keys import REGISTRY_POOL
from ..messaging.signature import generate_seed, private_key, public_key_b64
from ..messaging.simulator import RunningSimulator, start_simulator
from ..sqlq import registry as rq
from .sim_common import (
    CleanupCtx,
    add_bind_options,
    local_host,
    serve_until_signal,
    start_or_explain,
)

_DEFAULTS = {var.attr: var.default for var in ENV_VARS}
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


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


def _loopback_port(url: str) -> int | None:
    """The port of an http URL on this machine's loopback (None: elsewhere, or https)."""
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname not in _LOOPBACK or parts.path.strip("/"):
        return None
    try:
        return parts.port or 80
    except ValueError:
        return None


def uses_default_simulator(settings: Settings) -> bool:
    """TELNYX_API_BASE left at its default: `ywm dev` runs the simulator on CARRIER_SIM_PORT."""
    return bool(settings.telnyx_api_base.rstrip("/") == _DEFAULTS["telnyx_api_base"])


def _own_port(settings: Settings, port_free: Callable[[str, int], bool]) -> int | None:
    """The port of the simulator `ywm dev` runs itself (None: the service uses another)."""
    if uses_default_simulator(settings):
        return settings.carrier_sim_port
    port = _loopback_port(settings.telnyx_api_base)
    if port is None or (settings.carrier_sim_port != _DEFAULTS["carrier_sim_port"]
                        and port != settings.carrier_sim_port):
        return None
    # TELNYX_API_BASE names a loopback port: ywm dev's own simulator runs there, unless a
    # simulator (`ywm carrier-sim`) already listens on it
    return port if port_free(settings.carrier_sim_host, port) else None


def _external_key(settings: Settings) -> str | None:
    """The public key of a simulator the service uses but `ywm dev` did not start."""
    if settings.telnyx_public_key:
        return settings.telnyx_public_key
    if settings.carrier_sim_signing_key:   # shared with a `ywm carrier-sim` in this shell
        return public_key_b64(private_key(settings.carrier_sim_signing_key))
    if _loopback_port(settings.telnyx_api_base) is None:
        return None
    try:   # a carrier simulator on this machine says which key signs its webhooks
        with urlopen(f"{settings.telnyx_api_base.rstrip('/')}/sim/stats", timeout=2) as resp:
            key = orjson.loads(resp.read())["data"]["public_key"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return key if isinstance(key, str) else None


def dev_settings(settings: Settings, host: str, port: int,
                 port_free: Callable[[str, int], bool] | None = None) -> Settings:
    """`ywm dev`: point the service at the simulator and trust its key.

    The simulator is `ywm dev`'s own when TELNYX_API_BASE is left at its default (it listens
    on CARRIER_SIM_PORT) or names a free loopback port (it listens there). Otherwise the
    service trusts TELNYX_PUBLIC_KEY, else the key of CARRIER_SIM_SIGNING_KEY, else the key a
    simulator on loopback announces; a real carrier needs TELNYX_PUBLIC_KEY. The webhook URL
    follows the dev server's address unless CARRIER_SIM_WEBHOOK_URL was changed.
    """
    own = _own_port(settings, port_free or _port_free)
    if own is None:
        key = _external_key(settings)
        if key is None:
            say(f"webhooks from {settings.telnyx_api_base} will be refused (401) until "
                "TELNYX_PUBLIC_KEY is set")
            return settings
        if key != settings.telnyx_public_key:
            say(f"trusting webhooks signed by the simulator at {settings.telnyx_api_base}")
        return settings.with_(telnyx_public_key=key)
    seed = _seed(settings)
    webhook = settings.carrier_sim_webhook_url
    if webhook == _DEFAULTS["carrier_sim_webhook_url"]:
        webhook = f"http://{local_host(host)}:{port}/webhooks/telnyx"
    sim = settings.with_(carrier_sim_port=own)
    return sim.with_(carrier_sim_signing_key=seed, carrier_sim_webhook_url=webhook,
                     telnyx_api_base=sim_url(sim),
                     telnyx_public_key=public_key_b64(private_key(seed)))


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((host if host not in ("0.0.0.0", "") else "127.0.0.1",
                                port)) != 0


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
    """A cleanup context running the simulator in-process (only when the service uses it and
    no simulator already listens where it points)."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        if settings.telnyx_api_base != sim_url(settings) or _own_port(settings,
                                                                      _port_free) is None:
            yield
            return
        sim = await start_or_explain(
            "carrier simulator", settings.carrier_sim_host, settings.carrier_sim_port,
            start_simulator(host=settings.carrier_sim_host, port=settings.carrier_sim_port,
                            signing_key=settings.carrier_sim_signing_key,
                            webhook_url=settings.carrier_sim_webhook_url,
                            order_delay=settings.carrier_sim_order_delay))
        say(f"listening on {sim.base_url}, webhooks to {settings.carrier_sim_webhook_url}")
        say(f"the members' phones: open {sim.base_url}/ in a browser")
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
    say(f"the members' phones: open {sim.base_url}/ in a browser")
    say(f"the service needs TELNYX_API_BASE={sim.base_url} TELNYX_PUBLIC_KEY={sim.public_key}")
    return await serve_until_signal(sim, say)


def register(sub: Any) -> None:
    """Add `ywm carrier-sim`."""
    p = sub.add_parser("carrier-sim", help="run the Telnyx-compatible carrier simulator "
                       "(CARRIER_SIM_* settings)")
    add_bind_options(p, "CARRIER_SIM", 8081)
    p.add_argument("--webhook-url", help="where to send webhooks (default: "
                   "CARRIER_SIM_WEBHOOK_URL)")
    p.add_argument("--api-key", help="accept only this Bearer key (default: any non-empty)")
    p.set_defaults(func=run)
