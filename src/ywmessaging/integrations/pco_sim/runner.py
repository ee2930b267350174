"""Build and start the Planning Center simulator (in-process for tests and `ywm dev`, or
standalone through `ywm pco-sim`)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from aiohttp import web

from ...simulators import RunningApp, listen, sim_app
from .api import add_api_routes, api_gate
from .control import add_control_routes
from .delivery import WebhookSender
from .keys import PCO_SIM_SENDER, PCO_SIM_STATE
from .state import PcoSimState


def build_sim_app(state: PcoSimState) -> web.Application:
    """The simulator's aiohttp app; its webhook sender closes with it."""
    app = sim_app(state, PCO_SIM_STATE, lambda: WebhookSender(state), PCO_SIM_SENDER, api_gate)
    add_api_routes(app)
    add_control_routes(app)
    return app


@dataclass
class RunningPcoSim(RunningApp):
    """A started simulator."""

    state: PcoSimState

    @property
    def sender(self) -> WebhookSender:
        """Its webhook sender (tests wait on `sender.idle()`)."""
        return self.app[PCO_SIM_SENDER]


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
    runner, state.base_url = await listen(app, host, port)
    return RunningPcoSim(base_url=state.base_url, state=state, app=app, runner=runner)
