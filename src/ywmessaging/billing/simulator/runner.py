"""Build and start the Stripe simulator (in-process for tests and `ywm dev`, or standalone)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web

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
    app = web.Application(client_max_size=1_048_576, middlewares=[stripe_api])
    app[STRIPE_SIM_STATE] = state

    async def sender_ctx(app: web.Application) -> AsyncIterator[None]:
        app[STRIPE_SIM_SENDER] = StripeWebhookSender(state)
        yield
        await app[STRIPE_SIM_SENDER].close()

    app.cleanup_ctx.append(sender_ctx)
    add_api_routes(app)
    add_control_routes(app)
    return app


@dataclass
class RunningStripeSim:
    """A started simulator: where it listens, the secret its webhooks are signed with."""

    base_url: str
    webhook_secret: str
    state: StripeSimState
    app: web.Application
    runner: web.AppRunner

    @property
    def sender(self) -> StripeWebhookSender:
        """Its webhook sender (tests wait on `sender.idle()`)."""
        return self.app[STRIPE_SIM_SENDER]

    def set_webhook_url(self, url: str) -> None:
        """Send webhooks to `url` from now on."""
        self.state.webhook_url = url

    async def stop(self) -> None:
        """Stop listening; cancel pending webhooks."""
        await self.runner.cleanup()


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
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0]
    state.base_url = f"http://{bound[0]}:{bound[1]}"
    return RunningStripeSim(base_url=state.base_url, webhook_secret=state.webhook_secret,
                            state=state, app=app, runner=runner)
