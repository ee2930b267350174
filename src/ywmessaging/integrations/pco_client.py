"""Planning Center over HTTP: the OAuth token endpoints, and API sessions that keep within the
rate limit (100 requests per 20 s by default, read again from every answer's
`X-PCO-API-Request-Rate-*` headers), wait out a 429's `Retry-After`, and refresh the access
token before it expires (saving the new pair through a callback)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp
import orjson
import structlog

from ..config import Settings

log = structlog.get_logger("ywm.pco")

SCOPE = "people"
REFRESH_MARGIN = datetime.timedelta(seconds=120)  # refresh this long before expiry
MAX_TRIES = 6
SAFETY_S = 0.25        # the server counts on arrival: keep a little more than its period


class PcoError(Exception):
    """Planning Center refused or failed a request."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class PcoAuthError(PcoError):
    """The grant is gone (revoked, refresh refused): the church must connect again."""


@dataclass
class Tokens:
    """An access token, its refresh token and when the access token expires."""

    access: str
    refresh: str
    expires_at: datetime.datetime
    scope: str = SCOPE

    @classmethod
    def from_grant(cls, doc: dict[str, Any]) -> Tokens:
        """Tokens from the token endpoint's answer."""
        now = datetime.datetime.now(datetime.UTC)
        return cls(str(doc["access_token"]), str(doc.get("refresh_token") or ""),
                   now + datetime.timedelta(seconds=float(doc.get("expires_in", 7200))),
                   str(doc.get("scope") or SCOPE))

    def stale(self, now: datetime.datetime) -> bool:
        """Whether to refresh before the next request."""
        return self.expires_at - now < REFRESH_MARGIN


class RateLimiter:
    """At most `limit` requests in any `period` seconds (a sliding window of send times)."""

    def __init__(self, limit: int = 100, period: float = 20.0) -> None:
        self.limit, self.period = limit, period
        self._sent: collections.deque[float] = collections.deque()
        self._lock = asyncio.Lock()
        self._blocked_until = 0.0
        self.waited = 0.0

    def configure(self, limit: int, period: float) -> None:
        """Follow the limit the server announces."""
        if limit > 0 and period > 0:
            self.limit, self.period = limit, period

    async def acquire(self) -> None:
        """Wait for a slot, then take it."""
        async with self._lock:
            while True:
                now = time.monotonic()
                window = self.period + SAFETY_S
                while self._sent and self._sent[0] <= now - window:
                    self._sent.popleft()
                if now < self._blocked_until:
                    wait = self._blocked_until - now
                elif len(self._sent) < self.limit:
                    self._sent.append(now)
                    return
                else:
                    wait = self._sent[0] + window - now
                self.waited += wait
                await asyncio.sleep(wait)

    def hold(self, seconds: float) -> None:
        """After a 429: send nothing for `seconds` (its Retry-After)."""
        self._blocked_until = max(self._blocked_until, time.monotonic() + seconds)


SaveTokens = Callable[[Tokens], Awaitable[None]]


class PcoHttp:
    """One per process: the HTTP session, the OAuth endpoints, one rate limiter per
    organization."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.base = settings.pco_api_base.rstrip("/")
        self._http: aiohttp.ClientSession | None = None
        self._limiters: dict[str, RateLimiter] = {}

    def http(self) -> aiohttp.ClientSession:
        """The shared client session (made on first use, inside the loop)."""
        if self._http is None:
            self._http = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.settings.pco_timeout))
        return self._http

    async def close(self) -> None:
        """Close the session."""
        if self._http is not None:
            await self._http.close()

    def limiter(self, organization_id: str, start: RateLimiter | None = None) -> RateLimiter:
        """The organization's limiter in this process (`start` becomes it when it has none:
        the requests made before the organization was known count)."""
        return self._limiters.setdefault(organization_id, start or RateLimiter())

    def authorize_url(self, state: str, challenge: str) -> str:
        """Where the admin's browser goes to approve (authorization code with PKCE)."""
        query = urlencode({"client_id": self.settings.pco_client_id,
                           "redirect_uri": self.settings.pco_redirect_url,
                           "response_type": "code", "scope": SCOPE, "state": state,
                           "code_challenge": challenge, "code_challenge_method": "S256"})
        return f"{self.base}/oauth/authorize?{query}"

    async def _oauth(self, path: str, form: dict[str, str]) -> dict[str, Any]:
        form = {**form, "client_id": self.settings.pco_client_id,
                "client_secret": self.settings.pco_client_secret}
        try:
            async with self.http().post(f"{self.base}{path}", data=form) as resp:
                body = await resp.read()
                if resp.status in (400, 401):
                    raise PcoAuthError(f"{path} refused ({resp.status})", resp.status)
                if resp.status >= 300:
                    raise PcoError(f"{path} failed ({resp.status})", resp.status)
                doc: dict[str, Any] = orjson.loads(body) if body else {}
                return doc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise PcoError(f"{path} unreachable: {type(exc).__name__}") from exc

    async def exchange(self, code: str, verifier: str) -> Tokens:
        """The authorization code (and PKCE verifier) for tokens."""
        return Tokens.from_grant(await self._oauth("/oauth/token", {
            "grant_type": "authorization_code", "code": code, "code_verifier": verifier,
            "redirect_uri": self.settings.pco_redirect_url}))

    async def refresh(self, refresh_token: str) -> Tokens:
        """A new token pair for a refresh token (which then stops working)."""
        return Tokens.from_grant(await self._oauth("/oauth/token", {
            "grant_type": "refresh_token", "refresh_token": refresh_token}))

    async def revoke(self, token: str) -> None:
        """Revoke a token (RFC 7009)."""
        await self._oauth("/oauth/revoke", {"token": token})

    def session(self, tokens: Tokens, save: SaveTokens,
                organization_id: str | None = None) -> PcoSession:
        """API calls with these tokens (paced by the organization's limiter; by a new one
        while the organization is not known yet)."""
        limiter = RateLimiter() if organization_id is None else self.limiter(organization_id)
        return PcoSession(self, tokens, save, limiter)


class PcoSession:
    """API requests of one church: paced, retried, tokens kept fresh."""

    def __init__(self, owner: PcoHttp, tokens: Tokens, save: SaveTokens,
                 limiter: RateLimiter) -> None:
        self._owner = owner
        self.tokens = tokens
        self._save = save
        self.limiter = limiter
        self.requests = 0
        self._refresh_lock = asyncio.Lock()

    async def _fresh(self, refused: str | None = None) -> None:
        """Refresh when the access token is about to expire, or was `refused` (unless another
        request already replaced it)."""
        async with self._refresh_lock:
            if refused is not None and refused != self.tokens.access:
                return
            if refused is not None or self.tokens.stale(datetime.datetime.now(datetime.UTC)):
                self.tokens = await self._owner.refresh(self.tokens.refresh)
                await self._save(self.tokens)
                log.info("pco_tokens_refreshed")

    async def request(self, method: str, url: str, *, params: dict[str, str] | None = None,
                      json: Any = None, missing_ok: bool = False) -> dict[str, Any] | None:
        """One API call; its JSON (None for 204, or for 404 when `missing_ok`)."""
        if not url.startswith("http"):
            url = f"{self._owner.base}{url}"
        refreshed = False
        for attempt in range(MAX_TRIES):
            await self._fresh()
            await self.limiter.acquire()
            self.requests += 1
            used = self.tokens.access
            headers = {"Authorization": f"Bearer {used}"}
            try:
                async with self._owner.http().request(method, url, params=params, json=json,
                                                      headers=headers) as resp:
                    body = await resp.read()
                    self._follow(resp.headers)
                    if resp.status == 429:
                        wait = float(resp.headers.get("Retry-After", "1"))
                        self.limiter.hold(wait)
                        log.warning("pco_rate_limited", retry_after=wait)
                        continue
                    if resp.status == 401 and not refreshed:
                        refreshed = True
                        await self._fresh(refused=used)
                        continue
                    if resp.status == 401:
                        raise PcoAuthError("Planning Center refused the token", 401)
                    if resp.status == 404 and missing_ok:
                        return None
                    if resp.status >= 500:
                        raise PcoError(f"Planning Center answered {resp.status}", resp.status)
                    if resp.status >= 400:
                        raise PcoError(f"{method} {url} refused ({resp.status})", resp.status)
                    doc: dict[str, Any] | None = orjson.loads(body) if body else None
                    return doc
            except (aiohttp.ClientError, TimeoutError, PcoError) as exc:
                if isinstance(exc, PcoAuthError) or (
                        isinstance(exc, PcoError) and (exc.status or 500) < 500):
                    raise
                if attempt == MAX_TRIES - 1:
                    raise PcoError(f"Planning Center unreachable: {exc}") from exc
                await asyncio.sleep(min(8.0, 0.5 * 2 ** attempt))
        raise PcoError("Planning Center kept refusing (rate limit)", 429)

    def _follow(self, headers: Any) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self.limiter.configure(int(headers["X-PCO-API-Request-Rate-Limit"]),
                                   float(headers["X-PCO-API-Request-Rate-Period"]))

    async def get(self, url: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        """GET, expecting a document."""
        doc = await self.request("GET", url, params=params)
        if doc is None:
            raise PcoError(f"GET {url} answered nothing")
        return doc
