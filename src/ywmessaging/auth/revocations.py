"""Revoked sessions and admins, pushed to every process: no request asks a church's database
whether its access token still stands.

An access token names its session (`sid`), its admin (`sub`) and the admin's
`tokens_valid_after` when it was issued (`vaf`, epoch microseconds). Two kinds of revocation
refuse tokens before they expire:

- *session*: every token of that session (logout, refresh-token reuse);
- *admin*: every token of that admin whose `vaf` is below the admin's new `tokens_valid_after`
  (password change or reset, MFA turned on or off, a role change: the admin refreshes and gets
  a token with the new role; an admin removed: `REMOVED`, so no token of theirs stands).

A revocation is written to the registry (`push_revocation`, which also notifies
`ywm_revoked` with the row) *inside* the church-database transaction that makes the change,
before it commits: if the registry cannot take it, the change rolls back (503) instead of
leaving a token alive. The pushing process applies it at once; the others hear the
notification on the supervisor's listener connection. After a (re)connect of that listener,
and every second while it is down, a catch-up read takes every live row recorded since a little
before the newest one already seen, so a process that missed notifications heals within
seconds. Applying a row twice changes nothing. A row matters only while a token issued before
it can be alive: it expires after the access-token lifetime plus the clock leeway.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import structlog

from ..config import Settings
from ..errors import ServiceUnavailable
from ..sqlq import registry as rq
from .tokens import LEEWAY_S, AccessClaims

log = structlog.get_logger("ywm.auth.revocations")

CHANNEL = "ywm_revoked"
REMOVED = 2**62            # an admin entry that refuses every token of that admin
PUSH_TIMEOUT_S = 5.0
CATCH_UP_OVERLAP = timedelta(seconds=10)  # rows may commit out of id order within this
POLL_DOWN_S = 1.0          # catch-up period while the listener is down
POLL_UP_S = 30.0           # and while it is up (belt and braces)
PRUNE_EVERY_S = 60.0


class RevocationUnavailable(ServiceUnavailable):
    code, title = "revocation_unavailable", "The change could not be recorded; try again"


class RevocationsNotLoaded(ServiceUnavailable):
    code, title = "revocations_not_loaded", "This server is starting; try again"


class DenyList:
    """The live revocations this process knows, checked on every authenticated request."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._sessions: dict[uuid.UUID, float] = {}             # session id → expires
        self._admins: dict[uuid.UUID, tuple[int, float]] = {}   # admin id → (valid_after, exp)
        self.newest: datetime | None = None  # registry time of the newest row read back

    def __len__(self) -> int:
        return len(self._sessions) + len(self._admins)

    def revoke_session(self, session_id: uuid.UUID, expires_at: float) -> None:
        """Refuse every token of this session."""
        self._sessions[session_id] = max(expires_at, self._sessions.get(session_id, 0.0))

    def revoke_admin(self, admin_id: uuid.UUID, valid_after_us: int, expires_at: float) -> None:
        """Refuse this admin's tokens issued while tokens_valid_after was below `valid_after_us`
        (entries only ever tighten: the larger bound and the later expiry win)."""
        old = self._admins.get(admin_id)
        if old is not None:
            valid_after_us, expires_at = max(valid_after_us, old[0]), max(expires_at, old[1])
        self._admins[admin_id] = (valid_after_us, expires_at)

    def refuses(self, claims: AccessClaims) -> bool:
        """Whether a verified access token has been revoked."""
        if claims.session_id in self._sessions:
            return True
        admin = self._admins.get(claims.admin_id)
        return admin is not None and claims.valid_after_us < admin[0]

    def apply(self, row: Any) -> None:
        """Apply one revocation (a registry row or a notification's JSON)."""
        subject = row["subject"]
        subject = subject if isinstance(subject, uuid.UUID) else uuid.UUID(str(subject))
        expires = float(row["expires_at"])
        if row["kind"] == "session":
            self.revoke_session(subject, expires)
        elif row["kind"] == "admin":
            self.revoke_admin(subject, int(row["valid_after_us"]), expires)

    def prune(self) -> int:
        """Forget entries no live token can match any more; returns how many."""
        now = self._clock() - LEEWAY_S
        before = len(self)
        self._sessions = {k: e for k, e in self._sessions.items() if e > now}
        self._admins = {k: v for k, v in self._admins.items() if v[1] > now}
        return before - len(self)


class Revocations:
    """Pushes revocations through the registry and keeps this process's deny-list current."""

    def __init__(self, registry_pool: Any, settings: Settings,
                 deny: DenyList | None = None) -> None:
        self._pool = registry_pool
        self._q = rq(settings.sql_dir)
        # A token issued just before the revocation lives at most this long after it.
        self.ttl_s = float(settings.jwt_access_ttl + LEEWAY_S + 5)
        self.deny = deny or DenyList()
        self.listening: Callable[[], bool] = lambda: False
        self.catch_ups = 0
        self.loaded = False
        # called after revocations were applied (live-events sockets close theirs at once)
        self.watchers: list[Callable[[], None]] = []

    def _changed(self) -> None:
        for watcher in self.watchers:
            watcher()

    async def session(self, tenant_id: uuid.UUID, session_id: uuid.UUID) -> None:
        """Revoke one session everywhere (call inside the tenant transaction that revokes it)."""
        await self._push(tenant_id, "session", session_id, None)
        self.deny.revoke_session(session_id, time.time() + self.ttl_s)
        self._changed()

    async def admin(self, tenant_id: uuid.UUID, admin_id: uuid.UUID, valid_after_us: int) -> None:
        """Refuse the admin's tokens issued before `valid_after_us` everywhere."""
        await self._push(tenant_id, "admin", admin_id, valid_after_us)
        self.deny.revoke_admin(admin_id, valid_after_us, time.time() + self.ttl_s)
        self._changed()

    async def removed(self, tenant_id: uuid.UUID, admin_id: uuid.UUID) -> None:
        """Refuse every token of an admin who is being removed."""
        await self.admin(tenant_id, admin_id, REMOVED)

    async def _push(self, tenant_id: uuid.UUID, kind: str, subject: uuid.UUID,
                    valid_after_us: int | None) -> None:
        try:
            await self._q.push_revocation(self._pool, tenant_id, kind, subject, valid_after_us,
                                          self.ttl_s, timeout=PUSH_TIMEOUT_S)
        except Exception as exc:
            log.error("revocation_push_failed", kind=kind, tenant_id=str(tenant_id),
                      error=type(exc).__name__)
            raise RevocationUnavailable(headers={"Retry-After": "2"}) from None

    def on_notify(self, payload: str) -> None:
        """A `ywm_revoked` notification: the row as JSON."""
        try:
            self.deny.apply(orjson.loads(payload))
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("revocation_bad_payload", error=type(exc).__name__, payload=payload[:80])
            return
        self._changed()

    async def catch_up(self) -> int:
        """Read the live rows recorded since a little before the newest one seen (all live
        rows the first time) and apply them; returns how many were read."""
        since = (self.deny.newest - CATCH_UP_OVERLAP if self.deny.newest is not None
                 else datetime(1970, 1, 1, tzinfo=UTC))
        rows = await self._q.recent_revocations(self._pool, since, timeout=PUSH_TIMEOUT_S)
        for row in rows:
            self.deny.apply(row)
            if self.deny.newest is None or row["created_at"] > self.deny.newest:
                self.deny.newest = row["created_at"]
        self.catch_ups += 1
        self.loaded = True
        if rows:
            self._changed()
        return len(rows)

    def check(self, claims: AccessClaims) -> bool:
        """Whether a verified token is revoked (503 until the first catch-up succeeded: a
        process that never read the revocations cannot tell)."""
        if not self.loaded:
            raise RevocationsNotLoaded(headers={"Retry-After": "1"})
        return self.deny.refuses(claims)

    async def run(self, wake: asyncio.Event) -> None:
        """Catch up every POLL_DOWN_S while the listener is down, every POLL_UP_S while it is
        up, and at once when `wake` is set (the listener (re)connected); prune now and then."""
        last_prune = time.monotonic()
        while True:
            period = POLL_UP_S if self.listening() else POLL_DOWN_S
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), period)
            wake.clear()
            try:
                await self.catch_up()
            except Exception as exc:  # registry unreachable: nothing can be revoked meanwhile
                log.warning("revocation_catch_up_failed", error=type(exc).__name__)
            if time.monotonic() - last_prune > PRUNE_EVERY_S:
                last_prune = time.monotonic()
                self.deny.prune()
