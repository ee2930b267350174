"""CORS for the configured browser origins, and the security headers on every response.

aiohttp-cors was considered: it registers CORS per route and answers preflights through an
OPTIONS route it adds to each resource, but `/api/v1` is a sub-application whose auth
middleware refuses every route without a permission marker, and aiohttp resolves a preflight
to the sub-application's 405 before any root route could answer it. So a preflight
(`OPTIONS` with `Origin` and `Access-Control-Request-Method`) is answered by one root
middleware before the router's answer, and the headers of every other answer are added by one
`on_response_prepare` hook, which also sees streamed responses, redirects and problems.

Per request the work is one header read and one dict look-up; every header tuple is built at
start-up. An origin that is not configured is never reflected, and credentials are allowed only
with an explicit origin (never `*`).
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from .errors import Forbidden

ALLOW_METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE"
# Authorization (Bearer mode), the cookie mode's CSRF header, JSON bodies, the client's id.
ALLOW_HEADERS = "Authorization, Content-Type, X-CSRF-Token, X-Request-ID"
EXPOSE_HEADERS = "X-Request-ID, Retry-After, Location, Content-Disposition"
PREFLIGHT_MAX_AGE = "600"
_DEFAULT_PORTS = {"http": 80, "https": 443}

Headers = tuple[tuple[str, str], ...]


class OriginNotAllowed(Forbidden):
    code, title = "origin_not_allowed", "This origin may not call the API"


def parse_origins(value: str) -> tuple[str, ...]:
    """Comma-separated `scheme://host[:port]` origins, as browsers write them in `Origin`.

    ValueError names the first one that is not an origin (a path, `*`, another scheme).
    """
    origins: list[str] = []
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        if item == "*":
            raise ValueError("`*` is not allowed: list each origin (credentials never go to *)")
        try:
            parts = urlsplit(item.rstrip("/"))
            port = parts.port
        except ValueError:
            raise ValueError(f"{item!r} is not an origin like https://app.example.org") from None
        if (parts.scheme not in _DEFAULT_PORTS or not parts.hostname or parts.path
                or parts.query or parts.fragment or parts.username or parts.password):
            raise ValueError(f"{item!r} is not an origin like https://app.example.org")
        host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
        shown = "" if port is None or port == _DEFAULT_PORTS[parts.scheme] else f":{port}"
        origin = f"{parts.scheme}://{host}{shown}"
        if origin not in origins:
            origins.append(origin)
    return tuple(origins)


def origin_of(url: str) -> str:
    """The origin of an http(s) URL (`http://localhost:5173/app` → `http://localhost:5173`)."""
    parts = urlsplit(url)
    found = parse_origins(f"{parts.scheme}://{parts.netloc}")
    if not found:
        raise ValueError(f"{url!r} is not an http(s) URL")
    return found[0]


def security_headers(hsts_seconds: int) -> Headers:
    """The headers every answer carries (HSTS only when configured)."""
    headers: list[tuple[str, str]] = [
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Content-Security-Policy", "frame-ancestors 'none'"),
        ("Referrer-Policy", "no-referrer"),
    ]
    if hsts_seconds > 0:
        headers.append(("Strict-Transport-Security", f"max-age={hsts_seconds}"))
    return tuple(headers)


class BrowserPolicy:
    """The CORS answers for a fixed set of origins, and the security headers."""

    def __init__(self, origins: Iterable[str], hsts_seconds: int = 0) -> None:
        self.origins = tuple(origins)
        self._security = security_headers(hsts_seconds)
        self._allowed: dict[str, Headers] = {
            origin: (("Access-Control-Allow-Origin", origin),
                     ("Access-Control-Allow-Credentials", "true"),
                     ("Access-Control-Expose-Headers", EXPOSE_HEADERS))
            for origin in self.origins
        }
        self._preflight: Headers = (
            ("Access-Control-Allow-Methods", ALLOW_METHODS),
            ("Access-Control-Allow-Headers", ALLOW_HEADERS),
            ("Access-Control-Max-Age", PREFLIGHT_MAX_AGE),
        )

    def middlewares(self) -> list[Middleware]:
        """The preflight middleware when origins are configured (else none: nothing to do)."""
        return [self.preflight_middleware()] if self._allowed else []

    def preflight_middleware(self) -> Middleware:
        """Answer CORS preflights before routing: 204 for a configured origin, else 403."""
        allowed, headers = self._allowed, self._preflight

        @web.middleware
        async def preflight(request: web.Request, handler: Handler) -> web.StreamResponse:
            if request.method != "OPTIONS" or (
                    "Access-Control-Request-Method" not in request.headers):
                return await handler(request)
            origin = request.headers.get("Origin")
            if origin is None:
                return await handler(request)
            if origin not in allowed:
                raise OriginNotAllowed("add it to YWM_CORS_ORIGINS to let its pages call the API")
            return web.Response(status=204, headers=headers)

        return preflight

    async def on_prepare(self, request: web.Request, response: web.StreamResponse) -> None:
        """Security headers on every answer; CORS headers for a configured origin."""
        out = response.headers
        for name, value in self._security:
            out.setdefault(name, value)
        if not self._allowed:
            return
        out.add("Vary", "Origin")   # caches must not give one origin's answer to another
        origin = request.headers.get("Origin")
        found = self._allowed.get(origin) if origin is not None else None
        if found is not None:
            out.extend(found)
