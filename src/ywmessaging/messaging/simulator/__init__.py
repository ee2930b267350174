"""The carrier simulator: Telnyx's HTTP API, signed webhooks back, fault injection."""

from .runner import RunningSimulator, build_sim_app, new_state, start_simulator

__all__ = ["RunningSimulator", "build_sim_app", "new_state", "start_simulator"]
