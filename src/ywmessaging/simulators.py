"""What the local simulators (carrier, Stripe, Planning Center) share: an aiohttp app whose
webhook sender closes with it, served in-process on host:port, and a handle that stops it.
Each simulator keeps its own state, routes and secrets."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from aiohttp import web
from aiohttp.typedefs import Middleware


class Sender(Protocol):
    """A simulator's webhook sender: closed with the app (pending webhooks cancelled)."""

    async def close(self) -> None: ...


StateT = TypeVar("StateT")
SenderT = TypeVar("SenderT", bound=Sender)


def sim_app(state: StateT, state_key: web.AppKey[StateT], sender: Callable[[], SenderT],
            sender_key: web.AppKey[SenderT], middleware: Middleware) -> web.Application:
    """An app holding `state`, with a sender made at start-up and closed at clean-up; the
    caller adds the simulator's routes."""
    app = web.Application(client_max_size=1_048_576, middlewares=[middleware])
    app[state_key] = state

    async def sender_ctx(app: web.Application) -> AsyncIterator[None]:
        app[sender_key] = sender()
        yield
        await app[sender_key].close()

    app.cleanup_ctx.append(sender_ctx)
    return app


async def listen(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, str]:
    """Serve `app` on `host:port` (0: a free port); its runner and base URL."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    bound = runner.addresses[0]
    return runner, f"http://{bound[0]}:{bound[1]}"


@dataclass
class RunningApp:
    """A started simulator: where it listens and how to stop it."""

    base_url: str
    app: web.Application
    runner: web.AppRunner

    async def stop(self) -> None:
        """Stop listening; cancel pending webhooks."""
        await self.runner.cleanup()
