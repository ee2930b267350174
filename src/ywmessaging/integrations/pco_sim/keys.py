"""The simulator's AppKeys."""

from __future__ import annotations

from aiohttp import web

from .delivery import WebhookSender
from .state import PcoSimState

PCO_SIM_STATE = web.AppKey("pco_sim_state", PcoSimState)
PCO_SIM_SENDER = web.AppKey("pco_sim_sender", WebhookSender)
