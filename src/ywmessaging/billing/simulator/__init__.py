"""The Stripe simulator: Stripe's REST API, hosted pages, subscriptions over time, signed
webhooks, fault injection."""

from .delivery import stripe_signature
from .runner import RunningStripeSim, build_sim_app, new_webhook_secret, start_stripe_sim

__all__ = ["RunningStripeSim", "build_sim_app", "new_webhook_secret", "start_stripe_sim",
           "stripe_signature"]
