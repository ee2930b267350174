"""The Planning Center simulator: OAuth 2 (PKCE), People v2 as JSON:API, its rate limit,
signed webhooks, and `/sim/*` control routes."""

from .runner import RunningPcoSim, start_pco_sim

__all__ = ["RunningPcoSim", "start_pco_sim"]
