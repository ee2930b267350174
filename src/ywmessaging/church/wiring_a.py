"""Plug the church directory (members, groups, branches) into `/api/v1`."""

from __future__ import annotations

from aiohttp import web

from ..config import Settings
from ..keys import API_V1


def setup_church_a(app: web.Application, settings: Settings) -> None:
    """Add the members, groups and branches routes (a plug-in run after `setup_auth`)."""
    from ..api import branches, groups, members  # handlers import church's modules

    api = app[API_V1]
    api.router.add_routes(members.routes)
    api.router.add_routes(groups.routes)
    api.router.add_routes(branches.routes)
