"""Live events' AppKey (the app's own are in ywmessaging.keys)."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from .hub import Hub
from .publisher import Publisher


@dataclass
class LiveEvents:
    """The publisher, the hub and the origins a cookie-authenticated socket may come from."""

    publisher: Publisher
    hub: Hub
    origins: frozenset[str]


# This process's live events; plugins.live_events.
EVENTS = web.AppKey("live_events", LiveEvents)
