"""Build and start the Planning Center simulator (in-process for tests and `ywm dev`, or
standalone through `ywm pco-sim`)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web

from .api import add_api_routes, api_gate
from .control import add_control_routes
from .delivery import WebhookSender
from .keys import PCO_SIM_SENDER, PCO_SIM_STATE
from .state import PcoSimState


def build_sim_app(state: PcoSimState) -> web.Application:
    """The simulator's aiohttp app; its webhook sender closes with it."""
    app = web.Application(client_max_size=1_048_576, middlewares=[api_gate])
    app[PCO_SIM_STATE] = state

    async def sender_ctx(app: web.Application) -> AsyncIterator[None]:
        app[PCO_SIM_SENDER] = WebhookSender(state)
        yield
        await app[PCO_SIM_SENDER].close()

    app.cleanup_ctx.append(sender_ctx)
    add_api_routes(app)
    add_control_routes(app)
    return app


@dataclass
class RunningPcoSim:
    """A started simulator."""

    base_url: str
    state: PcoSimState
    app: web.Application
    runner: web.AppRunner

    @property
    def sender(self) -> WebhookSender:
        """Its webhook sender (tests wait on `sender.idle()`)."""
        return self.app[PCO_SIM_SENDER]

    async def stop(self) -> None:
        """Stop listening; cancel webhooks in flight."""
        await self.runner.cleanup()


async def start_pco_sim(*, host: str = "127.0.0.1", port: int = 0,
                        client_id: str = "dev-pco-client",
                        client_secret: str = "dev-pco-secret",
                        organization_id: str | None = None) -> RunningPcoSim:
    """Start the simulator on `host:port` (0: a free port), for a fresh organization id
    unless one is given (each run of the simulator is another organization)."""
    state = PcoSimState(client_id=client_id, client_secret=client_secret,
                        organization_id=organization_id or str(secrets.randbelow(9 * 10**8)
                                                               + 10**8))
    app = build_sim_app(state)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    bound = runner.addresses[0]
    state.base_url = f"http://{bound[0]}:{bound[1]}"
    return RunningPcoSim(base_url=state.base_url, state=state, app=app, runner=runner)
