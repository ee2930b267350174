"""The integrations package's AppKeys."""

from __future__ import annotations

from aiohttp import web

from .pco_connection import Pco
from .pco_runner import PcoRunner

# Planning Center: settings, secret box, HTTP client, registry; plugins.planning_center.
PCO = web.AppKey("pco", Pco)
# The Planning Center sync runs and schedule of this process; plugins.planning_center.
PCO_RUNNER = web.AppKey("pco_runner", PcoRunner)
