"""What the simulator commands (`ywm carrier-sim`, `stripe-sim`, `pco-sim`) and their `ywm dev`
cleanup contexts share: their options, a start that names the simulator's port when it cannot
listen, and serving until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web

from ..errors import OperationError
from ..simulators import RunningApp

CleanupCtx = Callable[[web.Application], AsyncIterator[None]]
SimT = TypeVar("SimT", bound=RunningApp)


def add_bind_options(p: Any, env: str, port: int) -> None:
    """`--host` and `--port`, defaulting to `<env>_HOST` and `<env>_PORT` (`port`)."""
    p.add_argument("--host", help=f"address to bind (default: {env}_HOST)")
    p.add_argument("--port", type=int, help=f"port to bind (default: {env}_PORT, {port})")


def local_host(host: str) -> str:
    """The address to reach a server bound to `host` from this machine."""
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


async def start_or_explain(what: str, host: str, port: int, start: Awaitable[SimT]) -> SimT:
    """The started simulator; when it cannot listen, an error naming its port (not the API's)."""
    try:
        return await start
    except OSError as exc:
        raise OperationError(f"the {what} cannot listen on {host}:{port}: "
                             f"{exc.strerror or exc}") from exc


async def serve_until_signal(sim: RunningApp, say: Callable[[str], None]) -> int:
    """Serve until SIGINT/SIGTERM, then stop `sim` and say so; the exit code."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await sim.stop()
        say("stopped")
    return 0
