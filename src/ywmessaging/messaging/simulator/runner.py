"""Build and start the carrier simulator (in-process for tests and `ywm dev`, or standalone)."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from ...simulators import RunningApp, listen, sim_app
from ..signature import generate_seed, private_key, public_key_b64
from .api import add_api_routes
from .control import add_control_routes
from .delivery import WebhookSender
from .page import add_page_routes
from .replies import SIM_SENDER, SIM_STATE, telnyx_errors
from .state import DEFAULT_ORDER_DELAY, SimState


def new_state(*, signing_key: str | None, webhook_url: str, api_key: str | None = None,
              order_delay: float = DEFAULT_ORDER_DELAY) -> tuple[SimState, str]:
    """A fresh state and the base64 seed it signs with (generated when `signing_key` is None)."""
    seed = signing_key or generate_seed()
    key = private_key(seed)
    return SimState(key=key, public_key=public_key_b64(key), webhook_url=webhook_url,
                    api_key=api_key, order_delay=order_delay), seed


def build_sim_app(state: SimState) -> web.Application:
    """The simulator's aiohttp app; its webhook sender closes with the app."""
    app = sim_app(state, SIM_STATE, lambda: WebhookSender(state), SIM_SENDER, telnyx_errors)
    add_api_routes(app)
    add_control_routes(app)
    add_page_routes(app)
    return app


@dataclass
class RunningSimulator(RunningApp):
    """A started simulator: where it listens, the key to verify its webhooks, how to stop it."""

    public_key: str
    signing_key: str
    state: SimState

    @property
    def sender(self) -> WebhookSender:
        """Its webhook sender (tests wait on `sender.idle()`)."""
        return self.app[SIM_SENDER]

    def set_webhook_url(self, url: str) -> None:
        """Send webhooks to `url` from now on."""
        self.state.webhook_url = url


async def start_simulator(*, host: str = "127.0.0.1", port: int = 0,
                          signing_key: str | None = None,
                          webhook_url: str = "http://127.0.0.1:8080/webhooks/telnyx",
                          api_key: str | None = None,
                          order_delay: float = DEFAULT_ORDER_DELAY) -> RunningSimulator:
    """Start the simulator on `host:port` (0: a free port) and return its handle; its number
    orders stay `pending` for `order_delay` seconds."""
    state, seed = new_state(signing_key=signing_key, webhook_url=webhook_url, api_key=api_key,
                            order_delay=order_delay)
    app = build_sim_app(state)
    runner, base_url = await listen(app, host, port)
    return RunningSimulator(base_url=base_url, public_key=state.public_key, signing_key=seed,
                            state=state, app=app, runner=runner)
