"""Authentication's resources: the auth services, the deny-list of revoked tokens kept current,
and the sweep of stale login-throttle counters (the middleware and routes are in routes.py)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import structlog
from aiohttp import web

from ..config import Settings
from ..keys import REGISTRY_POOL, SETTINGS
from ..sqlq import registry as rq
from ..tenants.keys import SUPERVISOR
from ..tenants.provisioning import Provisioner
from .emails import EmailSender, OutboxEmailSender
from .revocations import CHANNEL as REVOKED_CHANNEL
from .smtp import SmtpEmailSender
from .state import AUTH, AuthServices
from .throttle import IN_FLIGHT_TTL_S, IP_RULE

log = structlog.get_logger("ywm.auth")

SWEEP_INTERVAL_S = 600.0
SWEEP_TIMEOUT_S = 10.0


def email_sender(settings: Settings) -> EmailSender:
    """SMTP when SMTP_URL is set, else the development outbox folder under YWM_DATA_DIR."""
    if settings.smtp_url:
        return SmtpEmailSender(settings.smtp_url, settings.email_from)
    return OutboxEmailSender(settings.data_dir / "outbox")


async def auth_services(app: web.Application) -> AsyncIterator[None]:
    """The auth services, the sign-up provisioner, the deny-list of revoked tokens (loaded
    before the first request, then kept current through the supervisor's listener connection
    and catch-up reads) and the sweep of stale login-throttle counters and expired revocations
    (closed before the registry pool and the supervisor they use). Emails go through SMTP
    (SMTP_URL) or the development outbox folder under YWM_DATA_DIR."""
    settings = app[SETTINGS]
    emails = email_sender(settings)
    svc = await asyncio.to_thread(AuthServices.build, settings, emails,  # one argon2 hash
                                  app[REGISTRY_POOL])
    svc.provisioner = Provisioner(app[REGISTRY_POOL], settings, svc.box)
    try:  # every live revocation, before serving (until then, 503: see middleware.py)
        async with asyncio.timeout(SWEEP_TIMEOUT_S):
            await svc.revocations.catch_up()
    except Exception as exc:  # the registry is down: the catch-up loop keeps trying
        log.warning("revocations_load_failed", error=type(exc).__name__)
    wake = asyncio.Event()
    listener = app[SUPERVISOR].listener
    if listener is not None:
        svc.revocations.listening = lambda: listener.connected
        await listener.subscribe(REVOKED_CHANNEL, svc.revocations.on_notify, wake.set)
    app[AUTH] = svc
    tasks = [asyncio.create_task(_sweep_loop(app, settings), name="auth_throttle_sweep"),
             asyncio.create_task(svc.revocations.run(wake), name="auth_revocations")]
    yield
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await svc.provisioner.close()
    closer = getattr(emails, "close", None)
    if closer is not None:   # a background sender delivers what it still holds
        await closer()


async def _sweep_loop(app: web.Application, settings: Settings) -> None:
    """Every few minutes, drop throttle counters that no longer matter."""
    q = rq(settings.sql_dir)
    while True:
        await asyncio.sleep(SWEEP_INTERVAL_S)
        try:
            async with asyncio.timeout(SWEEP_TIMEOUT_S):
                gone = await q.sweep_login_throttle(app[REGISTRY_POOL], float(IP_RULE.window_s))
                gone += await q.sweep_login_attempts_in_flight(app[REGISTRY_POOL],
                                                               IN_FLIGHT_TTL_S)
                revocations = await q.sweep_revocations(app[REGISTRY_POOL])
            if gone or revocations:
                log.info("login_throttle_swept", removed=gone, revocations_removed=revocations)
        except Exception as exc:  # the next round tries again
            log.warning("login_throttle_sweep_failed", error=type(exc).__name__)
