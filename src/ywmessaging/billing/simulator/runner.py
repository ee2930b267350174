"""Build and start the Stripe simulator (in-process for tests and `ywm dev`, or standalone)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from aiohttp import web

from ...simulators import RunningApp, listen, sim_app
from .api import add_api_routes
from .control import add_control_routes
from .delivery import StripeWebhookSender
from .replies import STRIPE_SIM_SENDER, STRIPE_SIM_STATE, stripe_api
from .state import StripeSimState


def new_webhook_secret() -> str:
    """A fresh endpoint secret in Stripe's form (`whsec_…`)."""
    return f"whsec_{secrets.token_urlsafe(32)}"


def build_sim_app(state: StripeSimState) -> web.Application:
    """The simulator's aiohttp app; its webhook sender closes with the app."""
    app = sim_app(state, STRIPE_SIM_STATE, lambda: StripeWebhookSender(state), STRIPE_SIM_SENDER,
                  stripe_api)
    add_api_routes(app)
    add_control_routes(app)
    return app


@dataclass
class RunningStripeSim(RunningApp):
    """A started simulator: where it listens, the secret its webhooks are signed with."""

    webhook_secret: str
    state: StripeSimState

    @property
    def sender(self) -> StripeWebhookSender:
        """Its webhook sender (tests wait on `sender.idle()`)."""
        return self.app[STRIPE_SIM_SENDER]

    def set_webhook_url(self, url: str) -> None:
        """Send webhooks to `url` from now on."""
        self.state.webhook_url = url


async def start_stripe_sim(*, host: str = "127.0.0.1", port: int = 0,
                           webhook_secret: str | None = None,
                           webhook_url: str = "http://127.0.0.1:8080/webhooks/stripe",
                           api_key: str | None = None,
                           webhook_retry_delays: tuple[float, ...] | None = None
                           ) -> RunningStripeSim:
    """Start the simulator on `host:port` (0: a free port) and return its handle."""
    state = StripeSimState(webhook_secret=webhook_secret or new_webhook_secret(),
                           webhook_url=webhook_url, api_key=api_key)
    if webhook_retry_delays is not None:
        state.webhook_retry_delays = webhook_retry_delays
    app = build_sim_app(state)
    runner, state.base_url = await listen(app, host, port)
    return RunningStripeSim(base_url=state.base_url, webhook_secret=state.webhook_secret,
                            state=state, app=app, runner=runner)
